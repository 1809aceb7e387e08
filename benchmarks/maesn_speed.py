"""Meta-training speed: MAESN and SB3 PPO on the native batch vs today's DummyVecEnv, side by side.

For each env id, every algorithm trains on the same env layout (``--n-tasks`` x ``--episodes`` envs,
``make_meta_vec_env(..., latent_dim=2)``) once per backend (``--backends``, default ``dummy native``);
the runs alternate (MAESN dummy, MAESN native, PPO dummy, PPO native, ...) so all see the same
machine load, and the median env-steps/s of each is reported with MAESN's split between sampling
and updates. MAESN takes the TRPO outer step (the default when the documented figures were measured;
MAESN's default is now the proximal step). PPO: ``n_steps`` = the horizon, 4 minibatches, 10 epochs,
a (100, 100) ReLU MLP. ``--fisher-subsample 0.1`` adds MAESN on the native backend with 10 % of the
steps in TRPO's Fisher-vector products; ``--outer-update ppo`` adds it with the proximal outer step,
and the ratio of the time per step of the two outer steps. ``--reference-checkout DIR`` adds MAESN
with the code of another checkout (its default backend and outer step; e.g. a worktree at the commit
before the native batch, "MAESN today" of the issue that asked for it), run in a subprocess in the
same rotation. Wall-clock time; the machine may be shared and noisy, so read the ratios of one run,
not its absolutes.

    python benchmarks/maesn_speed.py
    python benchmarks/maesn_speed.py --envs maesn_sb3/WheeledNav-v0 --meta-iterations 2
    git worktree add /tmp/before 1b2d958 && python benchmarks/maesn_speed.py --reference-checkout /tmp/before
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure

from maesn_sb3 import MAESN, make_meta_vec_env


def run_maesn(make_env: Any, timesteps: int, **maesn_kwargs: Any) -> tuple[float, float, float]:
    """One MAESN run (the TRPO outer step unless ``maesn_kwargs`` say otherwise): env steps/s and the
    seconds spent sampling and updating."""
    model = MAESN("MlpPolicy", make_env(), seed=0, **{"outer_update": "trpo", **maesn_kwargs})
    with tempfile.TemporaryDirectory() as folder:
        model.set_logger(configure(folder, ["csv"]))
        start = time.perf_counter()
        model.learn(timesteps)
        elapsed = time.perf_counter() - start
        rows = list(csv.DictReader((Path(folder) / "progress.csv").open()))
    sampling = sum(float(row["time/sampling_s"]) for row in rows)
    update = sum(float(row["time/update_s"]) for row in rows)
    model.env.close()
    return model.num_timesteps / elapsed, sampling, update


#: MAESN on the default backend of whatever checkout is on the path (old ones lack ``vectorization``)
REFERENCE_RUN = """
import sys, time
import torch as th
from maesn_sb3 import MAESN, make_meta_vec_env
th.set_num_threads({threads})
env = make_meta_vec_env({env_id!r}, n_tasks={n_tasks}, envs_per_task={episodes}, latent_dim=2, seed=0)
model = MAESN("MlpPolicy", env, seed=0)
start = time.perf_counter()
model.learn({timesteps})
print(type(env.venv).__name__, model.num_timesteps / (time.perf_counter() - start))
"""


def run_reference(checkout: Path, env_id: str, args: argparse.Namespace, timesteps: int) -> tuple[str, float]:
    """MAESN's backend and env steps/s with the code of ``checkout`` (its default), in a subprocess."""
    code = REFERENCE_RUN.format(
        threads=args.threads, env_id=env_id, n_tasks=args.n_tasks, episodes=args.episodes, timesteps=timesteps
    )
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(  # in the checkout: "python -c" puts the working directory first on the path
        [sys.executable, "-c", code],
        cwd=checkout,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    backend, rate = done.stdout.split()[-2:]
    return backend, float(rate)


def run_ppo(make_env: Any, timesteps: int, horizon: int) -> float:
    """One SB3 PPO run: env steps/s."""
    env = make_env()
    ppo = PPO(
        "MlpPolicy",
        env,
        n_steps=horizon,
        batch_size=horizon * env.num_envs // 4,
        n_epochs=10,
        seed=0,
        policy_kwargs={"net_arch": [100, 100], "activation_fn": th.nn.ReLU},
    )
    start = time.perf_counter()
    ppo.learn(timesteps)
    elapsed = time.perf_counter() - start
    env.close()
    return ppo.num_timesteps / elapsed


def _describe(checkout: Path) -> str:
    """A checkout's commit (short hash) or, outside git, its path."""
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or str(checkout)


def measure(env_id: str, args: argparse.Namespace) -> dict[str, Any]:
    def maker(vectorization: str) -> Any:
        def make_env() -> Any:
            return make_meta_vec_env(
                env_id,
                n_tasks=args.n_tasks,
                envs_per_task=args.episodes,
                latent_dim=2,
                seed=0,
                vectorization=vectorization,
            )

        return make_env

    probe = maker("dummy")()
    horizon = probe.get_attr("spec", [0])[0].max_episode_steps
    probe.close()
    n_envs = args.n_tasks * args.episodes
    # a MAESN meta-iteration samples two phases of one episode per env
    timesteps = args.timesteps or args.meta_iterations * 2 * n_envs * horizon
    reference = ""
    rates: dict[str, list[float]] = {}
    split: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for backend in args.backends:
            rate, sampling, update = run_maesn(maker(backend), timesteps)
            rates.setdefault(f"MAESN {backend}", []).append(rate)
            split.setdefault(f"MAESN {backend}", [0.0, 0.0])
            split[f"MAESN {backend}"][0] += sampling
            split[f"MAESN {backend}"][1] += update
        if args.fisher_subsample < 1:
            name = f"MAESN native, Fisher subsample {args.fisher_subsample:g}"
            rate, sampling, update = run_maesn(
                maker("native"), timesteps, fisher_subsample=args.fisher_subsample
            )
            rates.setdefault(name, []).append(rate)
            split.setdefault(name, [0.0, 0.0])
            split[name][0] += sampling
            split[name][1] += update
        if args.outer_update == "ppo":
            name = "MAESN native, proximal outer step"
            rate, sampling, update = run_maesn(maker("native"), timesteps, outer_update="ppo")
            rates.setdefault(name, []).append(rate)
            split.setdefault(name, [0.0, 0.0])
            split[name][0] += sampling
            split[name][1] += update
        if args.reference_checkout is not None:
            backend, rate = run_reference(args.reference_checkout, env_id, args, timesteps)
            reference = f"MAESN at {_describe(args.reference_checkout)} ({backend})"
            rates.setdefault(reference, []).append(rate)
        for backend in args.backends:
            rates.setdefault(f"PPO {backend}", []).append(run_ppo(maker(backend), timesteps, horizon))
    print(
        f"\n{env_id}: {n_envs} envs, horizon {horizon}, {timesteps} env steps per run, "
        f"{args.repeats} interleaved run(s) each, {th.get_num_threads()} torch thread(s)"
    )
    print(f"  {'run':<40} {'median steps/s':>15}   runs")
    for name, values in rates.items():
        print(f"  {name:<40} {statistics.median(values):>15,.0f}   {', '.join(f'{v:,.0f}' for v in values)}")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    ratios = {}
    if {"dummy", "native"} <= set(args.backends):
        ratios["MAESN native / dummy"] = medians["MAESN native"] / medians["MAESN dummy"]
        ratios["PPO native / dummy"] = medians["PPO native"] / medians["PPO dummy"]
    if args.fisher_subsample < 1 and "dummy" in args.backends:
        name = f"MAESN native, Fisher subsample {args.fisher_subsample:g}"
        ratios[f"{name} / MAESN dummy"] = medians[name] / medians["MAESN dummy"]
        if "native" in args.backends:
            ratios[f"{name} / PPO native"] = medians[name] / medians["PPO native"]
    if args.outer_update == "ppo" and "native" in args.backends:
        ratios["MAESN native, time per step: proximal outer step / TRPO"] = (
            medians["MAESN native"] / medians["MAESN native, proximal outer step"]
        )
    if reference:
        for backend in args.backends:
            ratios[f"MAESN {backend} / {reference}"] = medians[f"MAESN {backend}"] / medians[reference]
    for backend in args.backends:
        ratios[f"MAESN / PPO ({backend})"] = medians[f"MAESN {backend}"] / medians[f"PPO {backend}"]
    for name, value in ratios.items():
        print(f"  {name:<60} {value:.2f}")
    for name, (sampling, update) in split.items():
        total = sampling + update
        print(
            f"  {name} time split: sampling {sampling:.1f} s ({100 * sampling / total:.0f}%), "
            f"updates {update:.1f} s ({100 * update / total:.0f}%)"
        )
    return {"env_id": env_id, "rates": rates, "ratios": ratios, "split": split}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", "--env", nargs="+", default=["maesn_sb3/PointNav2D-v0"])
    parser.add_argument(
        "--backends", nargs="+", choices=["dummy", "subproc", "native"], default=["dummy", "native"]
    )
    parser.add_argument("--n-tasks", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=20, help="envs per task")
    parser.add_argument("--meta-iterations", type=int, default=5, help="MAESN meta-iterations per run")
    parser.add_argument("--timesteps", type=int, default=None, help="env steps per run (instead)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--fisher-subsample",
        type=float,
        default=1.0,
        help="also time MAESN on the native backend with this Fisher-vector subsample (< 1)",
    )
    parser.add_argument(
        "--outer-update",
        choices=("trpo", "ppo"),
        default="trpo",
        help="ppo: also time MAESN on the native backend with the proximal outer step",
    )
    parser.add_argument(
        "--reference-checkout",
        type=Path,
        default=None,
        help="also time MAESN on its default backend with the code of this checkout (e.g. a git "
        "worktree of an older commit), in a subprocess, interleaved with the other runs",
    )
    args = parser.parse_args(argv)
    for name in ("n_tasks", "episodes", "meta_iterations", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 < args.fisher_subsample <= 1:
        parser.error(f"--fisher-subsample must lie in (0, 1], got {args.fisher_subsample}")
    th.set_num_threads(args.threads)
    return [measure(env_id, args) for env_id in args.envs]


if __name__ == "__main__":
    main()
