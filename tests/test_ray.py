"""The Ray backend on a real local Ray instance (``ray.init(num_cpus=2)``): the same episodes and
training as local collection, SB3's PPO on the Ray VecEnv, a worker killed mid-round, CPUs missing."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

from maesn_sb3 import MAESN, MAML, LSBaseline, TaskSet, cli, make_meta_vec_env
from tests.ray_helpers import dying_point_nav, require_ray, ship_by_value, wait_ended

ray = require_ray()
from maesn_sb3.ray_vec_env import RayVecEnv, RayWorkerError  # noqa: E402

ENV_ID = "maesn_sb3/PointNav2D-v0"
SMALL = {"n_tasks": 2, "envs_per_task": 3, "env_kwargs": {"max_episode_steps": 8}, "seed": 5}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
    yield
    ray.shutdown()


def meta_env(vectorization: str, algo: type, **kwargs: object):
    latent = {} if algo is MAML else {"latent_dim": 2}
    return make_meta_vec_env(ENV_ID, vectorization=vectorization, **{**SMALL, **latent, **kwargs})


def assert_same_batch(local, remote) -> None:
    """Layout, order, tasks, latents and success equal; floats equal up to float32 rounding (MKL picks
    its matrix kernels by the number of rows, so a policy's output on 3 rows may differ in the last bit
    from the same rows among 6)."""
    for field in ("mask", "task_slot", "success", "latents"):
        a, b = getattr(local, field), getattr(remote, field)
        assert (a is None) == (b is None), field
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=field)
    for field in ("observations", "actions", "rewards"):
        np.testing.assert_allclose(
            getattr(local, field), getattr(remote, field), rtol=0, atol=1e-5, err_msg=field
        )


@pytest.mark.parametrize("algo", [MAESN, MAML])
def test_ray_collection_gives_the_local_batch(algo: type) -> None:
    batches = []
    for vectorization, extra in (("dummy", {}), ("ray", {"ray_workers": 2})):
        env = meta_env(vectorization, algo, **extra)
        model = algo("MlpPolicy", env, n_train_tasks=4, seed=5)
        th.manual_seed(1)
        if algo is MAML:  # per-slot (adapted) weights travel too: each worker gets its slots'
            batch, completed = model._sample(env, model._stacked(env.n_tasks), 2)
        else:
            model._draw_tasks(env)
            mean, log_std = model._pre(th.as_tensor([0, 1]))
            batch, completed = model._sample(env, mean, log_std, 2)
        assert completed
        batches.append(batch)
        if vectorization == "ray":
            stats = env.venv.collection_stats
            assert stats["calls"] == 1 and stats["policy_bytes"] > 0
            assert stats["episode_bytes"] >= batch.rewards.nbytes + batch.actions.nbytes
        env.close()
    assert_same_batch(*batches)


@pytest.mark.parametrize("algo", [LSBaseline, MAML])
def test_meta_training_on_ray_keeps_working(algo: type, tmp_path) -> None:
    """learn, callbacks (num_timesteps, the info buffer: as in a local run), save and load work on the
    Ray backend."""
    local = algo("MlpPolicy", meta_env("dummy", algo), n_train_tasks=4, seed=5).learn(200)
    env = meta_env("ray", algo, ray_workers=2)
    model = algo("MlpPolicy", env, n_train_tasks=4, seed=5).learn(200)
    assert model.num_timesteps == local.num_timesteps
    assert [e["l"] for e in model.ep_info_buffer] == [e["l"] for e in local.ep_info_buffer]
    per_iteration = 48 * (1 if algo is LSBaseline else 2)  # 6 episodes of 8 steps per phase
    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model", env=env)
    loaded.learn(per_iteration, reset_num_timesteps=False)
    assert loaded.num_timesteps == model.num_timesteps + per_iteration
    env.close()


def test_ppo_on_the_ray_vec_env_learns_as_on_dummy() -> None:
    """Any SB3 algorithm can use RayVecEnv (one remote call per worker per step): PPO's training is the
    one it has on a DummyVecEnv of the same envs, parameter for parameter."""
    results = []
    for vec_env_cls, kwargs in ((DummyVecEnv, {}), (RayVecEnv, {"n_workers": 2})):
        venv = make_vec_env("CartPole-v1", n_envs=4, seed=0, vec_env_cls=vec_env_cls, vec_env_kwargs=kwargs)
        model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0).learn(512)
        results.append(model.policy.state_dict())
        venv.close()
    for name, value in results[0].items():
        th.testing.assert_close(value, results[1][name], rtol=0, atol=0, msg=name)


GOALS = [{"goal": [1.0, 0.0]}, {"goal": [0.0, 1.0]}]


def dying_env(tmp_path, **kwargs: object):
    """Two workers of two envs; the first env of slot 1 (on worker 1) kills its worker at step 20 of
    the first round, once."""
    ship_by_value()
    make = functools.partial(dying_point_nav, str(tmp_path / "died"), (0.0, 1.0), 20)
    return make_meta_vec_env(
        make,
        n_tasks=2,
        envs_per_task=2,
        seed=0,
        tasks=GOALS,
        env_kwargs={"max_episode_steps": 50},
        vectorization="ray",
        ray_workers=2,
        **kwargs,
    )


def test_a_killed_worker_raises_an_error_naming_it_and_close_ends_every_worker(tmp_path) -> None:
    env = dying_env(tmp_path)
    model = MAML("MlpPolicy", env, task_set=TaskSet(GOALS, []), seed=0)
    pids = env.venv.worker_pids()
    start = time.monotonic()
    with pytest.raises(
        RayWorkerError, match=r"Ray worker 1 \(sub-envs 2\.\.3\) died while collecting"
    ) as error:
        model._sample(env, None, 2)
    assert time.monotonic() - start < 60
    assert (tmp_path / "died").exists()
    assert error.value.worker == 1 and list(error.value.env_indices) == [2, 3]
    env.close()
    assert wait_ended(pids) == []


def test_a_killed_worker_s_round_is_run_again_when_retries_are_asked(tmp_path) -> None:
    env = dying_env(tmp_path, vec_env_kwargs={"max_retries": 1})
    model = MAML("MlpPolicy", env, task_set=TaskSet(GOALS, []), seed=0)
    pids = env.venv.worker_pids()
    with pytest.warns(UserWarning, match=r"Ray worker 1 .* running the round again"):
        batch, completed = model._sample(env, None, 2)
    assert (tmp_path / "died").exists()
    assert completed and batch.n_episodes == 8 and batch.n_steps == 8 * 50
    np.testing.assert_array_equal(batch.task_slot, [0, 0, 1, 1] * 2)
    new_pids = env.venv.worker_pids()
    assert new_pids[0] == pids[0] and new_pids[1] != pids[1]
    assert [task["goal"].tolist() for task in env.env_method("get_task")] == [[1, 0], [1, 0], [0, 1], [0, 1]]
    env.close()
    assert wait_ended(pids + new_pids) == []


def test_missing_cpus_and_bad_worker_counts_are_refused_before_any_work() -> None:
    with pytest.raises(ValueError, match=r"3 Ray workers need 3 CPUs \(1 each\), but the cluster"):
        make_meta_vec_env(ENV_ID, n_tasks=3, seed=0, vectorization="ray", ray_workers=3)
    with pytest.raises(ValueError, match=r"n_workers must be an int in \[1, 2\]"):
        make_meta_vec_env(ENV_ID, n_tasks=2, seed=0, vectorization="ray", ray_workers=5)
    with pytest.raises(ValueError, match="ray_workers=2 needs vectorization='ray'"):
        make_meta_vec_env(ENV_ID, n_tasks=2, seed=0, ray_workers=2)
    assert ray.available_resources().get("CPU") == 2  # nothing left holding a CPU


def test_cli_train_on_ray(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """``maesn-sb3 train ... --ray-address ADDRESS --workers N`` collects on the cluster (here the one this
    process joined); a worker count the task slots cannot fill is a usage error."""
    common = ["train", "--timesteps", "96", "--n-tasks", "2", "--envs-per-task", "3", "--n-train-tasks", "2"]
    common += ["--n-test-tasks", "0", "--env-kwarg", "max_episode_steps=8", "--no-progress"]
    address = ray.get_runtime_context().gcs_address
    output = tmp_path / "run"
    assert cli.main([*common, "--ray-address", address, "--workers", "2", "--output", str(output)]) == 0
    assert MAESN.load(output / "model.zip").num_timesteps == 96
    assert cli.main([*common, "--workers", "3", "--output", str(tmp_path / "bad")]) == 2
    assert "--workers must be in [1, --n-tasks = 2]" in capsys.readouterr().err


def test_benchmark_cells_run_as_ray_tasks(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """``benchmarks/adaptation.py --ray-address`` runs each (method, seed) cell as one Ray task."""
    from maesn_sb3.benchmark import main as benchmark

    args = ["--tier", "quick", "--methods", "scratch", "--seeds", "0", "1", "--test-tasks", "2"]
    args += ["--adapt-iterations", "1", "--adapt-episodes", "20", "--budget-scale", "0.004"]
    args += ["--speed-steps", "0", "--output", str(tmp_path / "run")]
    assert benchmark([*args, "--ray-address", ray.get_runtime_context().gcs_address]) == 0
    assert "0 cells already done, 2 to run" in capsys.readouterr().out
    rows = (tmp_path / "run" / "training.csv").read_text().splitlines()
    assert sorted(row.split(",")[:2] for row in rows[1:]) == [["scratch", "0"], ["scratch", "1"]]
