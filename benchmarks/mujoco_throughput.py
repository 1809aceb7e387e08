"""Steps/s of the MuJoCo task families through ``gym.make`` vs a raw ``mujoco.mj_step`` loop.

For each env, the same pre-drawn random actions are run (1) through ``gym.make(env_id)`` (with all
of Gymnasium's default wrappers; episodes reset on termination/truncation) and (2) as a raw loop
``data.ctrl[:] = a; mujoco.mj_step(model, data, nstep=frame_skip)`` on the same model with a fresh
``MjData``, reset (``mj_resetData``) at the same steps. The ratio env/raw says how much of the
time goes into Python around the physics. Gymnasium's own ``Ant-v5``, ``HalfCheetah-v5`` and
``Pusher-v5`` are measured the same way in the same run, beside the env of ours they resemble.
Rounds alternate env and raw loops (the machine may be shared); the script reports the median
steps/s of each side and the median of the per-round ratios. Time is this process's CPU time by
default (``--clock cpu``: time while another process holds the core is not counted; all measured
work runs in this process), or wall-clock time with ``--clock wall``.

Usage::

    python benchmarks/mujoco_throughput.py [--steps 3000] [--rounds 7] [--clock wall]
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

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}

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


def _env_loop(env: gym.Env, actions: np.ndarray, clock: Any) -> tuple[float, list[int]]:
    env.reset(seed=0)
    resets = []
    step = env.step
    start = clock()
    for i, action in enumerate(actions):
        _, _, terminated, truncated, _ = step(action)
        if terminated or truncated:
            env.reset()
            resets.append(i)
    return clock() - start, resets


def _raw_loop(
    model: mujoco.MjModel, frame_skip: int, actions: np.ndarray, resets: list[int], clock: Any
) -> float:
    data = mujoco.MjData(model)
    ctrl = data.ctrl
    mj_step = mujoco.mj_step
    reset_at = set(resets)
    start = clock()
    for i, action in enumerate(actions):
        ctrl[:] = action
        mj_step(model, data, nstep=frame_skip)
        if i in reset_at:
            mujoco.mj_resetData(model, data)
            mujoco.mj_forward(model, data)
    return clock() - start


def measure(
    env_id: str, steps: int = 3000, rounds: int = 7, seed: int = 0, clock: str = "cpu"
) -> dict[str, Any]:
    """Median steps/s through ``gym.make`` and of the raw loop over ``rounds``, and their ratio."""
    timer = CLOCKS[clock]
    with _in_temp_dir():
        env = gym.make(env_id)
    space = env.action_space
    actions = (
        np.random.default_rng(seed).uniform(space.low, space.high, (steps, *space.shape)).astype(np.float32)
    )
    model, frame_skip = env.unwrapped.model, env.unwrapped.frame_skip
    env_times, raw_times = [], []
    for _ in range(rounds):
        elapsed, resets = _env_loop(env, actions, timer)
        env_times.append(elapsed)
        raw_times.append(_raw_loop(model, frame_skip, actions, resets, timer))
    env.close()
    env_times, raw_times = np.array(env_times), np.array(raw_times)
    return {
        "env_steps_per_s": float(np.median(steps / env_times)),
        "raw_steps_per_s": float(np.median(steps / raw_times)),
        "ratio": float(np.median(raw_times / env_times)),
        "ratio_min": float(np.min(raw_times / env_times)),
        "ratio_max": float(np.max(raw_times / env_times)),
        "clock": clock,
        "frame_skip": frame_skip,
        "resets": len(resets),
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=3000, help="env steps per loop")
    parser.add_argument("--rounds", type=int, default=7, help="alternating env/raw rounds (medians)")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu", help="CPU time of this process or wall"
    )
    parser.add_argument("--output", default="benchmarks/results", help="folder for mujoco_throughput.json")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        parser.error(f"--steps and --rounds must be >= 1, got {args.steps} and {args.rounds}")

    results: dict[str, dict[str, Any]] = {}
    print(
        f"MuJoCo {mujoco.__version__}, Gymnasium {gym.__version__}; {args.steps} steps x {args.rounds} "
        f"rounds, clock: {args.clock}; medians"
    )
    header = (
        f"{'env':<26} {'frame skip':>10} {'gym.make steps/s':>17} {'raw mj_step steps/s':>20} "
        f"{'ratio':>6} {'(min-max)':>11}"
    )
    print(header)
    print("-" * len(header))
    for ours, theirs in PAIRS.items():
        for env_id in (ours, theirs):
            res = measure(env_id, args.steps, args.rounds, clock=args.clock)
            results[env_id] = res
            print(
                f"{env_id:<26} {res['frame_skip']:>10} {res['env_steps_per_s']:>17,.0f} "
                f"{res['raw_steps_per_s']:>20,.0f} {res['ratio']:>6.2f} "
                f"({res['ratio_min']:.2f}-{res['ratio_max']:.2f})"
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
