"""Throughput of maesn-sb3's env plumbing, measured side by side in one run. Prints its figures.

Sections:

1. ``latent``: :class:`wrappers.LatentWrapper` overhead, wrapped vs raw env steps/s, on Gymnasium's
   ``HalfCheetah-v5`` (target >= 0.95x) and on ``maesn_sb3/PointNav2D-v0`` (target >= 0.85x: a step
   so cheap that the wrapper's own call shows).
2. ``vec``: :class:`maesn_sb3.MetaTaskVecEnv` vs the SB3 ``DummyVecEnv`` it wraps, stepping the very
   same sub-envs (target >= 0.95x).
3. ``mujoco``: the MuJoCo task families through ``gym.make`` vs a raw ``mj_step`` loop, beside
   Gymnasium's Ant/HalfCheetah/Pusher (``benchmarks/mujoco_throughput.py``, also runnable alone).
4. ``native``: per family, ``--native-envs`` (400) envs as meta-training builds them
   (``make_meta_vec_env(..., latent_dim=2)``): the native batch (``vectorization="native"``) vs
   today's ``DummyVecEnv`` of single envs vs the bare physics (a ``mujoco.batch`` loop with fixed
   controls and ``nstep`` = the frame skip, or the bare numpy step), and ``vector``: the batch with
   its latent wrapper stepped as a Gymnasium vector env (no SB3 adapter), same threads, wall clock
   (threads make CPU time meaningless), interleaved; the MuJoCo ones at 1 and 2 threads. Targets:
   native >= 0.8x bare, >= 3x dummy on PointNav2D, AntGoal 2 threads >= 1.6x 1 thread (idle machine).
5. ``layers``: where PointNav2D's native step spends its time: microseconds per step of
   ``--native-envs`` envs (CPU clock, medians of interleaved rounds), adding one layer at a time
   from the family's own numpy step (``_step_envs``) through the Gymnasium ``VectorEnv``'s
   bookkeeping, :class:`wrappers.LatentVectorWrapper`, the SB3 adapter (one info dict per env),
   ``VecMonitor`` and :class:`maesn_sb3.MetaTaskVecEnv`.
6. ``memory``: resident memory per env of ``make_meta_vec_env("maesn_sb3/AntGoal-v0", ...)`` at
   ``--native-envs`` envs, native vs dummy, each built, reset and stepped in a fresh subprocess
   (RSS after minus RSS before building; target: native below dummy).

The machine may be shared and noisy, so the two sides of each comparison run interleaved
(A, B, A, B, ...) with the same pre-drawn actions, and the script reports the median steps/s of
each side and the median of the per-pair ratios. Time is this process's CPU time by default
(``--clock cpu``: time spent while another process holds the core is not counted; everything
measured runs in this process); ``--clock wall`` uses wall-clock time. Results also go to
``benchmarks/results/throughput.json``.

Usage::

    python benchmarks/throughput.py                      # both sections, under a minute
    python benchmarks/throughput.py --sections vec --repeats 11
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import maesn_sb3
from maesn_sb3 import MetaTaskVecEnv
from wrappers import LatentVectorWrapper, LatentWrapper

Clock = Callable[[], float]
CLOCKS: dict[str, Clock] = {"cpu": time.process_time, "wall": time.perf_counter}
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
POINT_ID = "maesn_sb3/PointNav2D-v0"

#: env id -> (target ratio wrapped/raw, steps per repetition)
LATENT_TARGETS: dict[str, tuple[float, int]] = {
    "HalfCheetah-v5": (0.95, 5_000),
    POINT_ID: (0.85, 20_000),
}
VEC_TARGET = 0.95


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call each run once per repetition, in turn (A, B, A, B, ...); their steps/s per repetition."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up, not recorded
        run()
    for _ in range(repeats):
        for name, run in runs.items():
            rates[name].append(run())
    return rates


def summarise(rates: dict[str, list[float]], baseline: str, candidate: str, target: float) -> dict[str, Any]:
    """Medians of both sides and the median of the per-repetition ratios candidate / baseline."""
    ratios = np.array(rates[candidate]) / np.array(rates[baseline])
    ratio = float(np.median(ratios))
    return {
        f"{baseline}_steps_per_s": float(np.median(rates[baseline])),
        f"{candidate}_steps_per_s": float(np.median(rates[candidate])),
        "ratio": ratio,
        "ratio_min": float(ratios.min()),
        "ratio_max": float(ratios.max()),
        "target": target,
        "met": ratio >= target,
    }


def env_stepper(env: gym.Env, actions: np.ndarray, seed: int, clock: Clock) -> Callable[[], float]:
    """A run: reset with ``seed``, step through ``actions`` (resetting at episode ends); steps/s."""

    def run() -> float:
        env.reset(seed=seed)
        step, reset = env.step, env.reset
        start = clock()
        for action in actions:
            _, _, terminated, truncated, _ = step(action)
            if terminated or truncated:
                reset()
        return len(actions) / (clock() - start)

    return run


def latent_overhead(
    env_id: str, steps: int, repeats: int, target: float, seed: int = 0, clock: Clock = time.process_time
) -> dict[str, Any]:
    """LatentWrapper(gym.make(env_id)) vs gym.make(env_id), same actions, interleaved."""
    raw = gym.make(env_id)
    wrapped = LatentWrapper(gym.make(env_id), latent_dim=2)
    actions = np.random.default_rng(seed).uniform(
        raw.action_space.low, raw.action_space.high, size=(steps, *raw.action_space.shape)
    )
    actions = actions.astype(raw.action_space.dtype)
    rates = interleaved(
        {
            "raw": env_stepper(raw, actions, seed, clock),
            "wrapped": env_stepper(wrapped, actions, seed, clock),
        },
        repeats,
    )
    raw.close()
    wrapped.close()
    return {
        "env_id": env_id,
        "steps": steps,
        "repeats": repeats,
        **summarise(rates, "raw", "wrapped", target),
    }


def vec_stepper(venv: VecEnv, actions: np.ndarray, seed: int, clock: Clock) -> Callable[[], float]:
    """A run: seed and reset ``venv``, then step it through ``actions``; env steps/s over all sub-envs."""

    def run() -> float:
        venv.seed(seed)
        venv.reset()
        step = venv.step
        start = clock()
        for batch in actions:
            step(batch)
        return actions.shape[0] * venv.num_envs / (clock() - start)

    return run


def vec_overhead(
    n_tasks: int,
    envs_per_task: int,
    steps: int,
    repeats: int,
    target: float = VEC_TARGET,
    seed: int = 0,
    clock: Clock = time.process_time,
) -> dict[str, Any]:
    """MetaTaskVecEnv vs the DummyVecEnv it wraps: the same sub-envs, the same actions, interleaved.

    Each sub-env is ``LatentWrapper(Monitor(PointNav2D))``, as :func:`maesn_sb3.make_meta_vec_env`
    builds them; the cheap env makes the VecEnv's own per-step work show.
    """

    def make() -> gym.Env:
        return LatentWrapper(Monitor(gym.make(POINT_ID)), latent_dim=2)

    dummy = DummyVecEnv([make] * (n_tasks * envs_per_task))
    tasks = maesn_sb3.TaskSet.from_env(POINT_ID, n_train=n_tasks, n_test=0, seed=seed).train
    meta = MetaTaskVecEnv(dummy, n_tasks, envs_per_task, tasks=tasks)
    actions = np.random.default_rng(seed).uniform(-1, 1, size=(steps, dummy.num_envs, 2)).astype(np.float32)
    rates = interleaved(
        {"dummy": vec_stepper(dummy, actions, seed, clock), "meta": vec_stepper(meta, actions, seed, clock)},
        repeats,
    )
    meta.close()
    return {
        "env_id": POINT_ID,
        "n_tasks": n_tasks,
        "envs_per_task": envs_per_task,
        "steps": steps,
        "repeats": repeats,
        **summarise(rates, "dummy", "meta", target),
    }


def print_row(label: str, result: dict[str, Any], baseline: str, candidate: str) -> None:
    print(
        f"  {label:<34} {baseline} {result[f'{baseline}_steps_per_s']:>10,.0f}/s   "
        f"{candidate} {result[f'{candidate}_steps_per_s']:>10,.0f}/s   "
        f"ratio {result['ratio']:.3f} (min {result['ratio_min']:.3f}, max {result['ratio_max']:.3f})   "
        f"target >= {result['target']:.2f}: {'met' if result['met'] else 'MISSED'}"
    )


def latent_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    print("LatentWrapper overhead: wrapped vs raw env steps/s (medians, interleaved)")
    results = []
    for env_id, (target, steps) in LATENT_TARGETS.items():
        result = latent_overhead(
            env_id, int(steps * args.scale), args.repeats, target, seed=args.seed, clock=CLOCKS[args.clock]
        )
        print_row(env_id, result, "raw", "wrapped")
        results.append(result)
    return results


def vec_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    print("MetaTaskVecEnv vs SB3 DummyVecEnv over the same sub-envs: env steps/s (medians, interleaved)")
    result = vec_overhead(
        args.n_tasks,
        args.envs_per_task,
        int(1_000 * args.scale),
        args.repeats,
        seed=args.seed,
        clock=CLOCKS[args.clock],
    )
    print_row(f"{POINT_ID} {args.n_tasks}x{args.envs_per_task} envs", result, "dummy", "meta")
    return [result]


def mujoco_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The MuJoCo task families vs a raw mj_step loop (benchmarks/mujoco_throughput.py)."""
    import mujoco_throughput  # beside this script, on sys.path when it runs as a script

    argv = ["--steps", str(int(3_000 * args.scale)), "--rounds", str(args.repeats), "--clock", args.clock]
    results = mujoco_throughput.main(argv)
    return [{"env_id": env_id, **result} for env_id, result in results.items()]


NATIVE_FAMILIES = (POINT_ID, "maesn_sb3/WheeledNav-v0", "maesn_sb3/AntGoal-v0", "maesn_sb3/BlockPush-v0")


def bare_stepper(env_id: str, n_envs: int, steps: int, threads: int, clock: Clock) -> Callable[[], float]:
    """The bare physics of ``n_envs`` envs: the numpy point step, or ``mujoco.batch`` with fixed controls."""
    if env_id == POINT_ID:
        actions = np.random.default_rng(0).uniform(-1, 1, size=(n_envs, 2)).astype(np.float32)
        goals = np.tile([0.0, 1.0], (n_envs, 1))

        def run_point() -> float:
            positions = np.zeros((n_envs, 2))
            start = clock()
            for _ in range(steps):
                positions = positions + 0.1 * np.clip(actions, -1.0, 1.0)
                delta = positions - goals
                np.sqrt(delta[:, 0] * delta[:, 0] + delta[:, 1] * delta[:, 1])
            return steps * n_envs / (clock() - start)

        return run_point
    from mujoco.batch import Batch

    single = gym.make(env_id).unwrapped
    batch = Batch(single.model, n_envs, nthread=threads)
    batch.ctrl = np.random.default_rng(0).uniform(-0.5, 0.5, size=(n_envs, single.model.nu))
    frame_skip = single.frame_skip

    def run_mujoco() -> float:
        batch.reset()
        start = clock()
        for _ in range(steps):
            batch.step(nstep=frame_skip)
        return steps * n_envs / (clock() - start)

    return run_mujoco


def vector_stepper(
    envs: gym.vector.VectorEnv, actions: np.ndarray, seed: int, clock: Clock
) -> Callable[[], float]:
    """A run of the Gymnasium vector env itself (no SB3 adapter): env steps/s."""

    def run() -> float:
        envs.reset(seed=seed)
        step = envs.step
        start = clock()
        for batch in actions:
            step(batch)
        return actions.shape[0] * envs.num_envs / (clock() - start)

    return run


def native_throughput(
    env_id: str, n_envs: int, steps: int, repeats: int, threads: int, seed: int, clock: Clock
) -> dict[str, Any]:
    """Native batch vs DummyVecEnv vs bare physics for one family, interleaved; env steps/s each."""
    n_tasks = 20 if n_envs % 20 == 0 else 1
    common = {"n_tasks": n_tasks, "envs_per_task": n_envs // n_tasks, "latent_dim": 2, "seed": seed}
    extra = {} if env_id == POINT_ID else {"vec_env_kwargs": {"threads": threads}}
    native = maesn_sb3.make_meta_vec_env(env_id, vectorization="native", **common, **extra)
    dummy = maesn_sb3.make_meta_vec_env(env_id, vectorization="dummy", **common)
    space = native.action_space
    actions = np.random.default_rng(seed).uniform(space.low, space.high, size=(steps, n_envs, *space.shape))
    actions = actions.astype(np.float32)
    vector = LatentVectorWrapper(
        gym.make_vec(
            env_id,
            num_envs=n_envs,
            vectorization_mode="vector_entry_point",
            **extra.get("vec_env_kwargs", {}),
        ),
        latent_dim=2,
    )
    rates = interleaved(
        {
            "dummy": vec_stepper(dummy, actions, seed, clock),
            "native": vec_stepper(native, actions, seed, clock),
            "vector": vector_stepper(vector, actions, seed, clock),
            "bare": bare_stepper(env_id, n_envs, steps, threads, clock),
        },
        repeats,
    )
    native.close()
    dummy.close()
    versus_dummy = summarise(rates, "dummy", "native", 3.0 if env_id == POINT_ID else 1.0)
    versus_bare = summarise(rates, "bare", "native", 0.8)
    vector_vs_bare = summarise(rates, "bare", "vector", 0.8)
    return {
        "env_id": env_id,
        "n_envs": n_envs,
        "threads": threads,
        "steps": steps,
        "repeats": repeats,
        "native_vs_dummy": versus_dummy,
        "native_vs_bare": versus_bare,
        "vector_vs_bare": vector_vs_bare,
    }


def native_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    print(
        f"Native batch vs DummyVecEnv vs bare physics, {args.native_envs} envs, env steps/s "
        "(medians, interleaved, wall clock)"
    )
    clock = time.perf_counter
    results = []
    for env_id in NATIVE_FAMILIES:
        for threads in (1,) if env_id == POINT_ID else (1, 2):
            steps = max(2, int((200 if env_id == POINT_ID else 10) * args.scale))
            result = native_throughput(
                env_id, args.native_envs, steps, args.repeats, threads, args.seed, clock
            )
            label = f"{env_id} {threads} thread(s)"
            print_row(label, result["native_vs_dummy"], "dummy", "native")
            print_row(label, result["native_vs_bare"], "bare", "native")
            print_row(label, result["vector_vs_bare"], "bare", "vector")
            results.append(result)
    ant = [r for r in results if r["env_id"] == "maesn_sb3/AntGoal-v0"]
    if len(ant) == 2:
        one, two = (r["native_vs_bare"]["native_steps_per_s"] for r in ant)
        print(f"  AntGoal native 2 threads / 1 thread: {two / one:.2f} (target >= 1.6 on an idle machine)")
    return results


def layers_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    meta = maesn_sb3.make_meta_vec_env(
        POINT_ID, 20, args.native_envs // 20, latent_dim=2, seed=args.seed, vectorization="native"
    )
    meta.reset()
    monitor = meta.venv
    adapter = monitor.venv
    latent = adapter.env
    family = latent.unwrapped
    actions = np.random.default_rng(args.seed).uniform(-1, 1, (meta.num_envs, 2)).astype(np.float32)

    def vec_step(venv: VecEnv) -> Callable[[], Any]:
        def step() -> Any:
            venv.step_async(actions)
            return venv.step_wait()

        return step

    layers = {
        "family's numpy step (_step_envs)": lambda: family._step_envs(actions),
        "+ Gymnasium VectorEnv.step": lambda: family.step(actions),
        "+ LatentVectorWrapper": lambda: latent.step(actions),
        "+ SB3 adapter (info dicts per env)": vec_step(adapter),
        "+ VecMonitor": vec_step(monitor),
        "+ MetaTaskVecEnv": vec_step(meta),
    }
    steps, clock = max(10, int(500 * args.scale)), CLOCKS["cpu"]

    def timer(step: Callable[[], Any]) -> Callable[[], float]:
        def run() -> float:
            start = clock()
            for _ in range(steps):
                step()
            return 1e6 * (clock() - start) / steps

        return run

    micros = interleaved({name: timer(step) for name, step in layers.items()}, args.repeats)
    print(f"PointNav2D's native step, {meta.num_envs} envs: microseconds per step (median, CPU clock)")
    for name, values in micros.items():
        print(f"  {name:<40} {statistics.median(values):8.1f}")
    return [{"layer": name, "us_per_step": statistics.median(v)} for name, v in micros.items()]


_MEMORY_PROBE = """
import sys, numpy as np, maesn_sb3

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))

env_id, n_envs, vectorization = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kwargs = {"vec_env_kwargs": {"threads": 1}} if vectorization == "native" else {}
before = rss_kib()
venv = maesn_sb3.make_meta_vec_env(env_id, n_tasks=20, envs_per_task=n_envs // 20, latent_dim=2, seed=0,
                                   vectorization=vectorization, **kwargs)
venv.reset()
for _ in range(10):
    venv.step(np.zeros((n_envs, *venv.action_space.shape), dtype=np.float32))
print(rss_kib() - before)
"""


def memory_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    import subprocess
    import sys

    env_id, n_envs = "maesn_sb3/AntGoal-v0", args.native_envs - args.native_envs % 20
    print(f"Resident memory per env, {env_id}, {n_envs} envs (fresh subprocess each)")
    result: dict[str, Any] = {"env_id": env_id, "n_envs": n_envs}
    for vectorization in ("dummy", "native"):
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, env_id, str(n_envs), vectorization],
            capture_output=True,
            text=True,
            check=True,
        )
        kib = int(out.stdout.strip().splitlines()[-1])
        result[f"{vectorization}_kib_per_env"] = kib / n_envs
        print(f"  {vectorization:<7} {kib / 1024:8.1f} MiB in all, {kib / n_envs:7.1f} KiB per env")
    result["met"] = result["native_kib_per_env"] < result["dummy_kib_per_env"]
    print(f"  native below dummy: {'met' if result['met'] else 'MISSED'}")
    return [result]


SECTIONS: dict[str, Callable[[argparse.Namespace], list[dict[str, Any]]]] = {
    "latent": latent_section,
    "vec": vec_section,
    "mujoco": mujoco_section,
    "native": native_section,
    "layers": layers_section,
    "memory": memory_section,
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sections", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS), help="what to measure"
    )
    parser.add_argument(
        "--repeats", type=int, default=15, help="interleaved repetitions per side (odd: a median)"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the steps per repetition")
    parser.add_argument("--n-tasks", type=int, default=8, help="task slots of the vec section")
    parser.add_argument("--envs-per-task", type=int, default=4, help="sub-envs per slot of the vec section")
    parser.add_argument("--native-envs", type=int, default=400, help="envs of the native section")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu", help="CPU time of this process or wall"
    )
    parser.add_argument(
        "--output", default=os.path.join(RESULTS, "throughput.json"), help="JSON file to write"
    )
    args = parser.parse_args(argv)
    for name in ("repeats", "n_tasks", "envs_per_task", "native_envs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.scale <= 0:
        parser.error(f"--scale must be > 0, got {args.scale}")

    print(
        f"maesn-sb3 {maesn_sb3.__version__}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"gymnasium {gym.__version__}, {os.cpu_count()} CPU(s), clock: {args.clock}"
    )
    report: dict[str, Any] = {"argv": vars(args)}
    for name in args.sections:
        report[name] = SECTIONS[name](args)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
