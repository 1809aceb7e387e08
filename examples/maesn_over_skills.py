"""MAESN over DIAYN skills on PointNav2D: pre-train skills, meta-train a high level over them, adapt.

1. DIAYN: SB3 SAC learns ``--skills`` skills from the skill reward alone (``SkillWrapper``,
   ``SkillDiscriminator`` on the x-y position, ``DIAYNReplayBuffer``), no task reward.
2. The frozen skill policy becomes the action space: ``SkillActionVecEnv`` runs skill ``k`` for
   ``--skill-steps`` env steps, batched over all sub-envs. MAESN meta-trains a categorical high
   level over the skills, conditioned on its per-task latent, on the dense goal reward.
3. ``adapt`` on held-out goals with the sparse reward: only the latent moves, from the prior.

Run: ``python examples/maesn_over_skills.py`` (a few minutes on one core), or with tiny budgets:
``python examples/maesn_over_skills.py --diayn-timesteps 2000 --timesteps 2000 --n-tasks 2 --episodes 4
--test-tasks 2 --adapt-iterations 1``.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env

from maesn_sb3 import MAESN, TaskSet, make_meta_vec_env
from maesn_sb3.cli import HelpFormatter
from maesn_sb3.skills import DIAYNCallback, DIAYNReplayBuffer, SkillActionVecEnv
from wrappers import SkillDiscriminator, SkillWrapper

ENV_ID = "maesn_sb3/PointNav2D-v0"


def train_skills(n_skills: int, timesteps: int, seed: int) -> tuple[SAC, SkillDiscriminator]:
    """DIAYN with SAC: the skill reward only, the discriminator on the x-y position."""
    venv = make_vec_env(
        ENV_ID, n_envs=4, seed=seed, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": n_skills}
    )
    disc = SkillDiscriminator(
        venv.observation_space, n_skills, features=[0, 1], net_arch=(64, 64), learning_rate=1e-3, seed=seed
    )
    model = SAC(
        "MlpPolicy", venv, learning_starts=min(1000, timesteps // 2), batch_size=128, learning_rate=1e-3,
        ent_coef=0.1, train_freq=4, policy_kwargs={"net_arch": [64, 64]}, seed=seed,
        replay_buffer_class=DIAYNReplayBuffer,
        replay_buffer_kwargs={"discriminator": disc, "extrinsic_coef": 0.0, "intrinsic_coef": 1.0},
    )  # fmt: skip
    model.learn(timesteps, callback=DIAYNCallback())
    return model, disc


def skill_accuracy(model: SAC, disc: SkillDiscriminator, n_skills: int, seed: int) -> float:
    """Discriminator accuracy on the states of one deterministic episode per skill."""
    env = SkillWrapper(gym.make(ENV_ID), n_skills=n_skills)
    states = []
    for skill in range(n_skills):
        obs, _ = env.reset(seed=seed, options={"skill": skill})
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, _ = env.step(action)
            states.append(obs)
            done = terminated or truncated
    return disc.accuracy(np.array(states))


def make_skill_env(
    low: SAC, tasks: list, envs_per_task: int, skill_steps: int, reward_type: str, seed: int
) -> object:
    """A MetaTaskVecEnv whose actions are skills of ``low`` (the latent is shown to the high level only)."""
    return make_meta_vec_env(
        ENV_ID, n_tasks=len(tasks), envs_per_task=envs_per_task, seed=seed, tasks=tasks, latent_dim=2,
        env_kwargs={"reward_type": reward_type}, vec_env_cls=SkillActionVecEnv,
        vec_env_kwargs={"model": low, "skill_steps": skill_steps},
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--skills", type=int, default=10)
    parser.add_argument("--diayn-timesteps", type=int, default=30_000, help="SAC steps of skill pre-training")
    parser.add_argument("--skill-steps", type=int, default=10, help="env steps per skill action")
    parser.add_argument("--timesteps", type=int, default=100_000, help="MAESN meta-training skill actions")
    parser.add_argument("--n-tasks", type=int, default=20, help="tasks per meta-iteration")
    parser.add_argument(
        "--episodes",
        type=int,
        default=20,
        help="episodes per task: per phase of meta-training and per adaptation iteration",
    )
    parser.add_argument("--test-tasks", type=int, default=10, help="held-out goals")
    parser.add_argument("--adapt-iterations", type=int, default=5, help="latent updates per held-out task")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)

    low, disc = train_skills(args.skills, args.diayn_timesteps, args.seed)
    print(
        f"1. DIAYN ({args.diayn_timesteps} SAC steps, {args.skills} skills): discriminator accuracy "
        f"{skill_accuracy(low, disc, args.skills, args.seed):.2f} (chance {1 / args.skills:.2f})"
    )

    tasks = TaskSet.from_env(ENV_ID, n_train=100, n_test=args.test_tasks, seed=args.seed)
    train_tasks = tasks.train[: args.n_tasks]
    env = make_skill_env(low, train_tasks, args.episodes, args.skill_steps, "dense", args.seed)
    model = MAESN("MlpPolicy", env, task_set=tasks, seed=args.seed, natural_gradient=True)
    model.learn(args.timesteps)
    env_steps = sum(env.env_method("get_total_steps"))  # the Monitors count env steps, not skill actions
    print(
        f"2. MAESN over skills: {model.num_timesteps} skill actions = {env_steps} env steps of "
        f"meta-training, action space {model.action_space}"
    )

    test_env = make_skill_env(low, tasks.test, args.episodes, args.skill_steps, "sparse", args.seed + 1)
    result = model.adapt(test_env, n_iterations=args.adapt_iterations, episodes_per_iteration=args.episodes)
    print(
        f"3. adaptation to {len(tasks.test)} held-out goals, sparse reward, {args.episodes} episodes per "
        "iteration"
    )
    print(f"{'iteration':>9} {'skill actions':>13} {'success':>8} {'success (mean z)':>17}")
    for k in range(args.adapt_iterations + 1):
        print(f"{k:>9} {result.env_steps[k]:>13} {result.mean_success[k]:>8.2f} "
              f"{result.eval_success[k].mean():>17.2f}")  # fmt: skip
    env_steps = sum(test_env.env_method("get_total_steps"))
    print(f"   env steps of adaptation (exploration and evaluation): {env_steps}")


if __name__ == "__main__":
    main()
