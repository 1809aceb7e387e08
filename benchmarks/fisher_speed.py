"""TRPO's Fisher-vector products: the Gauss-Newton form in chunks, on the whole batch, and the double
backward, side by side.

Builds MAESN with the TRPO outer step on a ``--n-tasks`` x ``--episodes`` layout of ``--env`` (native
batch), meta-trains ``--warmup`` iterations, then takes the next outer update's objective and times,
interleaved over ``--repeats`` rounds, one Fisher-vector product of each form
(:func:`gauss_newton_vector_product` summed over chunks of
:data:`~maesn_sb3.common.trpo.FISHER_CHUNK_STEPS` steps, as training runs it; the same on the whole
batch as one chunk; :func:`kl_hessian_vector_product`) and a whole ``trpo_step`` with each (from the
same parameters). Reports the median CPU time of the process (less sensitive than wall clock to other
jobs on a shared machine) and the wall time, and checks that the forms give the same product.

``--fisher-threads N`` (default 2) also times the chunked step with its products on N threads, each at
the caller's torch thread count (the library's pool) against threads at OpenMP's default (the pool
before that fix), interleaved, and prints OpenMP's team size inside a pool thread for both.

    python benchmarks/fisher_speed.py
    python benchmarks/fisher_speed.py --latent-gradient score_function --fisher-subsample 0.1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch as th
from stable_baselines3.common.logger import configure
from threadpoolctl import threadpool_info
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from maesn_sb3 import MAESN, make_meta_vec_env
from maesn_sb3.common import trpo
from maesn_sb3.common.trpo import gauss_newton_vector_product, kl_hessian_vector_product, trpo_step


def capture_update(model: MAESN) -> dict[str, Any]:
    """The arguments of the model's next TRPO step (the step itself still runs)."""
    captured: dict[str, Any] = {}
    original = model._trpo_update

    def record(params: Any, loss_fn: Any, kl_fn: Any, fisher_terms_fn: Any = None) -> Any:
        params = list(params)
        captured.update(params=params, loss_fn=loss_fn, kl_fn=kl_fn, fisher_terms_fn=fisher_terms_fn)
        captured["start"] = parameters_to_vector(params).detach().clone()
        return original(params, loss_fn, kl_fn, fisher_terms_fn)

    model._trpo_update = record  # type: ignore[method-assign]
    model.learn(1, reset_num_timesteps=False)
    del model._trpo_update
    return captured


def timed(function: Callable[[], Any]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    function()
    return time.process_time() - cpu, time.perf_counter() - wall


def openmp_team_size() -> int:
    """OpenMP's team size for a parallel region started by the calling thread (omp_get_max_threads)."""
    return next(info["num_threads"] for info in threadpool_info() if info["user_api"] == "openmp")


def bare_pool(threads: int) -> ThreadPoolExecutor:
    """The Fisher pool before its threads took the caller's torch thread count."""
    return ThreadPoolExecutor(threads)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="maesn_sb3/PointNav2D-v0")
    parser.add_argument("--n-tasks", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=20, help="envs per task")
    parser.add_argument("--warmup", type=int, default=2, help="meta-iterations before the measured update")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latent-gradient", default="reparameterization")
    parser.add_argument("--fisher-subsample", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--fisher-threads", type=int, default=2, help="threads of the chunks' products")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    env = make_meta_vec_env(
        args.env, args.n_tasks, args.episodes, latent_dim=2, seed=0, vectorization="native"
    )
    model = MAESN(
        "MlpPolicy",
        env,
        seed=0,
        outer_update="trpo",  # the step whose Fisher-vector products are timed (the default is "ppo")
        latent_gradient=args.latent_gradient,
        fisher_subsample=args.fisher_subsample,
    )
    model.set_logger(configure(None, [""]))
    for _ in range(args.warmup):
        model.learn(1, reset_num_timesteps=False)
    step = capture_update(model)
    params = step["params"]

    def restart() -> None:
        with th.no_grad():
            vector_to_parameters(step["start"], params)

    restart()
    vector = th.randn(len(step["start"]), generator=th.Generator().manual_seed(0))

    def whole(terms_fn: Callable[[], Any]) -> Callable[[], Any]:
        """``terms_fn`` with the Fisher's steps in one chunk."""

        def terms() -> Any:
            chunk_steps, trpo.FISHER_CHUNK_STEPS = trpo.FISHER_CHUNK_STEPS, 1 << 62
            try:
                return terms_fn()
            finally:
                trpo.FISHER_CHUNK_STEPS = chunk_steps

        return terms

    fishers = {
        "Gauss-Newton, chunks": step["fisher_terms_fn"],
        "Gauss-Newton, whole batch": whole(step["fisher_terms_fn"]),
        "double backward": None,
    }

    def product_of(fisher: Callable[[], Any] | None) -> Callable[[th.Tensor], th.Tensor]:
        if fisher is None:
            return kl_hessian_vector_product(params, step["kl_fn"]())
        parts = [gauss_newton_vector_product(params, terms) for terms in fisher()]
        return lambda v: sum(part(v) for part in parts)

    products = {name: product_of(fisher) for name, fisher in fishers.items()}
    results = {name: product(vector) for name, product in products.items()}
    reference = results["double backward"]
    times: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeats):
        for name in fishers:
            times.setdefault(f"product, {name}", []).append(timed(lambda name=name: products[name](vector)))
        for name, fisher in fishers.items():
            restart()
            run = [params, step["loss_fn"], step["kl_fn"], model.max_kl, model.cg_max_steps, model.cg_damping]
            times.setdefault(f"trpo_step, {name}", []).append(
                timed(lambda run=run, fisher=fisher: trpo_step(*run, fisher_terms_fn=fisher))
            )
    pools = {"library's pool": trpo.fisher_pool, "bare pool (before)": bare_pool}
    for name, pool in pools.items():
        with pool(1) as one:
            print(
                f"  OpenMP team size inside a thread of the {name}: {one.submit(openmp_team_size).result()}"
            )
    for _ in range(args.repeats):
        for name, pool in pools.items():
            restart()
            trpo.fisher_pool = pool
            run = [params, step["loss_fn"], step["kl_fn"], model.max_kl, model.cg_max_steps, model.cg_damping]
            times.setdefault(f"trpo_step, {args.fisher_threads} Fisher threads, {name}", []).append(
                timed(
                    lambda run=run: trpo_step(
                        *run, fisher_terms_fn=step["fisher_terms_fn"], fisher_threads=args.fisher_threads
                    )
                )
            )
    trpo.fisher_pool = pools["library's pool"]
    chunks = step["fisher_terms_fn"]()
    n_steps = sum(int(terms[0][0].shape[0]) for terms in chunks)
    print(
        f"{args.env}: {args.n_tasks} x {args.episodes} envs, {args.latent_gradient}, "
        f"Fisher on {n_steps} steps in {len(chunks)} chunk(s) (fisher_subsample {args.fisher_subsample:g}), "
        f"{args.repeats} interleaved rounds, {th.get_num_threads()} torch thread(s)"
    )
    for name, result in results.items():
        if name != "double backward":
            difference = float((result - reference).norm() / reference.norm())
            print(f"  relative difference of {name} to the double backward: {difference:.1e}")
    print(f"  {'':<50} {'CPU s (median)':>15} {'wall s (median)':>16}")
    for name, values in times.items():
        cpu, wall = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        print(f"  {name:<50} {cpu:>15.3f} {wall:>16.3f}")
    for what in ("product", "trpo_step"):
        chunked = statistics.median(v[0] for v in times[f"{what}, Gauss-Newton, chunks"])
        for name in ("Gauss-Newton, whole batch", "double backward"):
            ratio = statistics.median(v[0] for v in times[f"{what}, {name}"]) / chunked
            print(f"  {what}: {name} / Gauss-Newton in chunks, CPU time {ratio:.2f}")
    threaded = {
        name: statistics.median(
            v[1] for v in times[f"trpo_step, {args.fisher_threads} Fisher threads, {name}"]
        )
        for name in pools
    }
    ratio = threaded["library's pool"] / threaded["bare pool (before)"]
    print(
        f"  trpo_step on {args.fisher_threads} Fisher threads, library's / bare pool: wall time {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
