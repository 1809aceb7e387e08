"""DIAYN with SB3 SAC on PointNav2D, then the learned skills as a discrete action space.

1. ``SkillWrapper`` shows a per-episode skill (one-hot) to the agent.
2. ``SkillDiscriminator`` learns q(z | x, y); ``DIAYNReplayBuffer`` recomputes the reward
   ``extrinsic_coef * r_env + intrinsic_coef * (log q(z | s') - log p(z))`` at every sampled batch, so it
   never goes stale, and trains the discriminator on that batch. ``DIAYNCallback`` logs it.
3. The model (discriminator included, it sits in ``replay_buffer_kwargs``) is saved and loaded.
4. ``SkillActionWrapper`` turns the frozen skill policy into ``Discrete(n_skills)`` actions of
   ``skill_steps`` env steps each, for any high-level algorithm (here: one rollout per skill).

Run: ``python examples/diayn_sac.py [--timesteps 20000] [--skills 6] [--extrinsic-coef 0.0]``
(about half a minute on one core with the defaults).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env

import maesn_sb3  # noqa: F401  (registers maesn_sb3/PointNav2D-v0)
from maesn_sb3.cli import HelpFormatter
from maesn_sb3.skills import DIAYNCallback, DIAYNReplayBuffer
from wrappers import SkillActionWrapper, SkillDiscriminator, SkillWrapper

ENV_ID = "maesn_sb3/PointNav2D-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--skills", type=int, default=6)
    parser.add_argument("--extrinsic-coef", type=float, default=0.0, help="0: pure DIAYN; > 0 mixes r_env in")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)

    venv = make_vec_env(
        ENV_ID, n_envs=4, seed=args.seed, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": args.skills}
    )
    disc = SkillDiscriminator(
        venv.observation_space,
        args.skills,
        features=[0, 1],
        net_arch=(64, 64),
        learning_rate=1e-3,
        seed=args.seed,
    )
    model = SAC(
        "MlpPolicy", venv, learning_starts=1000, batch_size=128, learning_rate=1e-3, ent_coef=0.1,
        train_freq=4, policy_kwargs={"net_arch": [64, 64]}, seed=args.seed,
        replay_buffer_class=DIAYNReplayBuffer,
        replay_buffer_kwargs={"discriminator": disc, "extrinsic_coef": args.extrinsic_coef,
                              "intrinsic_coef": 1.0},
    )  # fmt: skip
    model.learn(args.timesteps, callback=DIAYNCallback())

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "diayn_sac")
        model.save(path)
        model = SAC.load(path, device="cpu")
    disc = model.replay_buffer.discriminator  # restored with its weights and optimizer state
    print(f"discriminator after {disc.n_updates} updates (restored from the saved model)")

    skills_env = SkillActionWrapper(gym.make(ENV_ID), model, skill_steps=10)
    visited = []
    for skill in range(args.skills):
        obs, _ = skills_env.reset(seed=args.seed)
        total = 0.0
        for _ in range(5):  # 5 skill actions = the 50-step episode
            obs, reward, terminated, truncated, _ = skills_env.step(skill)
            total += reward
            visited.append(np.append(obs, np.eye(args.skills)[skill]))
            if terminated or truncated:
                break
        print(f"skill {skill}: ends at x={obs[0]:+.2f} y={obs[1]:+.2f}, env return {total:.1f}")
    accuracy = disc.accuracy(np.array(visited, dtype=np.float32))
    print(f"discriminator accuracy on the skills' states: {accuracy:.2f} (chance {1 / args.skills:.2f})")


if __name__ == "__main__":
    main()
