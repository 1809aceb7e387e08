"""Compare MAESN with SB3 baselines on held-out sparse-reward goals of the 2D point task.

Every method gets the same meta-training budget on the 100 training goals (dense reward) and then,
on each held-out goal (sparse reward), ``--adapt-iterations`` rounds of ``--episodes`` exploration
episodes, each round followed by one update:

- **MAESN**: adapts only its per-task latent (policy frozen), learned step sizes halved each round.
- **multi-task PPO**: SB3 PPO trained on all training goals at once (``MetaTaskVecEnv``, no latent),
  then fine-tuned with one PPO update per round on the held-out goal.
- **PPO from scratch**: a fresh SB3 PPO on the held-out goal, one update per round.

The table is the success rate of each round's exploration episodes, averaged over held-out goals.

Run: ``python examples/compare_sb3.py [--timesteps 1000000] [--test-tasks 5]`` (a few minutes on one core).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from maesn_sb3 import MAESN, TaskSet, make_meta_vec_env
from maesn_sb3.cli import HelpFormatter

ENV_ID = "maesn_sb3/PointNav2D-v0"
HORIZON = 50


class EpisodeSuccess(BaseCallback):
    """Collects ``info["is_success"]`` of the episodes that end during ``learn``."""

    def __init__(self) -> None:
        super().__init__()
        self.success: list[bool] = []

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if done:
                self.success.append(bool(info.get("is_success", False)))
        return True


def ppo(env: Any, seed: int) -> PPO:
    # one rollout = one episode per env; ``n_epochs`` passes over it per update
    return PPO("MlpPolicy", env, n_steps=HORIZON, batch_size=env.num_envs * HORIZON // 4, n_epochs=5,
               learning_rate=1e-3, seed=seed)  # fmt: skip


def ppo_adaptation(model: PPO | None, task: Any, args: argparse.Namespace, seed: int) -> list[float]:
    """Success per round on one held-out goal: PPO fine-tuned from ``model`` (or from scratch when None)."""
    env = make_meta_vec_env(ENV_ID, n_tasks=1, envs_per_task=args.episodes, seed=seed, tasks=[task],
                            env_kwargs={"reward_type": "sparse"})  # fmt: skip
    learner = ppo(env, seed)
    if model is not None:
        learner.policy.load_state_dict(model.policy.state_dict())
    rates = []
    for k in range(args.adapt_iterations + 1):
        callback = EpisodeSuccess()
        learner.learn(args.episodes * HORIZON, callback=callback, reset_num_timesteps=k == 0)
        rates.append(float(np.mean(callback.success)))
    env.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--timesteps", type=int, default=1_000_000, help="meta-training env steps per method")
    parser.add_argument("--tasks-per-iteration", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and round")
    parser.add_argument("--test-tasks", type=int, default=5)
    parser.add_argument("--adapt-iterations", type=int, default=5, help="latent updates per held-out task")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)
    tasks = TaskSet.from_env(ENV_ID, n_train=100, n_test=args.test_tasks, seed=args.seed)
    layout = {"n_tasks": args.tasks_per_iteration, "envs_per_task": args.episodes, "seed": args.seed}

    print("meta-training MAESN ...")
    env = make_meta_vec_env(ENV_ID, latent_dim=2, tasks=tasks, **layout)
    maesn = MAESN("MlpPolicy", env, task_set=tasks, seed=args.seed).learn(args.timesteps, progress_bar=True)
    env.close()
    test_env = make_meta_vec_env(
        ENV_ID, n_tasks=len(tasks.test), envs_per_task=args.episodes, latent_dim=2, seed=args.seed + 1,
        tasks=tasks.test, env_kwargs={"reward_type": "sparse"},
    )  # fmt: skip
    curves = {"MAESN": maesn.adapt(test_env, n_iterations=args.adapt_iterations, evaluate=False).mean_success}
    test_env.close()

    print("training multi-task PPO ...")
    env = make_meta_vec_env(ENV_ID, tasks=tasks, **layout)
    multitask, rng = ppo(env, args.seed), np.random.default_rng(args.seed)
    while multitask.num_timesteps < args.timesteps:  # new training goals for every rollout, as MAESN
        env.set_tasks([tasks.train[i] for i in rng.choice(len(tasks.train), size=env.n_tasks, replace=False)])
        multitask.learn(env.num_envs * HORIZON, reset_num_timesteps=False, progress_bar=False)
    env.close()

    print("adapting the PPO baselines to each held-out goal ...")
    for name, start in (("multi-task PPO", multitask), ("PPO from scratch", None)):
        per_task = [ppo_adaptation(start, task, args, args.seed + 1 + i) for i, task in enumerate(tasks.test)]
        curves[name] = np.mean(per_task, axis=0)

    print(
        f"\nsuccess on {len(tasks.test)} held-out goals (sparse reward), {args.episodes} episodes per round"
    )
    print(f"{'round':>5}" + "".join(f"{name:>18}" for name in curves))
    for k in range(args.adapt_iterations + 1):
        print(f"{k:>5}" + "".join(f"{curve[k]:>18.0%}" for curve in curves.values()))


if __name__ == "__main__":
    main()
