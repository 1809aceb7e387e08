"""Steps/s of the MuJoCo task families through ``gym.make`` vs a raw ``mujoco.mj_step`` loop.

For each env, the same pre-drawn random actions are run (1) through ``gym.make(env_id)`` (with all
of Gymnasium's default wrappers; episodes reset on termination/truncation) and (2) as a raw loop
``data.ctrl[:] = a; mujoco.mj_step(model, data, nstep=frame_skip)`` on the same model with a fresh
``MjData``, reset (``mj_resetData``) at the same steps. The ratio env/raw says how much of the
time goes into Python around the physics. Gymnasium's own ``Ant-v5``, ``HalfCheetah-v5`` and
``Pusher-v5`` are measured the same way in the same run, beside the env of ours they resemble.
Rounds alternate env and raw loops; each figure is the best of its rounds (the machine is shared).

Usage::

    python benchmarks/mujoco_throughput.py [--steps 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

import maesn_sb3  # noqa: F401  (registers the maesn_sb3/ envs)

#: ours -> Gymnasium's most similar env
PAIRS = {
    "maesn_sb3/WheeledNav-v0": "HalfCheetah-v5",
    "maesn_sb3/AntGoal-v0": "Ant-v5",
    "maesn_sb3/BlockPush-v0": "Pusher-v5",
}


@contextlib.contextmanager
def _in_temp_dir() -> Iterator[None]:
    """MuJoCo writes MUJOCO_LOG.TXT into the working directory on model warnings (Pusher-v5 has one)."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(cwd)


def _env_loop(env: gym.Env, actions: np.ndarray) -> tuple[float, list[int]]:
    env.reset(seed=0)
    resets = []
    step = env.step
    start = time.perf_counter()
    for i, action in enumerate(actions):
        _, _, terminated, truncated, _ = step(action)
        if terminated or truncated:
            env.reset()
            resets.append(i)
    return time.perf_counter() - start, resets


def _raw_loop(model: mujoco.MjModel, frame_skip: int, actions: np.ndarray, resets: list[int]) -> float:
    data = mujoco.MjData(model)
    ctrl = data.ctrl
    mj_step = mujoco.mj_step
    reset_at = set(resets)
    start = time.perf_counter()
    for i, action in enumerate(actions):
        ctrl[:] = action
        mj_step(model, data, nstep=frame_skip)
        if i in reset_at:
            mujoco.mj_resetData(model, data)
            mujoco.mj_forward(model, data)
    return time.perf_counter() - start


def measure(env_id: str, steps: int = 5000, rounds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Best-of-``rounds`` steps/s through ``gym.make`` and of the raw loop, and their ratio."""
    with _in_temp_dir():
        env = gym.make(env_id)
    space = env.action_space
    actions = (
        np.random.default_rng(seed).uniform(space.low, space.high, (steps, *space.shape)).astype(np.float32)
    )
    model, frame_skip = env.unwrapped.model, env.unwrapped.frame_skip
    env_times, raw_times = [], []
    for _ in range(rounds):
        elapsed, resets = _env_loop(env, actions)
        env_times.append(elapsed)
        raw_times.append(_raw_loop(model, frame_skip, actions, resets))
    env.close()
    env_rate, raw_rate = steps / min(env_times), steps / min(raw_times)
    return {
        "env_steps_per_s": env_rate,
        "raw_steps_per_s": raw_rate,
        "ratio": env_rate / raw_rate,
        "frame_skip": frame_skip,
        "resets": len(resets),
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5000, help="env steps per loop")
    parser.add_argument("--rounds", type=int, default=5, help="alternating env/raw rounds (best is kept)")
    parser.add_argument("--output", default="benchmarks/results", help="folder for mujoco_throughput.json")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        parser.error(f"--steps and --rounds must be >= 1, got {args.steps} and {args.rounds}")

    results: dict[str, dict[str, Any]] = {}
    print(
        f"MuJoCo {mujoco.__version__}, Gymnasium {gym.__version__}; {args.steps} steps x {args.rounds} rounds"
    )
    header = (
        f"{'env':<26} {'frame skip':>10} {'gym.make steps/s':>17} {'raw mj_step steps/s':>20} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for ours, theirs in PAIRS.items():
        for env_id in (ours, theirs):
            res = measure(env_id, args.steps, args.rounds)
            results[env_id] = res
            print(
                f"{env_id:<26} {res['frame_skip']:>10} {res['env_steps_per_s']:>17,.0f} "
                f"{res['raw_steps_per_s']:>20,.0f} {res['ratio']:>6.2f}"
            )
    print()
    for ours, theirs in PAIRS.items():
        a, b = results[ours]["ratio"], results[theirs]["ratio"]
        verdict = "beats" if a > b else "does NOT beat"
        print(f"{ours} ratio {a:.2f} {verdict} {theirs} ratio {b:.2f} (aim: 0.80)")
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "mujoco_throughput.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
