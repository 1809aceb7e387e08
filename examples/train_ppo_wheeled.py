"""Multi-task PPO on WheeledNav (dense reward) through MetaTaskVecEnv, then an image strip of the result.

The goal is not in the observation, so a plain PPO policy can only learn one behaviour for all of
its training tasks (it drives towards where goals are on average); MAESN's per-task latents are
what let one policy explore differently per task. This example shows the plumbing: task sets,
the meta-task VecEnv, SB3 training, headless MuJoCo rendering.

Usage::

    python examples/train_ppo_wheeled.py --timesteps 100000 --output runs/ppo_wheeled

Writes ``ppo_wheeled_nav.zip`` and ``wheeled_nav_strip.png`` (one row per held-out task, frames
left to right through the episode) under ``--output``. Rendering is headless through
``MUJOCO_GL=egl`` (set here unless already set; ``osmesa`` works too).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import argparse
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import SubprocVecEnv

import maesn_sb3
from maesn_sb3 import TaskSet, make_meta_vec_env
from maesn_sb3.cli import HelpFormatter

ENV_ID = "maesn_sb3/WheeledNav-v0"


def render_strip(
    model: PPO, tasks: list, seed: int, n_frames: int = 6, size: int = 160
) -> tuple[np.ndarray, list]:
    """Roll the deterministic policy out on each task; one row of ``n_frames`` frames per task."""
    env = gym.make(ENV_ID, render_mode="rgb_array", width=size, height=size)
    horizon = env.spec.max_episode_steps
    keep = set(np.linspace(0, horizon, n_frames).astype(int).tolist())
    rows, finals = [], []
    for k, task in enumerate(tasks):
        env.unwrapped.set_task(task)
        obs, info = env.reset(seed=seed + k)
        frames = [env.render()]
        for t in range(1, horizon + 1):
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            if t in keep:
                frames.append(env.render())
            if terminated or truncated:
                break
        # a thin dark frame around each picture keeps the strip readable
        rows.append(
            np.concatenate([np.pad(f, ((2, 2), (2, 2), (0, 0)), constant_values=40) for f in frames], axis=1)
        )
        finals.append((info["distance"], info["is_success"]))
    env.close()
    return np.concatenate(rows, axis=0), finals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--timesteps", type=int, default=100_000, help="PPO environment steps")
    parser.add_argument("--n-tasks", type=int, default=10, help="training tasks side by side")
    parser.add_argument("--envs-per-task", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subproc", action="store_true", help="step the envs in SubprocVecEnv workers")
    parser.add_argument("--output", default="runs/ppo_wheeled", help="folder for the model and the strip")
    args = parser.parse_args(argv)
    for name in ("timesteps", "n_tasks", "envs_per_task"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    tasks = TaskSet.from_env(ENV_ID, n_train=100, n_test=100, seed=args.seed)
    venv = make_meta_vec_env(
        ENV_ID,
        n_tasks=args.n_tasks,
        envs_per_task=args.envs_per_task,
        seed=args.seed,
        tasks=tasks,  # the first n_tasks training tasks, one per slot
        env_kwargs={"reward_type": "dense"},
        vec_env_cls=SubprocVecEnv if args.subproc else None,
        vec_env_kwargs={"start_method": "forkserver"} if args.subproc else None,
    )
    n_steps = max(8, min(256, args.timesteps // venv.num_envs))
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=min(256, n_steps * venv.num_envs),
        learning_rate=3e-4,
        gamma=0.99,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    model.learn(total_timesteps=args.timesteps)
    venv.close()
    model.save(output / "ppo_wheeled_nav.zip")

    strip, finals = render_strip(model, tasks.test[:4], seed=args.seed)
    imageio.imwrite(output / "wheeled_nav_strip.png", strip)
    distances = ", ".join(f"{d:.2f}{' (reached)' if s else ''}" for d, s in finals)
    print(f"trained {args.timesteps} steps on {args.n_tasks} tasks (maesn_sb3 {maesn_sb3.__version__})")
    print(f"final distance to 4 held-out goals: {distances}")
    print(f"wrote {output / 'ppo_wheeled_nav.zip'} and {output / 'wheeled_nav_strip.png'}")


if __name__ == "__main__":
    main()
