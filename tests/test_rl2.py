"""RL^2: the trial wrapper (observation, trial boundaries, spaces, checks) and the RecurrentPPO algorithm."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from maesn_sb3 import RL2, TaskSet, make_meta_vec_env
from tests.conftest import DictPoint, DiscretePoint
from wrappers import RL2Wrapper

ENV_ID = "maesn_sb3/PointNav2D-v0"


def point(horizon: int = 4, **kwargs) -> gym.Env:
    return gym.make(ENV_ID, max_episode_steps=horizon, **kwargs)


# -- the wrapper ----------------------------------------------------------------------------------
def test_a_trial_runs_several_episodes_and_shows_action_reward_and_done():
    env = RL2Wrapper(point(horizon=4, reward_type="dense"), episodes_per_trial=3)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs[2:], np.zeros(4))
    assert info["trial_episode"] == 0 and env.observation_space.contains(obs)
    goal = env.unwrapped.get_task()["goal"]
    ends = []
    for t in range(12):
        action = np.array([0.5, -0.25], dtype=np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["trial_episode"] == t // 4
        np.testing.assert_allclose(obs[2:4], action)
        assert obs[4] == pytest.approx(reward)
        inner_end = t % 4 == 3
        assert info["episode_done"] == inner_end
        assert obs[5] == float(inner_end and t < 11)  # the done flag; the trial's last step ends the trial
        if inner_end and t < 11:
            np.testing.assert_array_equal(obs[:2], np.zeros(2))  # the inner env was reset at once
            np.testing.assert_allclose(info["inner_terminal_observation"], [0.2, -0.1], atol=1e-6)
        ends.append(terminated or truncated)
        np.testing.assert_array_equal(env.unwrapped.get_task()["goal"], goal)  # one task per trial
    assert ends == [False] * 11 + [True]
    assert terminated and not truncated  # a trial ends as terminated: no bootstrap past it


def test_discrete_actions_are_one_hot_and_dict_observations_get_keys():
    env = RL2Wrapper(DiscretePoint(point()), episodes_per_trial=2)
    assert env.observation_space.shape == (2 + 4 + 2,)
    env.reset(seed=0)
    obs = env.step(2)[0]
    np.testing.assert_array_equal(obs[2:6], [0, 0, 1, 0])
    env = RL2Wrapper(DictPoint(point()), episodes_per_trial=2)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"position", "prev_action", "prev_reward", "prev_done"}
    obs = env.step(np.ones(2, dtype=np.float32))[0]
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["prev_action"], [1, 1])


def test_wrapper_passes_the_env_checkers_and_is_reproducible():
    gym_check_env(RL2Wrapper(point(), episodes_per_trial=2), skip_render_check=True)
    sb3_check_env(RL2Wrapper(point(), episodes_per_trial=2))
    wrapped = RL2Wrapper(point(), episodes_per_trial=2)
    assert wrapped.spec.additional_wrappers[-1].kwargs == {"episodes_per_trial": 2}

    def run(seed: int) -> np.ndarray:
        env = RL2Wrapper(point(), episodes_per_trial=2)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        return np.stack([env.step(env.action_space.sample())[0] for _ in range(8)])

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_wrapper_bad_input():
    for value in (0, 1.5, True, "2"):
        with pytest.raises(ValueError, match="episodes_per_trial"):
            RL2Wrapper(point(), episodes_per_trial=value)
    multi = point()
    multi.action_space = gym.spaces.MultiBinary(3)
    with pytest.raises(TypeError, match="action_space"):
        RL2Wrapper(multi)
    clash = DictPoint(point())
    clash.observation_space = gym.spaces.Dict({"prev_done": gym.spaces.Discrete(2)})
    with pytest.raises(ValueError, match="prev_done"):
        RL2Wrapper(clash)


# -- the algorithm --------------------------------------------------------------------------------
def rl2_env(seed: int = 0, trial: int = 3, env_kwargs: dict | None = None, **kwargs) -> object:
    return make_meta_vec_env(
        ENV_ID,
        n_tasks=2,
        envs_per_task=2,
        seed=seed,
        wrapper_class=RL2Wrapper,
        wrapper_kwargs={"episodes_per_trial": trial},
        env_kwargs=env_kwargs or {"max_episode_steps": 5},
        **kwargs,
    )


def small_rl2(seed: int = 0, **kwargs) -> RL2:
    return RL2(
        "MlpLstmPolicy",
        rl2_env(seed),
        n_train_tasks=6,
        n_steps=15,
        batch_size=30,
        n_epochs=2,
        seed=seed,
        **kwargs,
    )


def test_learn_resamples_tasks_per_rollout_and_save_load_round_trip(tmp_path):
    model = small_rl2()
    seen = []
    model.learn(
        120,
        callback=lambda _locals, _globals: (
            seen.append(tuple(float(t["goal"][0]) for t in model.env.tasks)) or True
        ),
    )
    assert len(set(seen)) == 2  # 120 steps = 2 rollouts of 4 envs x 15 steps, each on new tasks
    train_goals = {float(t["goal"][0]) for t in model.task_set.train}
    assert {g for s in seen for g in s} <= train_goals
    obs = model.env.reset()
    actions, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "rl2")
    loaded = RL2.load(tmp_path / "rl2", env=rl2_env())
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], actions)
    assert len(loaded.task_set.train) == 6
    loaded.learn(60)


def test_env_needs_the_trial_wrapper():
    with pytest.raises(ValueError, match="RL2Wrapper"):
        RL2("MlpLstmPolicy", make_meta_vec_env(ENV_ID, n_tasks=2, seed=0))
    with pytest.raises(TypeError, match="MetaTaskVecEnv"):
        RL2("MlpLstmPolicy", DummyVecEnv([lambda: RL2Wrapper(point())]))


def test_adapt_reports_each_episode_of_the_trials():
    model = small_rl2().learn(60)
    tasks = TaskSet.from_env(ENV_ID, n_train=1, n_test=2, seed=4).test
    env = rl2_env(seed=3, tasks=tasks, env_kwargs={"max_episode_steps": 5, "reward_type": "sparse"})
    first = model.adapt(env, episodes_per_iteration=4, seed=1)
    second = model.adapt(env, n_iterations=2, episodes_per_iteration=4, seed=1)
    assert first.returns.shape == first.success.shape == (3, 2)  # trial of 3 episodes, 2 task slots
    np.testing.assert_array_equal(first.env_steps, [20, 40, 60])  # 4 trials x 5 steps per episode
    np.testing.assert_array_equal(first.returns, second.returns)
    assert set(np.unique(first.success * 4)) <= set(range(5))
    with pytest.raises(ValueError, match="n_iterations"):
        model.adapt(env, n_iterations=5)
    with pytest.raises(ValueError, match="episodes_per_iteration"):
        model.adapt(env, episodes_per_iteration=3)
    single = model.adapt(RL2Wrapper(point(horizon=5), episodes_per_trial=3))
    assert single.returns.shape == (3, 1)
    with pytest.raises(ValueError, match="RL2Wrapper"):
        model.adapt(point(horizon=5))
