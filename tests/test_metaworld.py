"""Meta-World as a task suite: the ML1/ML10 adapters, the benchmark's own split, seeding, the sparse
reward, the glue of the algorithms, and the agents scored by Meta-World's own evaluation.

They need Meta-World (MuJoCo 3.3, so a second venv: ``make test-metaworld``); without it they are
skipped locally with the reason, and fail under CI (env ``CI=true``). Episodes are cut to a few steps.
"""

from __future__ import annotations

import os
import runpy
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch as th
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import PPO

from maesn_sb3 import MAESN, MAML, MultiTaskPPO, TaskSet, check_task_env, finetune_ppo
from maesn_sb3.metaworld import (
    MAESNAgent,
    MAMLAgent,
    MetaWorldTaskEnv,
    PPOFinetuneAgent,
    make_benchmark,
    make_metaworld_env,
    metalearning_evaluation,
    metaworld_agent,
    metaworld_task_set,
)

pytestmark = pytest.mark.metaworld
SHORT = 8  # steps per episode in these tests


@pytest.fixture(autouse=True)
def metaworld_installed() -> None:
    try:
        import metaworld  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("Meta-World is not installed, and CI must run these tests: make test-metaworld")
        pytest.skip("Meta-World is not installed: pip install 'maesn-sb3[metaworld]' (make test-metaworld)")


def reach(**kwargs) -> MetaWorldTaskEnv:
    return MetaWorldTaskEnv("ML1", "reach-v3", max_episode_steps=SHORT, **kwargs)


def test_ml1_adapter_passes_the_checkers() -> None:
    env = reach()
    check_task_env(env)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unbounded observation entries
        gym_check_env(env, skip_render_check=True)
    env.reset(seed=0)
    for t in range(SHORT):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated and truncated == (t == SHORT - 1)
        assert info["sparse_reward"] == float(info["success"])


def test_tasks_come_from_the_benchmark_split() -> None:
    bench = make_benchmark("ML1", "reach-v3", seed=0)
    task_set = metaworld_task_set("ML1", "reach-v3", seed=0)
    assert task_set.train == list(bench.train_tasks) and task_set.test == list(bench.test_tasks)
    assert len(task_set.train) == len(task_set.test) == 50  # disjoint: TaskSet checks it
    for split, pool in (("train", bench.train_tasks), ("test", bench.test_tasks)):
        env = reach(split=split)
        env.reset(seed=1)
        drawn = env.sample_tasks(20)
        assert len({t.data for t in drawn}) == 20 and all(t in pool for t in drawn)
    ml10 = metaworld_task_set("ML10", seed=0)
    assert {t.env_name for t in ml10.train} == set(make_benchmark("ML10").train_classes)
    assert {t.env_name for t in ml10.test}.isdisjoint({t.env_name for t in ml10.train})


def test_ml10_env_switches_classes_with_one_observation_space() -> None:
    env = MetaWorldTaskEnv("ML10", max_episode_steps=SHORT, max_cached_envs=2)
    check_task_env(env)
    env.reset(seed=0)
    names = []
    for task in env.sample_tasks(6):
        env.set_task(task)
        obs, _ = env.reset()
        assert env.observation_space.contains(obs)
        obs, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and env.get_task() is task
        names.append(type(env._env).__name__)
        assert len(env._envs) <= 2
    assert len(set(names)) > 1
    test_env = MetaWorldTaskEnv("ML10", split="test", max_episode_steps=SHORT)
    assert test_env.observation_space == env.observation_space
    with pytest.raises(ValueError, match="task must be a Meta-World task of ML10"):
        test_env.set_task(env.tasks[0])


def test_same_seed_same_latents_and_observations() -> None:
    def run(seed: int) -> tuple[list, np.ndarray]:
        venv = make_metaworld_env("ML1", "reach-v3", 2, 2, seed=seed, latent_dim=2, max_episode_steps=SHORT)
        observations = [venv.reset()]
        rng = np.random.default_rng(0)
        for _ in range(SHORT + 2):  # into the second episode (a fresh latent)
            observations.append(venv.step(rng.uniform(-1, 1, (4, 4)).astype(np.float32))[0])
        venv.close()
        return [t.data for t in venv.tasks], np.stack(observations)

    tasks, obs = run(3)
    tasks_again, obs_again = run(3)
    assert tasks == tasks_again
    np.testing.assert_array_equal(obs, obs_again)  # latents are the last 2 features
    _, obs_other = run(4)
    assert not np.array_equal(obs[..., -2:], obs_other[..., -2:])


def test_sparse_reward_is_the_success_flag() -> None:
    env = MetaWorldTaskEnv("ML1", "reach-v3", reward_type="sparse", max_episode_steps=150)
    obs, _ = env.reset(seed=0)
    goal, rewards = env._env._target_pos, []  # hidden from the observation (ML benchmarks)
    for _ in range(150):  # a scripted reach: the hand (obs[:3]) straight to the goal
        action = np.append(np.clip(10 * (goal - obs[:3]), -1, 1), 0.0).astype(np.float32)
        obs, reward, _, truncated, info = env.step(action)
        assert reward == info["sparse_reward"] == float(info["success"])
        rewards.append(reward)
        if truncated:
            break
    assert max(rewards) == 1.0  # the scripted expert reaches the goal


def test_glue_n_train_tasks_and_finetune_without_spec() -> None:
    env = make_metaworld_env("ML1", "reach-v3", 2, 1, latent_dim=2, max_episode_steps=SHORT)
    with pytest.raises(ValueError, match=r"100 tasks asked of the 50 train tasks.*n_train_tasks=50"):
        MAESN("MlpPolicy", env, seed=0)  # the default n_train_tasks=100
    tasks = metaworld_task_set("ML1", "reach-v3")
    assert len(MAESN("MlpPolicy", env, task_set=tasks, seed=0).task_set.train) == 50
    plain = make_metaworld_env("ML1", "reach-v3", 2, 1, max_episode_steps=SHORT, tasks=tasks.test[:2])
    assert plain.get_attr("spec", [0])[0] is None  # a horizon without a spec
    curve = finetune_ppo(PPO("MlpPolicy", plain, seed=0), plain, n_iterations=1, seed=0, n_epochs=1)
    assert curve.returns.shape == (2, 2) and np.all(np.isfinite(curve.returns))


def evaluate(agent, **kwargs):
    settings = dict(meta_batch_size=5, num_evals=1, adaptation_episodes=2, evaluation_episodes=2)
    return metalearning_evaluation(
        agent, "ML1", "reach-v3", max_episode_steps=SHORT, **{**settings, **kwargs}
    )


def test_maesn_is_scored_by_metaworld_evaluation() -> None:
    env = make_metaworld_env("ML1", "reach-v3", 2, 2, latent_dim=2, max_episode_steps=SHORT)
    model = MAESN("MlpPolicy", env, task_set=metaworld_task_set("ML1", "reach-v3"), seed=0)
    model.learn(2 * 2 * SHORT * 2)
    agent = metaworld_agent(model, seed=0)
    assert isinstance(agent, MAESNAgent)
    score = evaluate(agent, adaptation_steps=2)
    assert 0.0 <= score.success_rate <= 1.0 and set(score.success_per_task) == {"reach-v3"}
    assert agent.iteration == 2 and agent.mean.shape == (5, 2)
    assert th.all(agent.mean != 0)  # each test env's latent moved away from the prior
    # the agent's step is MAESN.adapt's: the same batch through adapt_latents gives the same latents
    again = MAESNAgent(model, seed=0)
    score_again = evaluate(again, adaptation_steps=2)
    assert score_again == score and th.equal(again.mean, agent.mean)


def test_ppo_baselines_are_scored_by_metaworld_evaluation() -> None:
    env = make_metaworld_env("ML1", "reach-v3", 2, 2, max_episode_steps=SHORT)
    model = MultiTaskPPO(
        "MlpPolicy", env, task_set=TaskSet(env.tasks, []), n_steps=SHORT, batch_size=16, seed=0
    )
    agent = metaworld_agent(model, seed=0, n_epochs=1)
    assert isinstance(agent, PPOFinetuneAgent)
    before = model.policy.state_dict()
    score = evaluate(agent)
    assert 0.0 <= score.success_rate <= 1.0
    changed = [not th.equal(before[k], v) for k, v in agent.copies[0].policy.state_dict().items()]
    assert any(changed)  # the copy was fine-tuned, the model untouched
    assert all(th.equal(before[k], v) for k, v in model.policy.state_dict().items())
    with pytest.raises(TypeError, match="no Meta-World agent adapts a"):
        metaworld_agent(object())


def test_maml_is_scored_by_metaworld_evaluation() -> None:
    env = make_metaworld_env("ML1", "reach-v3", 2, 2, max_episode_steps=SHORT)
    model = MAML("MlpPolicy", env, task_set=metaworld_task_set("ML1", "reach-v3"), seed=0)
    agent = metaworld_agent(model, seed=0)
    assert isinstance(agent, MAMLAgent)
    score = evaluate(agent)
    assert 0.0 <= score.success_rate <= 1.0 and agent.iteration == 1
    weights = model.actor_parameters()
    for name, adapted in agent.params.items():
        assert adapted.shape == (5, *weights[name].shape)
    assert any(not th.equal(agent.params[k][0], v) for k, v in weights.items())  # the step moved them


@pytest.mark.parametrize("bad", [{"benchmark": "ML2"}, {"env_name": "reach-v9"}, {"split": "val"}])
def test_bad_arguments_are_named(bad: dict) -> None:
    kwargs = {"benchmark": "ML1", "env_name": "reach-v3", **bad}
    with pytest.raises(ValueError, match=next(iter(bad))):
        MetaWorldTaskEnv(**kwargs)


def test_observations_match_metaworlds_own_envs() -> None:
    import metaworld

    ours = reach()
    task = ours.tasks[3]
    ours.set_task(task)
    theirs = metaworld.make_ml_envs_train("reach-v3", seed=0, meta_batch_size=1, max_episode_steps=SHORT)
    their_env = theirs.envs[0].unwrapped
    their_env.set_task(task)
    np.testing.assert_allclose(ours.reset(seed=0)[0], their_env.reset()[0])
    action = np.full(4, 0.5, dtype=np.float32)
    np.testing.assert_allclose(ours.step(action)[0], their_env.step(action)[0])
    theirs.close()


def test_the_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "maesn_metaworld.py"
    tiny = ["--timesteps", "64", "--tasks-per-iteration", "2", "--envs-per-task", "2"]
    tiny += ["--max-episode-steps", str(SHORT), "--meta-batch-size", "5", "--adaptation-episodes", "1"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["maesn_metaworld.py", *tiny])
    runpy.run_path(str(example), run_name="__main__")
    out = capsys.readouterr().out
    assert "meta-trained on 50 training tasks" in out and "Meta-World meta-test success:" in out
    assert "reach-v3:" in out
