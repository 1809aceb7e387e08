"""Paper-style benchmark: MAESN vs MAML vs RL^2 vs latent-space baseline vs PPO on held-out sparse tasks.

For one task family, every method meta-trains with the dense reward on the training tasks (PPO from
scratch does not), then adapts on the same held-out tasks with the sparse reward, with the same
env-step budget: ``adapt_iterations + 1`` batches of ``adapt_episodes`` episodes per task. Several
seeds; one (method, seed) cell at a time, appended to ``adaptation.csv`` when it finishes, so a killed
run resumes from its last finished cell. MAESN's, the latent-space baseline's and MAML's cells also
checkpoint their meta-training under ``checkpoints/`` every ``--checkpoint-every`` meta-iterations and
on SIGTERM (then the run exits with 143): the same command resumes each from its newest checkpoint,
with the rows of a run never stopped, and removes the checkpoints when the cell's rows are written.
Writes ``adaptation.csv`` (every method, seed, task, iteration,
env steps, return, success), ``training.csv`` (meta-training steps and time per cell),
``versions.csv`` (the Python and package versions and the CPU each cell ran with), ``speed.json``
(env steps/s of MAESN, MAML and SB3 PPO meta-training on the same env, measured side by side),
``adaptation.png`` (return and success vs iteration and vs env steps, 95 % bootstrap bands) and
``adaptation.md`` (interquartile mean and stratified-bootstrap 95 % CIs, rliable-style, numpy only).

    maesn-sb3 benchmark --tier quick                  # PointNav2D, all methods, < 30 min
    maesn-sb3 benchmark --tier paper --env maesn_sb3/WheeledNav-v0
    maesn-sb3 benchmark --tier quick --report-only    # redo table and plot from the CSV
    maesn-sb3 benchmark --tier paper --env maesn_sb3/AntGoal-v0 --budget-scale 8 --status
    maesn-sb3 benchmark --tier paper --env maesn_sb3/AntGoal-v0 --budget-scale 8 --low-priority
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from maesn_sb3.benchmark.budget import budget_table, plot_budget_curve
from maesn_sb3.benchmark.cells import measure_speed, run_cell
from maesn_sb3.benchmark.checkpoints import (
    CellInterrupted,
    checkpointed_cells,
    config_differences,
    remove_checkpoints,
)
from maesn_sb3.benchmark.config import (
    COVERAGE_FIELDS,
    EXPLORATION_FIELDS,
    FIELDS,
    META_LEARNERS,
    METHODS,
    TIERS,
    VERSION_FIELDS,
    Config,
    check_outer_kwargs,
    resolved_kwargs,
)
from maesn_sb3.benchmark.pool import make_pool
from maesn_sb3.benchmark.report import report
from maesn_sb3.benchmark.results import (
    PAPER_RESULTS,
    _check_output,
    append_csv,
    cell_rows,
    read_csv,
    repair_csv,
)
from maesn_sb3.benchmark.status import status
from maesn_sb3.validators import check_float


def _default_output(tier: str, env_id: str, budget_scale: float) -> Path:
    """``benchmarks/results/paper/<family>[_<scale>x]`` (committed, so a run resumes on any machine) for
    the paper tier, ``benchmarks/results/adaptation_<tier>_<family>`` for the others."""
    family = env_id.split("/")[-1].split(":")[-1]
    if tier == "paper":
        return PAPER_RESULTS / (family if budget_scale == 1 else f"{family}_{budget_scale:g}x")
    return Path("benchmarks/results") / f"adaptation_{tier}_{family}"


@contextlib.contextmanager
def _cell_runner(
    workers: int, ray_address: str | None, parser: argparse.ArgumentParser, low_priority: bool = False
) -> Iterator[Callable[..., Future]]:
    """``submit(config, method, seed, ...)``, a future of :func:`run_cell`: in a process pool of ``workers``
    (at the lowest CPU priority with ``low_priority``), or as one Ray task per cell on the cluster at
    ``ray_address``."""
    if ray_address is None:
        with make_pool(workers, low_priority) as pool:
            yield functools.partial(pool.submit, run_cell)
        return
    from maesn_sb3.vec_env import import_ray

    try:
        ray = import_ray()
    except ImportError as error:
        parser.error(f"--ray-address: {error}")
    if not ray.is_initialized():
        ray.init(address=ray_address, include_dashboard=False, logging_level="warning")
    remote_cell = ray.remote(num_cpus=1, max_retries=0)(run_cell)
    refs = []

    def submit(*args: Any) -> Future:
        refs.append(remote_cell.remote(*args))
        return refs[-1].future()

    try:
        yield submit
    finally:
        for ref in refs:  # an interrupted run leaves no cell running on the cluster
            ray.cancel(ref, force=True)


def _signal_workers() -> None:
    """Send SIGTERM to this process's worker processes."""
    for child in multiprocessing.active_children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGTERM)


@contextlib.contextmanager
def _sigterm_ignored(active: bool) -> Iterator[None]:
    """While open (where ``active``), this process ignores SIGTERM, and so do the pool's worker processes
    spawned meanwhile (an ignored signal stays ignored across ``exec``) until their initializer installs
    their handler: a SIGTERM while a worker still imports would otherwise end it and break the pool."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _forward_sigterm(active: bool) -> Iterator[threading.Event]:
    """While open (where ``active``), a SIGTERM to this process is passed on to the cells' worker processes
    (which checkpoint and stop) and sets the event yielded, so the cells not begun are cancelled."""
    stopping = threading.Event()
    if not active or threading.current_thread() is not threading.main_thread():
        yield stopping
        return

    def forward(signum: int, frame: Any) -> None:
        stopping.set()
        _signal_workers()

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield stopping
    finally:
        signal.signal(signal.SIGTERM, previous)


def _completed(futures: Iterable[Future], stopping: threading.Event) -> Iterator[Future]:
    """The futures as they complete, those cancelled left out. Once ``stopping`` is set, the cells not
    begun are cancelled and the workers get SIGTERM again every few seconds: one that was still starting
    (SIGTERM ignored, see :func:`_sigterm_ignored`) when the first came, gets it once it can act on it."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=5.0, return_when=FIRST_COMPLETED)
        if stopping.is_set():
            for future in pending:
                future.cancel()
            _signal_workers()
        yield from (future for future in done if not future.cancelled())


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the benchmark with the command-line arguments ``argv`` (None: ``sys.argv``); the exit code."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tier", choices=sorted(TIERS), default="quick")
    parser.add_argument("--env", default=None, help="task family (default: the tier's)")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=None,
        help="default: every method the tier has a budget for, and PPO from scratch",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--test-tasks", type=int, default=None)
    parser.add_argument("--n-tasks", type=int, default=None, help="tasks per meta-iteration")
    parser.add_argument("--envs-per-task", type=int, default=None, help="episodes per task and phase")
    parser.add_argument("--adapt-iterations", type=int, default=None)
    parser.add_argument("--adapt-episodes", type=int, default=None)
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every meta-training budget")
    parser.add_argument(
        "--budget",
        nargs="+",
        default=[],
        metavar="METHOD=STEPS",
        help="set meta-training budgets (after the scale)",
    )
    parser.add_argument(
        "--speed-steps", type=int, default=None, help="steps per method for speed.json (0: skip)"
    )
    parser.add_argument(
        "--diayn-steps", type=int, default=None, help="DIAYN pre-training env steps of the skills variant"
    )
    parser.add_argument(
        "--inner-reward-key",
        default=None,
        help="MAESN's and MAML's inner step on info[KEY] during meta-training (e.g. sparse_reward)",
    )
    parser.add_argument(
        "--vanilla-gradient",
        action="store_true",
        help="vanilla latent steps for MAESN and the latent-space baseline (default: natural gradient)",
    )
    parser.add_argument(
        "--latent-gradient",
        choices=("reparameterization", "score_function"),
        default=None,
        help="MAESN's outer latent gradient (default: MAESN's)",
    )
    parser.add_argument(
        "--outer-update",
        choices=("trpo", "ppo"),
        default=None,
        help="the outer update of MAESN, the latent-space baseline and MAML (default: the tier's, ppo)",
    )
    parser.add_argument(
        "--outer-kwargs",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='more constructor arguments for those three, e.g. \'{"n_epochs": 5, "learning_rate": 3e-4}\' '
        "(latent_learning_rate: MAESN and the latent-space baseline only)",
    )
    parser.add_argument(
        "--adapt-step-scale",
        type=float,
        default=None,
        help="multiply MAESN's and the latent-space baseline's meta-test latent steps (default 1: the "
        "reference's)",
    )
    parser.add_argument("--workers", type=int, default=2, help="cells run in parallel (processes)")
    parser.add_argument(
        "--ray-address",
        default=None,
        help="run the cells on this Ray cluster, one Ray task (one CPU) each, instead of --workers "
        'processes (auto: the cluster `ray start` joined; needs pip install "maesn-sb3[ray]")',
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="default: benchmarks/results/adaptation_<tier>_<env>"
    )
    parser.add_argument("--report-only", action="store_true", help="only rebuild the table and plot")
    parser.add_argument(
        "--status",
        action="store_true",
        help="only print which cells are done, in progress (their checkpointed step) and to do, with a time "
        "estimate from the measured speed",
    )
    parser.add_argument(
        "--budget-curve",
        action="store_true",
        help="only draw the family's budget curve (MAESN, the latent-space baseline and MAML: success at the "
        "last iteration and exploration coverage against meta-training steps) from the run folders beside "
        "OUTPUT with OUTPUT's settings (this command's where it has none), budgets aside, to "
        "OUTPUT/budget_curve.png",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="checkpoint MAESN's, the latent-space baseline's and MAML's meta-training every N (default 10) "
        "meta-iterations under OUTPUT/checkpoints, and on SIGTERM; a rerun resumes from them (0: only "
        "on SIGTERM; not with --ray-address)",
    )
    parser.add_argument(
        "--low-priority",
        action="store_true",
        help="run the cells at the lowest CPU priority, also against other sessions (each cell in a "
        "session of its own, with nice 19 written to /proc/self/autogroup)",
    )
    args = parser.parse_args(argv)

    tier = dict(TIERS[args.tier])
    if args.env:
        tier["env_id"] = args.env
    for key, flag, minimum in (
        ("n_test_tasks", "test_tasks", 1),
        ("n_tasks", "n_tasks", 1),
        ("envs_per_task", "envs_per_task", 1),
        ("adapt_iterations", "adapt_iterations", 0),
        ("adapt_episodes", "adapt_episodes", 1),
        ("speed_steps", "speed_steps", 0),
        ("diayn_steps", "diayn_steps", 1),
    ):
        value = getattr(args, flag)
        if value is not None:
            if value < minimum:
                parser.error(f"--{flag.replace('_', '-')} must be >= {minimum}, got {value}")
            tier[key] = value
    if args.adapt_step_scale is not None:
        try:
            scale = check_float("--adapt-step-scale", args.adapt_step_scale, 0.0, strict=True)
        except ValueError as error:
            parser.error(str(error))
        tier["adapt_step_scale"] = scale
    if not args.budget_scale > 0:
        parser.error(f"--budget-scale must be > 0, got {args.budget_scale}")
    tier["budgets"] = {m: max(1, int(b * args.budget_scale)) for m, b in tier["budgets"].items()}
    for item in args.budget:
        method, _, steps = item.partition("=")
        trained = [m for m in METHODS if m != "scratch"]
        if method not in trained or not steps.isdigit() or int(steps) < 1:
            parser.error(f"--budget takes METHOD=STEPS with METHOD in {trained}, got {item!r}")
        tier["budgets"][method] = int(steps)
    if args.inner_reward_key is not None:
        tier["inner_reward_key"] = args.inner_reward_key or None
    negative = [seed for seed in args.seeds if seed < 0]
    if negative:
        parser.error(f"--seeds must be ints >= 0 (numpy seeds), got {negative}")
    repeated = sorted({seed for seed in args.seeds if args.seeds.count(seed) > 1})
    if repeated:
        parser.error(f"--seeds must not repeat a seed (each cell runs once), got {repeated} twice or more")
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if args.checkpoint_every is not None and args.ray_address is not None:
        parser.error("--checkpoint-every: a Ray cell runs on another machine's disk, it is not checkpointed")
    if args.checkpoint_every is None:
        args.checkpoint_every = 10
    elif args.checkpoint_every < 0:
        parser.error(f"--checkpoint-every must be >= 0 (meta-iterations), got {args.checkpoint_every}")
    if args.vanilla_gradient:
        tier["natural_gradient"] = False
    if args.latent_gradient is not None:
        tier["latent_gradient"] = args.latent_gradient
    if args.outer_update is not None:
        tier["outer_update"] = args.outer_update
    if args.outer_kwargs is not None:
        if not isinstance(args.outer_kwargs, dict):
            parser.error(f"--outer-kwargs must be a JSON object, got {args.outer_kwargs!r}")
        tier["outer_kwargs"] = args.outer_kwargs
    config = Config(**tier)
    config.resolved_kwargs = resolved_kwargs(config)
    methods = args.methods or [m for m in METHODS if m in config.budgets or m == "scratch"]
    try:
        check_outer_kwargs(config, methods)
    except ValueError as error:
        parser.error(f"--outer-kwargs: {error}")
    output = args.output or _default_output(args.tier, config.env_id, args.budget_scale)
    problem = None if args.status or args.budget_curve else _check_output(output)  # these create nothing
    if problem:
        parser.error(problem)
    saved = output / "config.json"
    if args.budget_curve:  # the curve of OUTPUT's settings, budgets aside (this command's without a run)
        base = Config(**json.loads(saved.read_text())) if saved.exists() else config
        figure = output / "budget_curve.png"
        figure.parent.mkdir(parents=True, exist_ok=True)
        try:
            points = plot_budget_curve(output.parent, config.env_id, figure, base=base)
        except ValueError as error:
            parser.error(f"--budget-curve: {error}")
        print(f"{budget_table(points)}\n\nwrote {figure}")
        return 0
    if saved.exists():
        # a setting added to Config since the run began reads as its default
        differences = config_differences(json.loads(saved.read_text()), config)
        if differences:
            changed = any(d.split()[0] in META_LEARNERS for d in differences)  # a hyperparameter
            parser.error(
                f"{output} holds a run with another config ({saved}: {'; '.join(differences)} differ); "
                "pick another --output"
                + (", or pass the saved values in --outer-kwargs to continue it" if changed else "")
            )
    elif not args.status:
        saved.write_text(json.dumps(asdict(config), indent=1))
    if args.status:
        print(status(config, output, methods, args.seeds, args.workers))
        return 0
    if args.report_only:
        print(report(config, output))
        return 0

    started = time.perf_counter()
    if config.speed_steps and not (output / "speed.json").exists():
        speed = measure_speed(config)
        (output / "speed.json").write_text(json.dumps(speed, indent=1))
        print("meta-training env steps/s:", ", ".join(f"{k} {v:,.0f}" for k, v in speed.items()), flush=True)
    info_fields = ("method", "seed", "train_steps", "train_seconds", "adapt_seconds")
    adaptation = output / "adaptation.csv"
    rows = read_csv(adaptation)
    finished = cell_rows(rows, config)
    kept = [r for cell in finished.values() for r in cell]
    if adaptation.exists() and (len(kept) != len(rows) or not adaptation.read_text().endswith("\n")):
        print("dropping the rows of an unfinished cell (a run killed while writing them)", flush=True)
        repair_csv(adaptation, kept, FIELDS)
    training = [r for r in read_csv(output / "training.csv") if (r["method"], int(r["seed"])) in finished]
    if (output / "training.csv").exists():
        repair_csv(output / "training.csv", training, info_fields)
    done = set(finished)
    for method, seed in done:  # a run killed between writing a cell's rows and removing its checkpoints
        remove_checkpoints(output, method, seed)
    # the slowest first: packs the workers better
    slow_first = ("maml", "rl2", "skills", "maesn", "mixed", "lsbaseline", "mtppo", "scratch")
    cells = [(m, s) for s in args.seeds for m in slow_first if m in methods and (m, s) not in done]
    begun = checkpointed_cells(output) if args.ray_address is None else {}
    cells.sort(key=lambda cell: cell not in begun)  # the cells begun first
    print(f"{len(done)} cells already done, {len(cells)} to run in {output}", flush=True)
    for method, seed in cells:
        if (method, seed) in begun:
            steps = begun[method, seed]["num_timesteps"]
            print(f"{method:>10} seed {seed}: resumes from its checkpoint at {steps:,} steps", flush=True)
    failures: list[tuple[str, int, BaseException]] = []
    local = args.ray_address is None
    figures = output if local else None  # a Ray cell runs on another machine's disk
    checkpoints = output if local else None
    with _cell_runner(args.workers, args.ray_address, parser, args.low_priority) as submit:
        with _sigterm_ignored(local):  # the workers start here: see _sigterm_ignored
            futures = {
                submit(config, m, s, figures, checkpoints, args.checkpoint_every): (m, s) for m, s in cells
            }
        with _forward_sigterm(local) as stopping:
            for future in _completed(futures, stopping):
                method, seed = futures[future]
                try:
                    rows, info = future.result()
                except CellInterrupted as stop:
                    print(stop, flush=True)
                    continue
                except Exception as error:  # one failed cell must not cost the others their results
                    failures.append((method, seed, error))
                    print(f"{method:>10} seed {seed}: FAILED: {type(error).__name__}: {error}", flush=True)
                    continue
                # before the cell's rows: a cell killed in between runs again and overwrites them
                extras = (
                    ("coverage.csv", COVERAGE_FIELDS),
                    ("exploration.csv", EXPLORATION_FIELDS),
                    ("versions.csv", VERSION_FIELDS),
                )
                for name, fields in extras:
                    measured = {key: info.pop(key) for key in fields[2:] if key in info}
                    if measured:
                        append_csv(output / name, [{"method": method, "seed": seed, **measured}], fields)
                append_csv(output / "adaptation.csv", rows, FIELDS)
                append_csv(output / "training.csv", [info], info_fields)
                remove_checkpoints(output, method, seed)
                last = [r["success"] for r in rows if r["iteration"] == config.adapt_iterations]
                print(
                    f"{info['method']:>10} seed {info['seed']}: train {info['train_steps']:,} steps in "
                    f"{info['train_seconds']:.0f} s, adapt {info['adapt_seconds']:.0f} s, "
                    f"success at iter {config.adapt_iterations}: {np.mean(last):.2f}",
                    flush=True,
                )
    if stopping.is_set():
        print(
            f"\nstopped by SIGTERM after {time.perf_counter() - started:.0f} s: run the same command to "
            "continue (each checkpointed cell from its checkpoint)\n"
        )
        print(status(config, output, methods, args.seeds, args.workers))
    else:
        print(f"\nfinished in {time.perf_counter() - started:.0f} s\n")
        print(report(config, output))
    if failures:
        print(f"\n{len(failures)} cell(s) failed (run again to retry them):", file=sys.stderr)
        for method, seed, error in failures:
            print(f"  {method} seed {seed}: {type(error).__name__}: {error}", file=sys.stderr)
    if stopping.is_set():
        return 128 + signal.SIGTERM
    return 1 if failures else 0
