"""TRPO's Fisher-vector products: the Gauss-Newton form against the double backward, side by side.

Builds MAESN on a ``--n-tasks`` x ``--episodes`` layout of ``--env`` (native batch), meta-trains
``--warmup`` iterations, then takes the next outer update's objective and times, interleaved over
``--repeats`` rounds, one Fisher-vector product of each form (:func:`gauss_newton_vector_product`,
:func:`kl_hessian_vector_product`) and a whole ``trpo_step`` with each (from the same parameters).
Reports the median CPU time of the process (less sensitive than wall clock to other jobs on a shared
machine) and the wall time, and checks that both forms give the same product.

    python benchmarks/fisher_speed.py
    python benchmarks/fisher_speed.py --latent-gradient score_function --fisher-subsample 0.1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch as th
from stable_baselines3.common.logger import configure
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from maesn_sb3 import MAESN, make_meta_vec_env
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
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    env = make_meta_vec_env(
        args.env, args.n_tasks, args.episodes, latent_dim=2, seed=0, vectorization="native"
    )
    model = MAESN(
        "MlpPolicy", env, seed=0, latent_gradient=args.latent_gradient, fisher_subsample=args.fisher_subsample
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
    forms = {
        "double backward": lambda: kl_hessian_vector_product(params, step["kl_fn"]()),
        "Gauss-Newton": lambda: gauss_newton_vector_product(params, step["fisher_terms_fn"]()),
    }
    products = {name: build() for name, build in forms.items()}
    results = [products[name](vector) for name in forms]
    difference = float((results[0] - results[1]).norm() / results[0].norm())
    times: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeats):
        for name in forms:
            times.setdefault(f"product, {name}", []).append(timed(lambda name=name: products[name](vector)))
        for name, fisher in (("double backward", None), ("Gauss-Newton", step["fisher_terms_fn"])):
            restart()
            run = [params, step["loss_fn"], step["kl_fn"], model.max_kl, model.cg_max_steps, model.cg_damping]
            times.setdefault(f"trpo_step, {name}", []).append(
                timed(lambda run=run, fisher=fisher: trpo_step(*run, fisher_terms_fn=fisher))
            )
    n_steps = int(step["fisher_terms_fn"]()[0][0].shape[0])
    print(
        f"{args.env}: {args.n_tasks} x {args.episodes} envs, {args.latent_gradient}, "
        f"Fisher on {n_steps} steps (fisher_subsample {args.fisher_subsample:g}), "
        f"{args.repeats} interleaved rounds, "
        f"{th.get_num_threads()} torch thread(s); relative difference of the two products {difference:.1e}"
    )
    print(f"  {'':<34} {'CPU s (median)':>15} {'wall s (median)':>16}")
    for name, values in times.items():
        cpu, wall = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        print(f"  {name:<34} {cpu:>15.3f} {wall:>16.3f}")
    for what in ("product", "trpo_step"):
        ratio = statistics.median(v[0] for v in times[f"{what}, double backward"]) / statistics.median(
            v[0] for v in times[f"{what}, Gauss-Newton"]
        )
        print(f"  {what}: double backward / Gauss-Newton CPU time {ratio:.2f}")


if __name__ == "__main__":
    main()
