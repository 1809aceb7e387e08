"""How an env's success flag becomes ``is_success``: the modes of ``MetaTaskVecEnv`` and that every
consumer (collect_episodes, MAESN.adapt, the PPO baselines, RL2) counts an episode the same way."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO

from maesn_sb3 import MAESN, RL2, make_meta_vec_env, ppo_from_scratch
from maesn_sb3.common.rollouts import collect_episodes
from maesn_sb3.ppo import finetune_ppo
from wrappers import RL2Wrapper

HORIZON = 6


class FlashEnv(gym.Env):
    """Task ``k``: ``info["success"]`` is 1.0 at step ``k`` only (per step, not sticky, as Meta-World's);
    with ``at_end=True`` it is reported once, at the episode's last step (a flag at termination)."""

    observation_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def __init__(self, at_end: bool = False) -> None:
        self.k, self.t, self.at_end = 2, 0, at_end

    def sample_tasks(self, n: int) -> list[int]:
        return [int(k) for k in self.np_random.integers(1, HORIZON, size=n)]

    def set_task(self, task: int) -> None:
        self.k = task

    def get_task(self) -> int:
        return self.k

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: np.ndarray):
        self.t += 1
        flag = self.t == HORIZON if self.at_end else self.t == self.k
        return np.array([self.t / HORIZON], dtype=np.float32), 0.0, False, False, {"success": float(flag)}


def flash_env(at_end: bool = False) -> gym.Env:
    """A FlashEnv in a TimeLimit, without a spec (as a hand-made or foreign env comes)."""
    return gym.wrappers.TimeLimit(FlashEnv(at_end), max_episode_steps=HORIZON)


def meta(mode: str, at_end: bool = False, latent_dim: int | None = None, n_tasks: int = 2, **kwargs: Any):
    return make_meta_vec_env(
        flash_env,
        n_tasks=n_tasks,
        envs_per_task=2,
        seed=0,
        tasks=[2, 3, 4][:n_tasks],
        env_kwargs={"at_end": at_end},
        success_mode=mode,
        latent_dim=latent_dim,
        **kwargs,
    )


def test_modes_translate_a_per_step_flag() -> None:
    flags = {}
    for mode in ("any", "last", "env"):
        venv = meta(mode, n_tasks=1)  # task 2: the flag is set at step 2 only
        venv.reset()
        seen = []
        for _ in range(HORIZON):
            _, _, dones, infos = venv.step(np.zeros((2, 1), dtype=np.float32))
            seen.append(infos[0].get("is_success"))
        flags[mode] = seen
        assert dones.all()
        # the next episode starts unsolved
        _, _, _, infos = venv.step(np.zeros((2, 1), dtype=np.float32))
        assert infos[0].get("is_success") in (False, None)
    assert flags["any"] == [False, True, True, True, True, True]
    assert flags["last"] == [False, True, False, False, False, False]
    assert flags["env"] == [None] * HORIZON  # only the env's own is_success, and it reports none


@pytest.mark.parametrize("at_end", [False, True])
def test_collect_episodes_counts_by_the_mode(at_end: bool) -> None:
    policy = PPO("MlpPolicy", meta("any"), seed=0).policy
    success = {}
    for mode in ("any", "last", "env"):
        batch, completed = collect_episodes(meta(mode, at_end), policy, n_rounds=2)
        assert completed and batch.n_episodes == 8
        success[mode] = batch.success.tolist()
    assert success["any"] == [True] * 8  # the flag was set in every episode
    assert success["last"] == [at_end] * 8  # a flag at termination is the last step's; a flash is not
    assert success["env"] == [False] * 8


def test_invalid_mode_is_refused_early() -> None:
    with pytest.raises(ValueError, match="success_mode must be one of"):
        make_meta_vec_env(flash_env, n_tasks=1, tasks=[2], success_mode="ever")


@pytest.mark.parametrize("mode", ["any", "last"])
def test_adapt_and_baselines_count_as_the_env_does(mode: str) -> None:
    expected = 1.0 if mode == "any" else 0.0
    model = MAESN("MlpPolicy", meta(mode, latent_dim=2), task_set=None, n_train_tasks=2, seed=0)
    result = model.adapt(meta(mode, latent_dim=2), n_iterations=1, evaluate=True)
    assert np.all(result.success == expected) and np.all(result.eval_success == expected)
    # PPO from scratch and fine-tuned: the sub-envs have a TimeLimit but no spec
    curve = ppo_from_scratch(meta(mode), n_iterations=1, seed=0, n_epochs=1)
    assert np.all(curve.success == expected)
    curve = finetune_ppo(PPO("MlpPolicy", meta(mode), seed=0), meta(mode), n_iterations=1, seed=0)
    assert np.all(curve.success == expected)
    trials = {"wrapper_class": RL2Wrapper, "wrapper_kwargs": {"episodes_per_trial": 2}}
    rl2 = RL2("MlpLstmPolicy", meta(mode, **trials), n_train_tasks=2, seed=0, n_steps=HORIZON * 2)
    assert np.all(rl2.adapt(meta(mode, **trials), seed=0).success == expected)
