"""Quickstart: MAESN on the 2D point task: learn, adapt, predict, save, load.

1. Fix a seeded split of the task family: 100 training goals, held-out goals for meta-test.
2. Meta-train MAESN with the dense reward (20 goals x 20 episodes per meta-iteration).
3. Adapt only the latent to the held-out goals with the sparse reward (the policy stays frozen).
4. ``predict`` with the adapted latent on raw observations, ``save`` and ``load`` the model.

Run: ``python examples/quickstart.py [--timesteps 1500000] [--seed 0]`` (about two minutes on one core;
pass a small ``--timesteps`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import gymnasium as gym
import numpy as np
import torch as th

from maesn_sb3 import MAESN, TaskSet, make_meta_vec_env
from maesn_sb3.cli import HelpFormatter

ENV_ID = "maesn_sb3/PointNav2D-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--timesteps", type=int, default=1_500_000, help="meta-training env steps")
    parser.add_argument("--tasks-per-iteration", type=int, default=20, help="task slots per meta-iteration")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and phase / iteration")
    parser.add_argument("--test-tasks", type=int, default=10, help="held-out goals")
    parser.add_argument("--adapt-iterations", type=int, default=5, help="latent updates per held-out task")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)  # small networks: one thread is fastest

    # 1. the task split
    tasks = TaskSet.from_env(ENV_ID, n_train=100, n_test=args.test_tasks, seed=args.seed)

    # 2. meta-training: dense reward, one latent distribution per training goal
    env = make_meta_vec_env(ENV_ID, n_tasks=args.tasks_per_iteration, envs_per_task=args.episodes,
                            latent_dim=2, seed=args.seed, tasks=tasks)  # fmt: skip
    model = MAESN("MlpPolicy", env, task_set=tasks, seed=args.seed, natural_gradient=True)
    model.learn(total_timesteps=args.timesteps, progress_bar=True)

    # 3. meta-test: every held-out goal in its own task slot, adapted independently, sparse reward
    test_env = make_meta_vec_env(
        ENV_ID, n_tasks=len(tasks.test), envs_per_task=args.episodes, latent_dim=2, seed=args.seed + 1,
        tasks=tasks.test, env_kwargs={"reward_type": "sparse"},
    )  # fmt: skip
    result = model.adapt(test_env, n_iterations=args.adapt_iterations)
    print("iteration  success (exploration)  success (mean latent)")
    for k, (explore, mean_z) in enumerate(zip(result.mean_success, result.eval_success.mean(1), strict=True)):
        print(f"{k:>9}  {explore:>21.0%}  {mean_z:>21.0%}")

    # 4. predict on a plain env (no latent in the observation): the model appends the adapted latent
    plain = gym.make(ENV_ID, reward_type="sparse")
    plain.unwrapped.set_task(tasks.test[0])
    model.adapted_latent_mean = result.latent_means[-1, :1]  # use held-out goal 0's adapted latent
    model.adapted_latent_log_std = result.latent_log_stds[-1, :1]
    obs, _ = plain.reset(seed=args.seed)
    done, info = False, {}
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = plain.step(action)
        done = terminated or truncated
    print(f"held-out goal 0 with its adapted mean latent: reached = {info['is_success']}")

    # save and load: the task split and the latent tables travel with the model
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "maesn_point")
        model.save(path)
        loaded = MAESN.load(path)
        probe = np.concatenate([obs, np.zeros(2, dtype=np.float32)])
        assert np.allclose(
            loaded.predict(probe, deterministic=True)[0], model.predict(probe, deterministic=True)[0]
        )
        print(
            f"saved and loaded: {len(loaded.task_set.train)} training tasks, latent_dim {loaded.latent_dim}"
        )
    env.close()
    test_env.close()


if __name__ == "__main__":
    main()
