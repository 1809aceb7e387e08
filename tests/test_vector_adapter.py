"""VectorEnvAdapter: SB3's VecEnv contract over a Gymnasium VectorEnv, and the native backend's errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from maesn_sb3 import make_meta_vec_env
from maesn_sb3.vector_adapter import MonitoredVectorEnvAdapter, VectorEnvAdapter, infos_per_env
from wrappers import LatentVectorWrapper, LatentWrapper

POINT = "maesn_sb3/PointNav2D-v0"
KWARGS = {"max_episode_steps": 6, "goal_radius": 0.3}


def dummy(n: int, latent: bool = True) -> DummyVecEnv:
    def make() -> gym.Env:
        env = gym.make(POINT, **KWARGS)
        return LatentWrapper(env, latent_dim=2) if latent else env

    return DummyVecEnv([make] * n)


def native(n: int, latent: bool = True) -> VectorEnvAdapter:
    envs = gym.make_vec(POINT, num_envs=n, vectorization_mode="vector_entry_point", **KWARGS)
    return VectorEnvAdapter(LatentVectorWrapper(envs, latent_dim=2) if latent else envs)


def assert_same_infos(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert sorted(a) == sorted(b), (sorted(a), sorted(b))
        for key in b:
            assert type(a[key]) is type(b[key]), (key, type(a[key]), type(b[key]))
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def rollout_both(first: VecEnv, second: VecEnv, steps: int, seed: int) -> None:
    """Same seeds, tasks and actions: the same observations, rewards, dones, infos and reset infos."""
    goals = np.random.default_rng(seed).uniform(-0.3, 0.3, size=(first.num_envs, 2))
    for venv in (first, second):
        for i, goal in enumerate(goals):
            venv.env_method("set_task", {"goal": goal}, indices=[i])
        venv.seed(seed)
    np.testing.assert_array_equal(first.reset(), second.reset())
    assert_same_infos(first.reset_infos, second.reset_infos)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        actions = rng.uniform(-1.5, 1.5, size=(first.num_envs, 2)).astype(np.float32)
        out_first, out_second = first.step(actions), second.step(actions)
        for a, b in zip(out_first[:3], out_second[:3], strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        assert_same_infos(out_first[3], out_second[3])
        assert_same_infos(first.reset_infos, second.reset_infos)


@pytest.mark.parametrize("latent", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_same_as_dummy_vec_env_step_by_step(latent: bool, seed: int) -> None:
    rollout_both(native(5, latent), dummy(5, latent), steps=20, seed=seed)


def test_disabled_autoreset_mode_is_reset_by_the_adapter() -> None:
    def make() -> gym.Env:
        return gym.make(POINT, **KWARGS)

    envs = SyncVectorEnv([make] * 3, autoreset_mode=AutoresetMode.DISABLED)
    rollout_both(VectorEnvAdapter(envs), dummy(3, latent=False), steps=14, seed=3)


def test_next_step_mode_is_refused() -> None:
    envs = SyncVectorEnv([lambda: gym.make(POINT)] * 2)
    with pytest.raises(ValueError, match=r"must auto-reset in AutoresetMode\.SAME_STEP or DISABLED"):
        VectorEnvAdapter(envs)
    with pytest.raises(TypeError, match=r"env must be a gymnasium\.vector\.VectorEnv, got PointNav2DEnv"):
        VectorEnvAdapter(gym.make(POINT).unwrapped)  # type: ignore[arg-type]


def test_env_method_get_attr_set_attr_routing() -> None:
    venv = native(4)
    venv.env_method("set_task", {"goal": [0.5, 0.0]}, indices=[1, 3])
    goals = venv.env_method("get_task")
    assert [goal["goal"].tolist() for goal in goals] == [[0.0, 1.0], [0.5, 0.0], [0.0, 1.0], [0.5, 0.0]]
    sampled = venv.env_method("sample_tasks", 3, indices=[2])
    assert len(sampled) == 1 and len(sampled[0]) == 3
    venv.env_method("set_latent_distribution", [1.0, 2.0], 0.0, indices=[0])
    means = [mean.tolist() for mean, _ in venv.get_attr("latent_distribution")]
    assert means == [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    assert venv.get_attr("reward_type", indices=[0, 2]) == ["dense", "dense"]
    assert venv.get_attr("latent_dim") == [2] * 4
    venv.set_attr("step_size", 0.2)  # a shared attribute, for every env
    assert venv.get_attr("step_size") == [0.2] * 4
    venv.set_attr("marker", 3, indices=2)  # a new name: kept per env
    assert venv.get_attr("marker", indices=[2]) == [3]
    assert venv.has_attr("set_task") and not venv.has_attr("marker") and not venv.has_attr("nothing")
    assert venv.env_is_wrapped(LatentWrapper) == [True] * 4
    assert venv.env_is_wrapped(gym.wrappers.TimeLimit, indices=[1]) == [True]
    assert venv.env_is_wrapped(Monitor) == [False] * 4
    assert native(2, latent=False).env_is_wrapped(LatentWrapper) == [False, False]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda v: v.env_method("get_task", indices=[4]), IndexError, r"ints in \[0, 4\), got \[4\]"),
        (lambda v: v.get_attr("reward_type", indices=[-1]), IndexError, r"ints in \[0, 4\), got \[-1\]"),
        (lambda v: v.env_method("set_task", {"goal": [0, 1]}, indices=[1.0]), IndexError, "indices must be"),
        (lambda v: v.env_method("set_task", {"target": [0, 1]}), ValueError, "task must be a dict with keys"),
        (lambda v: v.env_method("close", indices=[0]), ValueError, "'close' acts on the whole batch"),
        (lambda v: v.env_method("no_method"), AttributeError, "has a method 'no_method'"),
        (lambda v: v.set_attr("step_size", 0.2, indices=[0]), ValueError, "one attribute of the whole batch"),
        (lambda v: v.get_attr("no_attribute"), AttributeError, "has an attribute 'no_attribute'"),
    ],
)
def test_bad_input(call: Callable[[VecEnv], Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call(native(4))


def test_options_seeds_and_render() -> None:
    venv = native(3)
    venv.set_options({"latent": [0.5, 0.25]})
    venv.reset()
    np.testing.assert_array_equal([info["latent"] for info in venv.reset_infos], [[0.5, 0.25]] * 3)
    venv.set_options([{"latent": [0.5, 0.25]}, {}, {}])
    with pytest.raises(ValueError, match="takes one options dict for all its envs"):
        venv.reset()
    envs = gym.make_vec(POINT, num_envs=3, vectorization_mode="vector_entry_point", render_mode="rgb_array")
    frame = VectorEnvAdapter(envs).render(mode="rgb_array")
    assert frame is not None and frame.shape == (200, 200, 3)


def test_infos_per_env_types_and_masks() -> None:
    infos = {
        "a": np.array([1.5, 2.5]),
        "_a": np.array([True, False]),
        "b": np.array([True, False]),
        "_b": np.array([True, True]),
        "c": {"d": np.array([1, 2]), "_d": np.array([False, True])},
        "_c": np.array([True, True]),
    }
    assert infos_per_env(infos, 2) == [{"a": 1.5, "b": True, "c": {}}, {"b": False, "c": {"d": 2}}]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"env_id": "Pendulum-v1"}, ValueError, "'Pendulum-v1' has none: use vectorization='dummy'"),
        (
            {"env_id": lambda: gym.make(POINT)},
            TypeError,
            "needs a registered env id with a vector_entry_point",
        ),
        (
            {"vectorization": "threads"},
            ValueError,
            r"vectorization must be one of \('dummy', 'subproc', 'native', 'ray'\)",
        ),
        ({"vec_env_cls": SubprocVecEnv}, ValueError, "vec_env_cls=SubprocVecEnv contradicts vectorization"),
        ({"wrapper_class": gym.wrappers.ClipAction}, ValueError, "'native' does not take wrapper_class"),
    ],
)
def test_native_backend_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    options: dict[str, Any] = {"env_id": POINT, "n_tasks": 2, "seed": 0, "vectorization": "native"}
    options.update(kwargs)
    if "Pendulum" in str(options["env_id"]) or callable(options["env_id"]):
        options["tasks"] = [{"goal": np.zeros(2)}] * 2
    with pytest.raises(error, match=match):
        make_meta_vec_env(**options)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "backend"),
    [
        (POINT, {}, MonitoredVectorEnvAdapter),  # the family has a batch: native by default
        (POINT, {"wrapper_class": gym.wrappers.ClipAction}, DummyVecEnv),  # a per-env wrapper
        (POINT, {"monitor_kwargs": {"info_keywords": ("distance",)}}, DummyVecEnv),
        (POINT, {"vec_env_cls": DummyVecEnv}, DummyVecEnv),
        ("test/PointWithoutBatch-v0", {}, DummyVecEnv),  # no vector_entry_point
    ],
)
def test_default_backend(env_id: str, kwargs: dict[str, Any], backend: type) -> None:
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=gym.spec(POINT).entry_point, max_episode_steps=50)
    venv = make_meta_vec_env(env_id, n_tasks=2, seed=0, **kwargs)
    assert type(venv.venv) is backend
    venv.close()


@pytest.mark.parametrize("algo", [PPO, SAC])
def test_sb3_algorithms_learn_on_the_native_backend(algo: type) -> None:
    torch.set_num_threads(1)
    venv = make_meta_vec_env(POINT, n_tasks=2, envs_per_task=2, seed=0, latent_dim=2, vectorization="native")
    if algo is PPO:
        model = algo("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0)
    else:
        model = algo("MlpPolicy", venv, learning_starts=50, batch_size=32, seed=0)
    model.learn(400)
    assert len(model.ep_info_buffer) > 0 and len(model.ep_success_buffer) > 0
    rewards, lengths = evaluate_policy(model, venv, n_eval_episodes=4, return_episode_rewards=True)
    assert len(rewards) == 4 and lengths == [50] * 4 and np.all(np.isfinite(rewards))


def test_terminations_through_the_whole_stack_match_dummy() -> None:
    """AntGoal falls (terminated, not truncated): native and dummy MetaTaskVecEnvs agree step by step."""
    kwargs = {
        "n_tasks": 2,
        "envs_per_task": 2,
        "seed": 1,
        "latent_dim": 2,
        "env_kwargs": {"max_episode_steps": 9, "healthy_z_range": (0.55, 1.0)},
    }
    native = make_meta_vec_env("maesn_sb3/AntGoal-v0", vectorization="native", **kwargs)
    dummy = make_meta_vec_env("maesn_sb3/AntGoal-v0", vectorization="dummy", **kwargs)
    np.testing.assert_array_equal(native.reset(), dummy.reset())
    rng = np.random.default_rng(0)
    terminated = truncated = 0
    for _ in range(20):
        actions = rng.uniform(-1, 1, size=(4, 8)).astype(np.float32)
        (obs, rewards, dones, infos), expected = native.step(actions), dummy.step(actions)
        np.testing.assert_array_equal(obs, expected[0])
        np.testing.assert_array_equal(rewards, expected[1])
        np.testing.assert_array_equal(dones, expected[2])
        for got, want in zip(infos, expected[3], strict=True):
            if "episode" in want:  # Monitor vs VecMonitor: the same length and return, own clocks
                got_episode, want_episode = got.pop("episode"), want.pop("episode")
                assert got_episode["l"] == want_episode["l"]
                assert got_episode["r"] == pytest.approx(want_episode["r"], abs=1e-5)
            assert_same_infos([got], [want])
            terminated += "terminal_observation" in want and not want["TimeLimit.truncated"]
            truncated += want["TimeLimit.truncated"]
        assert_same_infos(native.reset_infos, dummy.reset_infos)
    assert terminated > 0 and truncated > 0
