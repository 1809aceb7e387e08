"""What a benchmark cell's checkpoints cost, and that resuming from one continues exactly.

For MAESN, the latent-space baseline and MAML with the paper tier's batch (10 tasks x 10 episodes per
meta-iteration, the family's native batch), it meta-trains a few meta-iterations and prints: seconds per
meta-iteration; seconds to write one checkpoint (SB3's save, the zip, fsync and rename, as the benchmark
does every ``--checkpoint-every`` meta-iterations) and that as a % of a meta-iteration; the checkpoint's
size; seconds to resume (read, check and load the model with a new env: once per rerun); and whether the
model resumed from a checkpoint written after the first meta-iteration ends with the same parameters
as the one that never stopped.

    python benchmarks/checkpoint_overhead.py                         # AntGoal, 3 methods
    python benchmarks/checkpoint_overhead.py --env maesn_sb3/BlockPush-v0 --iterations 3
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch as th

from maesn_sb3 import MAESN, MAML, LSBaseline, TaskSet, make_meta_vec_env
from maesn_sb3.benchmark import TIERS, Config, latest_checkpoint, write_checkpoint

ALGORITHMS = {"maesn": MAESN, "lsbaseline": LSBaseline, "maml": MAML}


def one_iteration(model) -> float:
    """Run one meta-iteration, as the benchmark's cells do; its seconds."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"learn\(\) runs whole meta-iterations")
        model.learn(1, reset_num_timesteps=False)
    return time.perf_counter() - start


def tensors(state):
    """Every tensor in a (nested) state dict, in order."""
    if isinstance(state, th.Tensor):
        yield state
    elif isinstance(state, dict):
        for value in state.values():
            yield from tensors(value)
    elif isinstance(state, (list, tuple)):
        for value in state:
            yield from tensors(value)


def same_parameters(a, b) -> bool:
    """Whether two models hold the same parameters and optimizer states, to the bit."""
    first, second = list(tensors(a.get_parameters())), list(tensors(b.get_parameters()))
    return len(first) == len(second) and all(th.equal(x, y) for x, y in zip(first, second, strict=True))


def measure(config: Config, method: str, iterations: int, writes: int, folder: Path) -> dict[str, float]:
    algorithm = ALGORITHMS[method]
    tasks = TaskSet.from_env(config.env_id, n_train=config.n_train_tasks, n_test=0, seed=config.task_seed)

    def env():
        return make_meta_vec_env(
            config.env_id,
            n_tasks=config.n_tasks,
            envs_per_task=config.envs_per_task,
            seed=0,
            tasks=tasks,
            latent_dim=2 if method != "maml" else None,
            env_kwargs={"reward_type": "dense"},
            vectorization=config.vectorization,
        )

    model = algorithm("MlpPolicy", env(), task_set=tasks, seed=0)
    one_iteration(model)  # the first meta-iteration (warm-up), then a checkpoint to resume from
    first = folder / "first"
    path = write_checkpoint(first, config, method, 0, model, {"iterations": 1, "train_seconds": 0.0})
    seconds = [one_iteration(model) for _ in range(iterations)]
    write = []
    for _ in range(writes):
        start = time.perf_counter()
        write_checkpoint(folder / "more", config, method, 0, model, {"iterations": 1, "train_seconds": 0.0})
        write.append(time.perf_counter() - start)
    start = time.perf_counter()
    _, payload = latest_checkpoint(first, config, method, 0)
    resumed = algorithm.load(io.BytesIO(payload), env=env())
    resume = time.perf_counter() - start
    for _ in range(iterations):
        one_iteration(resumed)
    iteration = statistics.median(seconds)
    return {
        "steps per iteration": model.num_timesteps // (iterations + 1),
        "iteration s": iteration,
        "write s": statistics.median(write),
        "write %": 100 * statistics.median(write) / iteration,
        "size kB": path.stat().st_size / 1000,
        "resume s": resume,
        "exact": same_parameters(model, resumed) and resumed.num_timesteps == model.num_timesteps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="maesn_sb3/AntGoal-v0")
    parser.add_argument("--methods", nargs="+", choices=sorted(ALGORITHMS), default=list(ALGORITHMS))
    parser.add_argument("--iterations", type=int, default=2, help="timed meta-iterations per method (>= 1)")
    parser.add_argument("--writes", type=int, default=5, help="timed checkpoint writes per method (>= 1)")
    args = parser.parse_args()
    for flag in ("iterations", "writes"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    th.set_num_threads(1)
    tier = {k: v for k, v in TIERS["paper"].items() if k != "env_id"}
    config = Config(env_id=args.env, **tier)
    print(
        f"{args.env}: {config.n_tasks} tasks x {config.envs_per_task} episodes per meta-iteration, "
        f"{config.vectorization} batch, 1 torch thread; medians of {args.iterations} meta-iterations and "
        f"{args.writes} writes"
    )
    print(
        f"{'method':<11} {'steps/iter':>10} {'iter s':>7} {'write s':>8} {'% of iter':>9} {'kB':>6} "
        f"{'resume s':>8}  exact"
    )
    with tempfile.TemporaryDirectory(dir="benchmarks/results") as folder:  # the disk the results live on
        for method in args.methods:
            r = measure(config, method, args.iterations, args.writes, Path(folder) / method)
            print(
                f"{method:<11} {r['steps per iteration']:>10,} {r['iteration s']:>7.2f} {r['write s']:>8.3f} "
                f"{r['write %']:>8.2f}% {r['size kB']:>6.0f} {r['resume s']:>8.2f}  {r['exact']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
