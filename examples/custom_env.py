"""Bring your own env: a custom Gymnasium env made into a task family, wrapped and meta-trained.

``HiddenTarget1D`` is a plain Gymnasium env (a point on a line looks for a hidden target) that opts
into the task API with three methods: ``sample_tasks(n)`` draws targets from the env's seeded
generator, ``set_task(task)`` switches target, ``get_task()`` returns it. The target lies on the left
or on the right, never in the observation, so the agent must explore: exactly what a latent drawn
once per episode is good for (one latent direction per side).

Then: ``check_task_env``, a seeded ``TaskSet`` split, ``make_meta_vec_env`` (wraps every sub-env in a
``LatentWrapper``), MAESN meta-training, and adaptation to held-out targets with the sparse reward.

Run: ``python examples/custom_env.py [--timesteps 300000]`` (well under a minute on one core).
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from maesn_sb3 import MAESN, TaskSet, check_task_env, make_meta_vec_env
from maesn_sb3.cli import HelpFormatter


class HiddenTarget1D(gym.Env):
    """A point on [-1, 1] moves by ``0.1 * action`` per step; the target is at ``task["target"]``.

    Dense reward: ``-|x - target|``; sparse: 1 within 0.1 of the target, else 0.
    ``info["is_success"]`` is True once the target was reached in the episode.
    """

    metadata = {"render_modes": []}

    def __init__(self, reward_type: str = "dense") -> None:
        if reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type must be 'dense' or 'sparse', got {reward_type!r}")
        self.reward_type = reward_type
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._task = {"target": 0.75}
        self._x, self._reached = 0.0, False

    # -- the task API: three methods --------------------------------------------------------------
    def sample_tasks(self, n: int) -> list[dict[str, float]]:
        """``n`` targets, half on each side, from the env's seeded generator."""
        sides = self.np_random.choice([-1.0, 1.0], size=n)
        return [
            {"target": float(s * d)} for s, d in zip(sides, self.np_random.uniform(0.5, 0.95, n), strict=True)
        ]

    def set_task(self, task: dict[str, float]) -> None:
        if not isinstance(task, dict) or not -1.0 <= float(task.get("target", np.nan)) <= 1.0:
            raise ValueError(f"task must be a dict with a 'target' in [-1, 1], got {task!r}")
        self._task = {"target": float(task["target"])}

    def get_task(self) -> dict[str, float]:
        return dict(self._task)

    # -- a standard Gymnasium env --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._x, self._reached = 0.0, False
        return np.array([self._x], dtype=np.float32), {"is_success": False}

    def step(self, action: np.ndarray):
        self._x = float(np.clip(self._x + 0.1 * float(np.clip(action[0], -1.0, 1.0)), -1.0, 1.0))
        distance = abs(self._x - self._task["target"])
        self._reached |= distance < 0.1
        if self.reward_type == "dense":
            reward = -distance
        else:
            reward = float(distance < 0.1)
        return (
            np.array([self._x], dtype=np.float32),
            float(reward),
            False,
            False,
            {"is_success": self._reached},
        )


def make_env(**kwargs: Any) -> gym.Env:
    return gym.wrappers.TimeLimit(HiddenTarget1D(**kwargs), max_episode_steps=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--timesteps", type=int, default=300_000, help="meta-training env steps")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and phase / iteration")
    parser.add_argument("--adapt-iterations", type=int, default=3, help="latent updates per held-out task")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)

    env = make_env()
    check_task_env(env)  # raises a clear error if a task method is missing
    check_env(env.unwrapped, skip_render_check=True)  # Gymnasium's own checker
    tasks = TaskSet.from_env(make_env, n_train=40, n_test=6, seed=args.seed)

    venv = make_meta_vec_env(make_env, n_tasks=10, envs_per_task=args.episodes, latent_dim=1, seed=args.seed,
                             tasks=tasks)  # fmt: skip
    model = MAESN("MlpPolicy", venv, task_set=tasks, seed=args.seed, policy_kwargs={"net_arch": [32, 32]})
    model.learn(args.timesteps, progress_bar=True)
    means = model.latents.means.detach().numpy()[:, 0]
    targets = np.array([t["target"] for t in tasks.train])
    print(f"meta-trained latent means: {means[targets < 0].mean():+.2f} for left targets, "
          f"{means[targets > 0].mean():+.2f} for right targets")  # fmt: skip

    test_env = make_meta_vec_env(
        make_env, n_tasks=len(tasks.test), envs_per_task=args.episodes, latent_dim=1, seed=args.seed + 1,
        tasks=tasks.test, env_kwargs={"reward_type": "sparse"},
    )  # fmt: skip
    result = model.adapt(test_env, n_iterations=args.adapt_iterations)
    print("held-out targets:", [round(t["target"], 2) for t in tasks.test])
    for k in range(len(result.env_steps)):
        latents = np.round(result.latent_means[k, :, 0], 2)
        print(f"iteration {k}: success {result.mean_success[k]:.0%}, latent means {latents}")
    venv.close()
    test_env.close()


if __name__ == "__main__":
    main()
