"""DIAYN skill discovery on PointNav2D and WheeledNav: discriminator accuracy and skill trajectories.

For each env, SB3 SAC (or PPO) learns ``--skills`` skills from the DIAYN reward alone
(``extrinsic_coef=0``, prior term included) for a fixed budget, with the discriminator on the x-y
position (features 0 and 1 of both envs). Then every skill runs ``--eval-episodes`` deterministic
episodes from fresh seeds and the script prints

- the discriminator accuracy on every state visited (target >= 0.9 on PointNav2D) and on the
  final states,
- the mean distance between the skills' final-position centroids,

and writes a PNG of the trajectories (one colour per skill) and a JSON of the figures under
``benchmarks/results/``.

Measured on this project's 2-core CPU machine (torch 1 thread, seed 0, 10 skills, 5 episodes per skill):

- PointNav2D, SAC 30k steps (10 s): accuracy 0.938 on all states, 1.000 on final states.
- WheeledNav, SAC 200k steps (79 s, 2026-11-22, after the wheel model's last change): accuracy
  0.843 / 0.880; the 10 skills drive to distinct directions, but at most ~0.7 from the origin
  (the goals lie at 2), so they cover the directions, not the distances, of the task family.
- With ``--algo ppo --timesteps 300000``: PointNav2D 1.000 / 1.000, WheeledNav 0.430 / 0.460 (measured
  before the wheel model's last change).

Usage::

    python benchmarks/diayn.py                                   # both envs, defaults below
    python benchmarks/diayn.py --envs pointnav --timesteps 30000 --algo ppo
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env

import maesn_sb3  # noqa: F401  (registers the envs)
from maesn_sb3.skills import DIAYNCallback, DIAYNReplayBuffer, DIAYNRolloutBuffer
from wrappers import SkillDiscriminator, SkillWrapper

ENVS = {
    "pointnav": ("maesn_sb3/PointNav2D-v0", 30_000),
    "wheelednav": ("maesn_sb3/WheeledNav-v0", 200_000),
}
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def train(env_id: str, n_skills: int, timesteps: int, algo: str, n_envs: int, seed: int) -> tuple[Any, Any]:
    venv = make_vec_env(
        env_id, n_envs=n_envs, seed=seed, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": n_skills}
    )
    disc = SkillDiscriminator(
        venv.observation_space, n_skills, features=[0, 1], net_arch=(64, 64), learning_rate=1e-3, seed=seed
    )
    net = {"net_arch": [64, 64]}
    if algo == "sac":
        model = SAC(
            "MlpPolicy", venv, learning_starts=1000, batch_size=128, learning_rate=1e-3, ent_coef=0.1,
            train_freq=4, gradient_steps=1, policy_kwargs=net, seed=seed,
            replay_buffer_class=DIAYNReplayBuffer, replay_buffer_kwargs={"discriminator": disc},
        )  # fmt: skip
    else:
        model = PPO(
            "MlpPolicy", venv, n_steps=128, batch_size=256, learning_rate=1e-3, ent_coef=0.0,
            policy_kwargs=net, seed=seed, rollout_buffer_class=DIAYNRolloutBuffer,
            rollout_buffer_kwargs={"discriminator": disc, "discriminator_epochs": 4,
                                   "discriminator_batch_size": 128},
        )  # fmt: skip
    model.learn(timesteps, callback=DIAYNCallback())
    return model, disc


def evaluate(
    model: Any, disc: SkillDiscriminator, env_id: str, n_skills: int, episodes: int
) -> dict[str, Any]:
    env = SkillWrapper(gym.make(env_id), n_skills=n_skills)
    visited, finals, paths = [], [], []
    for skill in range(n_skills):
        for episode in range(episodes):
            obs, _ = env.reset(seed=10_000 + episode, options={"skill": skill})
            path, done = [obs[:2].copy()], False
            while not done:
                obs, _, terminated, truncated, _ = env.step(model.predict(obs, deterministic=True)[0])
                visited.append(obs)
                path.append(obs[:2].copy())
                done = terminated or truncated
            finals.append(obs)
            paths.append((skill, np.array(path)))
    finals_arr = np.array(finals)
    centroids = finals_arr[:, :2].reshape(n_skills, episodes, 2).mean(axis=1)
    gaps = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)[np.triu_indices(n_skills, 1)]
    return {
        "accuracy_all_states": disc.accuracy(np.array(visited)),
        "accuracy_final_states": disc.accuracy(finals_arr),
        "mean_centroid_distance": float(gaps.mean()),
        "min_centroid_distance": float(gaps.min()),
        "paths": paths,
    }


def plot(paths: list[tuple[int, np.ndarray]], n_skills: int, title: str, filename: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10" if n_skills <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(5, 5))
    for skill, path in paths:
        ax.plot(path[:, 0], path[:, 1], color=colours(skill % colours.N), lw=1, alpha=0.8)
        ax.plot(path[-1, 0], path[-1, 1], "o", color=colours(skill % colours.N), ms=3)
    ax.plot(0, 0, "k+", ms=10)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    fig.tight_layout()
    fig.savefig(filename, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", choices=sorted(ENVS), default=sorted(ENVS, reverse=True))
    parser.add_argument("--skills", type=int, default=10)
    parser.add_argument("--timesteps", type=int, default=None, help="default: 30k PointNav, 200k WheeledNav")
    parser.add_argument("--algo", choices=["sac", "ppo"], default="sac")
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    os.makedirs(RESULTS, exist_ok=True)
    summary = {}
    for name in args.envs:
        env_id, default_steps = ENVS[name]
        steps = args.timesteps or default_steps
        start = time.perf_counter()
        model, disc = train(env_id, args.skills, steps, args.algo, args.n_envs, args.seed)
        seconds = time.perf_counter() - start
        figures = evaluate(model, disc, env_id, args.skills, args.eval_episodes)
        paths = figures.pop("paths")
        png = os.path.join(RESULTS, f"diayn_{name}_{args.algo}_{args.skills}skills.png")
        plot(
            paths, args.skills,
            f"DIAYN {args.algo.upper()} on {env_id}\n{args.skills} skills, {steps} steps: "
            f"accuracy {figures['accuracy_all_states']:.2f}",
            png,
        )  # fmt: skip
        figures.update(
            env_id=env_id, algo=args.algo, timesteps=steps, train_seconds=round(seconds, 1), png=png
        )
        summary[name] = figures
        f = figures
        print(
            f"{env_id}: {args.algo.upper()} {steps} steps in {seconds:.0f}s | discriminator accuracy "
            f"all states {f['accuracy_all_states']:.3f}, final states {f['accuracy_final_states']:.3f} "
            f"(chance {1 / args.skills:.2f}) | centroid gap mean {f['mean_centroid_distance']:.2f}, "
            f"min {f['min_centroid_distance']:.2f} | {png}",
            flush=True,
        )
    out = os.path.join(RESULTS, f"diayn_{args.algo}_{args.skills}skills.json")
    with open(out, "w") as handle:
        json.dump(summary, handle, indent=2)
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
