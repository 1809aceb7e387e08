"""MAESN with skills and a mixed reward on PointNav2D: task reward + DIAYN skill reward, then adapt.

1. Every sub-env shows a per-episode skill (``SkillWrapper``, a one-hot) and MAESN's per-episode
   latent (``LatentWrapper``, outermost); the policy sees both.
2. ``VecSkillReward`` replaces the reward by ``extrinsic_coef * r_dense + intrinsic_coef *
   (log q(z | x, y) - log p(z))``, with the discriminator as it stands, and trains the discriminator
   on the episodes at every reset (so each batch MAESN uses is rewarded by one, current,
   discriminator). ``SkillRewardCallback`` logs its loss and accuracy.
3. ``adapt`` on held-out goals with the sparse task reward alone (no skill reward at test time).

Run: ``python examples/maesn_mixed_reward.py`` (a few minutes on one core), or with tiny budgets:
``python examples/maesn_mixed_reward.py --timesteps 2000 --n-tasks 2 --episodes 4 --test-tasks 2
--adapt-iterations 1``.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from maesn_sb3 import MAESN, MetaTaskVecEnv, TaskSet, make_meta_vec_env
from maesn_sb3.cli import HelpFormatter
from maesn_sb3.skills import SkillRewardCallback, VecSkillReward
from wrappers import SkillDiscriminator, SkillWrapper

ENV_ID = "maesn_sb3/PointNav2D-v0"


def make_mixed_env(
    tasks: list, envs_per_task: int, disc: SkillDiscriminator, intrinsic_coef: float, seed: int
) -> MetaTaskVecEnv:
    """Skill- and latent-wrapped dense-reward sub-envs behind a ``VecSkillReward``, laid out by task."""

    def backend(env_fns: list) -> VecEnv:
        return VecSkillReward(
            DummyVecEnv(env_fns), disc, extrinsic_coef=1.0, intrinsic_coef=intrinsic_coef, seed=seed
        )

    return make_meta_vec_env(
        ENV_ID, n_tasks=len(tasks), envs_per_task=envs_per_task, seed=seed, tasks=tasks, latent_dim=2,
        wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": disc.n_skills},
        env_kwargs={"reward_type": "dense"}, vec_env_cls=backend,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--skills", type=int, default=4)
    parser.add_argument("--intrinsic-coef", type=float, default=0.1, help="weight of the skill reward")
    parser.add_argument("--timesteps", type=int, default=1_000_000, help="MAESN meta-training env steps")
    parser.add_argument("--n-tasks", type=int, default=20, help="tasks per meta-iteration")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and phase")
    parser.add_argument("--test-tasks", type=int, default=10, help="held-out goals")
    parser.add_argument("--adapt-iterations", type=int, default=5, help="latent updates per held-out task")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)

    tasks = TaskSet.from_env(ENV_ID, n_train=100, n_test=args.test_tasks, seed=args.seed)
    skill_space = SkillWrapper(gym.make(ENV_ID), n_skills=args.skills).observation_space
    disc = SkillDiscriminator(
        skill_space, args.skills, features=[0, 1], net_arch=(64, 64), learning_rate=1e-3, seed=args.seed
    )
    env = make_mixed_env(tasks.train[: args.n_tasks], args.episodes, disc, args.intrinsic_coef, args.seed)
    model = MAESN("MlpPolicy", env, task_set=tasks, seed=args.seed, natural_gradient=True)
    model.learn(args.timesteps, callback=SkillRewardCallback())
    print(f"1-2. MAESN with skills, reward = r_dense + {args.intrinsic_coef} * r_skill: "
          f"{model.num_timesteps} env steps; discriminator: {disc.n_updates} updates")  # fmt: skip

    # the discriminator on fresh episodes of the meta-trained policy (prior latent, each skill)
    probe = make_meta_vec_env(
        ENV_ID, n_tasks=1, envs_per_task=20, seed=args.seed + 2, latent_dim=2,
        wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": args.skills},
    )  # fmt: skip
    obs, states = probe.reset(), []
    for _ in range(50):
        action, _ = model.predict(obs)
        obs, _, _, infos = probe.step(action)
        next_obs = [info.get("terminal_observation", o) for info, o in zip(infos, obs, strict=True)]
        states.append(np.array(next_obs)[:, :-2])  # without the latent
    print(f"     discriminator accuracy on the policy's states: {disc.accuracy(np.concatenate(states)):.2f} "
          f"(chance {1 / args.skills:.2f})")  # fmt: skip

    test_env = make_meta_vec_env(
        ENV_ID, n_tasks=len(tasks.test), envs_per_task=20, seed=args.seed + 1, tasks=tasks.test, latent_dim=2,
        wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": args.skills},
        env_kwargs={"reward_type": "sparse"},
    )  # fmt: skip
    result = model.adapt(test_env, n_iterations=args.adapt_iterations)
    print(f"3. adaptation to {len(tasks.test)} held-out goals, sparse reward, 20 episodes per iteration")
    print(f"{'iteration':>9} {'env steps':>10} {'success':>8} {'success (mean z)':>17}")
    for k in range(args.adapt_iterations + 1):
        print(f"{k:>9} {result.env_steps[k]:>10} {result.mean_success[k]:>8.2f} "
              f"{result.eval_success[k].mean():>17.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
