"""Scaling out on Ray: MAESN meta-training env-steps/s with local collection vs Ray workers, side by side.

Modes (``--modes``): ``local`` collects in this process (``make_meta_vec_env(..., vectorization=
--local-backend)``, the native batch by default); ``rayN`` collects on ``N`` Ray workers
(``vectorization="ray", ray_workers=N``, each worker's slots one native batch) of a local Ray instance
with ``--cpus`` CPUs. Each repetition runs every mode once, one after the other, so that all see the
same machine load; a run builds the env and the model, meta-trains one untimed iteration (worker start,
imports), then ``--iterations`` timed ones. Printed: the median env-steps/s of each mode and its ratio
to ``local``; for Ray, per meta-iteration, the seconds spent sending the policy (broadcast), until every
worker finished (remote), in the slowest worker's own collection (worker), fetching the episodes
(return) and laying them out (assemble), Ray's overhead (the collection's wall time minus the slowest
worker's own time) as a share of the iteration, and the bytes moved (weights out, episodes back).

From the one-worker figures it projects the speed-up at 8, 32 and 128 workers on a cluster: the
driver's update time stays, the workers' collection time divides by the number of workers, the fixed
overhead per call stays, the policy travels once per worker and call and the episodes once, over a
network of ``--bandwidth`` GB/s (10 GbE: 1.25). A projection from a model, not a measurement.

    python benchmarks/ray_scaling.py
    python benchmarks/ray_scaling.py --n-tasks 20 --envs-per-task 20 --iterations 2 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import torch as th

from maesn_sb3 import MAESN, make_meta_vec_env

TIMINGS = ("broadcast_s", "remote_s", "worker_s", "return_s", "assemble_s", "control_s")


def run(mode: str, args: argparse.Namespace) -> dict[str, float]:
    """One meta-training run of ``mode``: its env-steps/s and, for Ray, its per-iteration figures."""
    backend = (
        {"vectorization": "ray", "ray_workers": int(mode[3:])}
        if mode.startswith("ray")
        else {"vectorization": args.local_backend}
    )
    env = make_meta_vec_env(
        args.env,
        n_tasks=args.n_tasks,
        envs_per_task=args.envs_per_task,
        latent_dim=2,
        seed=0,
        **backend,
    )
    model = MAESN("MlpPolicy", env, n_train_tasks=args.n_tasks, seed=0)
    with warnings.catch_warnings():  # "learn() runs whole meta-iterations"
        warnings.simplefilter("ignore", UserWarning)
        model.learn(1)  # one untimed meta-iteration: the workers start, import and warm up
    per_iteration = model.num_timesteps
    ray_env = env.venv if mode.startswith("ray") else None
    if ray_env is not None:
        ray_env.collection_stats = {}
    start = time.perf_counter()
    model.learn(per_iteration * args.iterations, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    result = {
        "steps_per_s": per_iteration * args.iterations / elapsed,
        "iteration_s": elapsed / args.iterations,
    }
    if ray_env is not None:
        stats = ray_env.collection_stats
        result.update({key: value / args.iterations for key, value in stats.items()})
        result["calls"] = stats["calls"] / args.iterations
        for key in TIMINGS:
            result.setdefault(key, 0.0)
        collection = sum(result[key] for key in TIMINGS if key != "worker_s")
        result["overhead_s"] = collection - result["worker_s"]
        result["update_s"] = result["iteration_s"] - collection
    env.close()
    return result


def projection(one: dict[str, float], local_iteration_s: float, workers: int, bandwidth: float) -> float:
    """The projected speed-up over local collection of ``workers`` workers, from a one-worker run: the
    update time stays, the workers' time divides by ``workers``, the one-worker overhead stays and the
    weights (to every worker) and episodes (once) cross a network of ``bandwidth`` GB/s."""
    network = (workers * one["policy_bytes"] + one["episode_bytes"]) / (bandwidth * 1e9)
    iteration = one["update_s"] + one["worker_s"] / workers + one["overhead_s"] + network
    return local_iteration_s / iteration


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="maesn_sb3/WheeledNav-v0")
    parser.add_argument("--n-tasks", type=int, default=8)
    parser.add_argument("--envs-per-task", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=2, help="timed meta-iterations per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs of every mode (medians reported)")
    parser.add_argument("--modes", nargs="+", default=["local", "ray1", "ray2"])
    parser.add_argument("--local-backend", default="native", choices=("dummy", "native"))
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray instance")
    parser.add_argument("--bandwidth", type=float, default=1.25, help="GB/s of the projection's network")
    args = parser.parse_args()
    for mode in args.modes:
        if mode != "local" and not (mode.startswith("ray") and mode[3:].isdigit() and int(mode[3:]) >= 1):
            parser.error(f"--modes takes local and rayN (N >= 1 workers), got {mode!r}")

    import ray

    th.set_num_threads(1)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="error")
    print(f"load average before: {os.getloadavg()}")
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in args.modes}
    for repeat in range(args.repeats):
        for mode in args.modes:
            results[mode].append(run(mode, args))
            print(
                f"repeat {repeat} {mode:>6}: {results[mode][-1]['steps_per_s']:,.0f} env steps/s", flush=True
            )
    print(f"load average after: {os.getloadavg()}")
    ray.shutdown()

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in results[mode])

    layout = f"{args.n_tasks} tasks x {args.envs_per_task} envs, {args.env}"
    print(f"\nMAESN meta-training, {layout}; medians of {args.repeats} runs of {args.iterations} iterations")
    local = median("local", "steps_per_s") if "local" in results else None
    print(f"{'mode':>6} {'steps/s':>9} {'x local':>8} {'iteration s':>12}")
    for mode in args.modes:
        ratio = f"{median(mode, 'steps_per_s') / local:.2f}" if local else "-"
        print(
            f"{mode:>6} {median(mode, 'steps_per_s'):>9,.0f} {ratio:>8} {median(mode, 'iteration_s'):>12.2f}"
        )
    ray_modes = [mode for mode in args.modes if mode.startswith("ray")]
    if ray_modes:
        print("\nper meta-iteration (s):")
        keys = ["calls", *TIMINGS, "overhead_s", "update_s"]
        print(f"{'mode':>6} " + " ".join(f"{key:>11}" for key in keys) + f" {'overhead %':>10}")
        for mode in ray_modes:
            share = 100 * median(mode, "overhead_s") / median(mode, "iteration_s")
            print(
                f"{mode:>6} " + " ".join(f"{median(mode, key):>11.3f}" for key in keys) + f" {share:>10.1f}"
            )
        print("\nbytes per meta-iteration:")
        for mode in ray_modes:
            policy, episodes = median(mode, "policy_bytes"), median(mode, "episode_bytes")
            workers = int(mode[3:])
            print(
                f"{mode:>6}: weights out {policy / 1e3:,.0f} kB to each of {workers} worker(s), "
                f"episodes back {episodes / 1e6:,.1f} MB"
            )
    if "ray1" in results and local:
        one = {key: median("ray1", key) for key in results["ray1"][0]}
        local_iteration = median("local", "iteration_s")
        speedups = ", ".join(
            f"{w} workers {projection(one, local_iteration, w, args.bandwidth):.1f}x" for w in (8, 32, 128)
        )
        print(f"\nprojected speed-up over local collection ({args.bandwidth} GB/s network): {speedups}")


if __name__ == "__main__":
    main()
