"""Paper-style benchmark: MAESN vs MAML vs RL^2 vs latent-space baseline vs PPO on held-out sparse tasks.

For one task family, every method meta-trains with the dense reward on the training tasks (PPO from
scratch does not), then adapts on the same held-out tasks with the sparse reward, with the same
env-step budget: ``adapt_iterations + 1`` batches of ``adapt_episodes`` episodes per task. Several
seeds; one (method, seed) cell at a time, appended to ``adaptation.csv`` when it finishes, so a killed
run resumes from its last finished cell. Writes ``adaptation.csv`` (every method, seed, task, iteration,
env steps, return, success), ``training.csv`` (meta-training steps and time per cell), ``speed.json``
(env steps/s of MAESN, MAML and SB3 PPO meta-training on the same env, measured side by side),
``adaptation.png`` (return and success vs iteration and vs env steps, 95 % bootstrap bands) and
``adaptation.md`` (interquartile mean and stratified-bootstrap 95 % CIs, rliable-style, numpy only).

    python benchmarks/adaptation.py --tier quick                  # PointNav2D, all methods, < 30 min
    python benchmarks/adaptation.py --tier paper --env maesn_sb3/WheeledNav-v0
    python benchmarks/adaptation.py --tier quick --report-only    # redo table and plot from the CSV
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("maesn", "lsbaseline", "maml", "rl2", "mtppo", "scratch")
LABELS = {
    "maesn": "MAESN",
    "lsbaseline": "latent-space baseline",
    "maml": "MAML (TRPO)",
    "rl2": "RL^2 (RecurrentPPO)",
    "mtppo": "multi-task PPO, fine-tuned",
    "scratch": "PPO from scratch",
}
FIELDS = ("method", "seed", "task", "iteration", "env_steps", "return", "success")


@dataclass
class Config:
    """One benchmark setting, saved as ``config.json`` in the output folder (a resume cannot mix settings)."""

    env_id: str
    n_train_tasks: int = 100
    n_test_tasks: int = 10
    task_seed: int = 0
    n_tasks: int = 20  # tasks per meta-iteration / rollout
    envs_per_task: int = 20  # episodes per task and phase
    adapt_iterations: int = 5
    adapt_episodes: int = 20
    budgets: dict[str, int] = field(default_factory=dict)  # meta-training env steps per method
    rl2_envs_per_task: int = 2
    speed_steps: int = 40_000
    inner_reward_key: str | None = None  # MAESN's and MAML's inner step on info[key] (e.g. "sparse_reward")
    natural_gradient: bool = True  # MAESN's and the latent-space baseline's latent steps (False: vanilla)
    latent_gradient: str = "reparameterization"  # MAESN's outer latent gradient (or "score_function")


TIERS: dict[str, dict[str, Any]] = {
    # PointNav2D: horizon 50; MAESN needs about 1M steps to be useful. MAML (second order) and RL^2
    # get fewer steps so that the tier fits 30 minutes on 2 cores: MAML's update differentiates through
    # the inner step, and RecurrentPPO trains through a per-step Python loop over the trial. MAESN's and
    # MAML's inner steps learn from the sparse reward they will meet at test time (the outer update
    # keeps the dense one); `--inner-reward-key ""` gives the reference's dense inner step.
    "quick": {
        "env_id": "maesn_sb3/PointNav2D-v0",
        "inner_reward_key": "sparse_reward",
        "budgets": {
            "maesn": 3_000_000,
            "lsbaseline": 3_000_000,
            "maml": 800_000,
            "rl2": 180_000,
            "mtppo": 400_000,
        },
    },
    # MuJoCo families: the reference trains 500 meta-iterations x 20 tasks x 50 episodes (~10^8 steps).
    # Measured on WheeledNav (10 tasks x 10 envs, 1 core each): MAESN ~15k, MAML ~9k, PPO ~18k env
    # steps/s, RecurrentPPO ~1k. These budgets take ~4 core-hours per (family, seed) on WheeledNav,
    # so 3 families x 3 seeds fit a day on an 8-core workstation (AntGoal steps cost about twice as much).
    "paper": {
        "env_id": "maesn_sb3/WheeledNav-v0",
        "n_test_tasks": 10,
        "budgets": {
            "maesn": 30_000_000,
            "lsbaseline": 30_000_000,
            "maml": 30_000_000,
            "rl2": 5_000_000,
            "mtppo": 20_000_000,
        },
    },
}


# -- one cell -------------------------------------------------------------------------------------
def _horizon(env_id: str) -> int:
    import gymnasium as gym

    import maesn_sb3  # noqa: F401  (registers the task families)

    return int(gym.spec(env_id).max_episode_steps)


def run_cell(config: Config, method: str, seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Meta-train ``method`` with ``seed`` (dense reward), adapt on the held-out tasks (sparse reward)."""
    import torch as th

    th.set_num_threads(1)
    from maesn_sb3 import MAESN, MAML, RL2, LSBaseline, MultiTaskPPO, TaskSet, make_meta_vec_env
    from maesn_sb3.baselines import ppo_from_scratch
    from wrappers.rl2 import RL2Wrapper

    tasks = TaskSet.from_env(
        config.env_id, n_train=config.n_train_tasks, n_test=config.n_test_tasks, seed=config.task_seed
    )
    horizon = _horizon(config.env_id)
    trial = config.adapt_iterations + 1
    dense, sparse = {"reward_type": "dense"}, {"reward_type": "sparse"}
    budget = config.budgets.get(method, 0)
    latent = 2 if method in ("maesn", "lsbaseline") else None
    rl2 = (
        {"wrapper_class": RL2Wrapper, "wrapper_kwargs": {"episodes_per_trial": trial}}
        if method == "rl2"
        else {}
    )

    def train_env() -> Any:
        envs = config.rl2_envs_per_task if method == "rl2" else config.envs_per_task
        return make_meta_vec_env(
            config.env_id,
            n_tasks=config.n_tasks,
            envs_per_task=envs,
            seed=seed,
            tasks=tasks,
            latent_dim=latent,
            env_kwargs=dense,
            **rl2,
        )

    start = time.perf_counter()
    if method == "maesn":
        model = MAESN(
            "MlpPolicy",
            train_env(),
            task_set=tasks,
            seed=seed,
            inner_reward_key=config.inner_reward_key,
            natural_gradient=config.natural_gradient,
            latent_gradient=config.latent_gradient,
        ).learn(budget)
    elif method == "lsbaseline":
        model = LSBaseline(
            "MlpPolicy",
            train_env(),
            task_set=tasks,
            seed=seed,
            natural_gradient=config.natural_gradient,
            latent_gradient=config.latent_gradient,
        ).learn(budget)
    elif method == "maml":
        model = MAML(
            "MlpPolicy",
            train_env(),
            task_set=tasks,
            seed=seed,
            inner_lr=0.1,
            inner_reward_key=config.inner_reward_key,
        ).learn(budget)
    elif method == "rl2":
        model = RL2(
            "MlpLstmPolicy",
            train_env(),
            task_set=tasks,
            seed=seed,
            n_steps=trial * horizon,
            batch_size=trial * horizon * config.n_tasks * config.rl2_envs_per_task,
            n_epochs=5,
            learning_rate=1e-3,
            policy_kwargs={"shared_lstm": True, "enable_critic_lstm": False},
        ).learn(budget)
    elif method == "mtppo":
        model = MultiTaskPPO(
            "MlpPolicy",
            train_env(),
            task_set=tasks,
            seed=seed,
            n_steps=horizon,
            batch_size=horizon * config.n_tasks * config.envs_per_task // 4,
        ).learn(budget)
    elif method == "scratch":
        model = None
    else:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    train_seconds = time.perf_counter() - start
    train_steps = 0 if model is None else model.num_timesteps

    test_env = make_meta_vec_env(
        config.env_id,
        n_tasks=config.n_test_tasks,
        envs_per_task=config.adapt_episodes,
        seed=10_000 + seed,
        tasks=tasks.test,
        latent_dim=latent,
        env_kwargs=sparse,
        **rl2,
    )
    adapt = {
        "n_iterations": config.adapt_iterations,
        "episodes_per_iteration": config.adapt_episodes,
        "seed": seed,
    }
    start = time.perf_counter()
    if method in ("maesn", "lsbaseline"):
        result = model.adapt(test_env, evaluate=False, **adapt)
    elif method == "scratch":
        result = ppo_from_scratch(test_env, **adapt)
    else:
        result = model.adapt(test_env, **adapt)
    adapt_seconds = time.perf_counter() - start
    rows = [
        {
            "method": method,
            "seed": seed,
            "task": task,
            "iteration": k,
            "env_steps": int(result.env_steps[k]),
            "return": float(result.returns[k, task]),
            "success": float(result.success[k, task]),
        }
        for k in range(config.adapt_iterations + 1)
        for task in range(config.n_test_tasks)
    ]
    info = {
        "method": method,
        "seed": seed,
        "train_steps": int(train_steps),
        "train_seconds": round(train_seconds, 2),
        "adapt_seconds": round(adapt_seconds, 2),
    }
    return rows, info


# -- speed: env steps/s of meta-training, side by side ---------------------------------------------
def measure_speed(config: Config) -> dict[str, float]:
    """Meta-train MAESN, MAML and SB3 PPO for ``speed_steps`` steps each on the same env; steps/s."""
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3 import PPO

    from maesn_sb3 import MAESN, MAML, TaskSet, make_meta_vec_env

    tasks = TaskSet.from_env(config.env_id, n_train=config.n_train_tasks, n_test=0, seed=config.task_seed)
    horizon = _horizon(config.env_id)

    def env(latent: int | None) -> Any:
        return make_meta_vec_env(
            config.env_id,
            n_tasks=config.n_tasks,
            envs_per_task=config.envs_per_task,
            seed=0,
            tasks=tasks,
            latent_dim=latent,
            env_kwargs={"reward_type": "dense"},
        )

    makers = {
        "MAESN": lambda: MAESN("MlpPolicy", env(2), task_set=tasks, seed=0),
        "MAML": lambda: MAML("MlpPolicy", env(None), task_set=tasks, seed=0),
        "SB3 PPO": lambda: PPO(
            "MlpPolicy",
            env(None),
            n_steps=horizon,
            batch_size=horizon * config.n_tasks * config.envs_per_task // 4,
            seed=0,
        ),
    }
    speed = {}
    for name, make in makers.items():
        model = make()
        start = time.perf_counter()
        model.learn(config.speed_steps)
        speed[name] = model.num_timesteps / (time.perf_counter() - start)
    return speed


# -- statistics -----------------------------------------------------------------------------------
def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % of the scores (25 % trimmed at each end)."""
    flat = np.sort(np.asarray(scores, dtype=float).ravel())
    cut = int(np.floor(0.25 * flat.size))
    return float(flat[cut : flat.size - cut].mean())


def bootstrap_ci(
    scores: np.ndarray, statistic: Any = iqm, n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Stratified bootstrap CI of ``statistic`` over a ``(n_seeds, n_tasks)`` score matrix: the seeds
    are resampled with replacement independently for each task (rliable's ``StratifiedBootstrap``)."""
    scores = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    n_seeds, n_tasks = scores.shape
    picks = rng.integers(0, n_seeds, size=(n_resamples, n_seeds, n_tasks))
    samples = np.take_along_axis(scores[None].repeat(n_resamples, 0), picks, axis=1)
    values = np.array([statistic(sample) for sample in samples])
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def score_matrix(rows: list[dict[str, Any]], method: str, iteration: int, key: str) -> np.ndarray:
    """``(n_seeds, n_tasks)`` scores of one method at one iteration."""
    selected = [r for r in rows if r["method"] == method and int(r["iteration"]) == iteration]
    seeds = sorted({int(r["seed"]) for r in selected})
    tasks = sorted({int(r["task"]) for r in selected})
    matrix = np.full((len(seeds), len(tasks)), np.nan)
    for r in selected:
        matrix[seeds.index(int(r["seed"])), tasks.index(int(r["task"]))] = float(r[key])
    return matrix


def table(rows: list[dict[str, Any]], training: list[dict[str, Any]], config: Config) -> str:
    last = config.adapt_iterations
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    steps = {
        m: max(int(r["env_steps"]) for r in rows if r["method"] == m and int(r["iteration"]) == last)
        for m in methods
    }
    lines = [
        f"| method | seeds | meta-train steps | success, iter 0 | success, iter {last} | "
        f"return, iter {last} | mean success, iter {last} | env steps per task |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        cells = []
        for iteration, key in ((0, "success"), (last, "success"), (last, "return")):
            scores = score_matrix(rows, m, iteration, key)
            low, high = bootstrap_ci(scores)
            cells.append(f"{iqm(scores):.2f} [{low:.2f}, {high:.2f}]")
        train = [int(t["train_steps"]) for t in training if t["method"] == m]
        n_seeds = score_matrix(rows, m, last, "success").shape[0]
        mean_success = float(np.mean(score_matrix(rows, m, last, "success")))
        lines.append(
            f"| {LABELS[m]} | {n_seeds} | {int(np.mean(train)) if train else 0:,} | {' | '.join(cells)} | "
            f"{mean_success:.2f} | {steps[m]:,} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], config: Config, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharey="row")
    iterations = np.arange(config.adapt_iterations + 1)
    for m in [m for m in METHODS if any(r["method"] == m for r in rows)]:
        steps = np.array(
            [
                np.mean([int(r["env_steps"]) for r in rows if r["method"] == m and int(r["iteration"]) == k])
                for k in iterations
            ]
        )
        for row, key in enumerate(("return", "success")):
            means, lows, highs = [], [], []
            for k in iterations:
                scores = score_matrix(rows, m, k, key)
                means.append(float(np.mean(scores)))
                low, high = bootstrap_ci(scores, statistic=np.mean, n_resamples=500)
                lows.append(low)
                highs.append(high)
            for col, x in enumerate((iterations, steps)):
                ax = axes[row, col]
                ax.plot(x, means, "o-", ms=3, label=LABELS[m])
                ax.fill_between(x, lows, highs, alpha=0.2)
    for row, key in enumerate(("return", "success rate")):
        axes[row, 0].set_ylabel(f"held-out {key} (sparse)")
    for col, label in enumerate(("adaptation iteration", "env steps per task")):
        axes[1, col].set_xlabel(label)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        f"{config.env_id}: adaptation to {config.n_test_tasks} held-out tasks, "
        f"{config.adapt_episodes} episodes per iteration (mean, 95 % bootstrap CI)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# -- driver ---------------------------------------------------------------------------------------
def read_csv(path: Path) -> list[dict[str, Any]]:
    """The complete rows of a CSV; a torn last line (a kill during its write) is left out."""
    if not path.exists():
        return []
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.DictReader(text.splitlines()))
    return [r for r in rows if None not in r and None not in r.values()]


def cell_rows(rows: list[dict[str, Any]], config: Config) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The rows of every finished cell: those with all ``n_test_tasks x (adapt_iterations + 1)`` rows."""
    cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["method"], int(r["seed"])), []).append(r)
    expected = config.n_test_tasks * (config.adapt_iterations + 1)
    return {key: cell for key, cell in cells.items() if len(cell) == expected}


def repair_csv(path: Path, keep: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    """Rewrite ``path`` with only ``keep`` (atomically: a temporary file, then a rename)."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(keep)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def append_csv(path: Path, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    """Append ``rows`` (and the header to a new file) with one ``write`` on an ``O_APPEND`` descriptor,
    so a kill leaves either none of them or a torn tail that :func:`read_csv` drops."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size == 0:
            writer.writeheader()
        writer.writerows(rows)
        data = buffer.getvalue().encode()
        written = os.write(fd, data)
        if written != len(data):  # a full disk: say so rather than leave a silent half row
            raise OSError(f"wrote {written} of {len(data)} bytes to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)


def _die_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when the benchmark's process ends (even by SIGKILL).

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); everywhere a daemon
    thread also checks once a second that the parent still lives.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (AttributeError, OSError):
            pass
    if os.getppid() != parent:  # the parent ended before the prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def make_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers end with this process."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent, initargs=(os.getpid(),))


def _check_output(output: Path) -> str | None:
    """Why results could not be written to ``output`` (None when they can)."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as error:
        return f"--output {output} is not a writable folder: {error.strerror or error}"
    return None


def report(config: Config, output: Path) -> str:
    rows = [r for cell in cell_rows(read_csv(output / "adaptation.csv"), config).values() for r in cell]
    training = read_csv(output / "training.csv")
    if not rows:
        return "no finished cells yet"
    text = table(rows, training, config)
    speed_path = output / "speed.json"
    if speed_path.exists():
        speed = json.loads(speed_path.read_text())
        text += (
            "\n\nMeta-training env steps/s on the same env ("
            + config.env_id
            + ", "
            + f"{config.n_tasks} tasks x {config.envs_per_task} envs, one run): "
            + ", ".join(f"{k} {v:,.0f}" for k, v in speed.items())
        )
    (output / "adaptation.md").write_text(text + "\n")
    try:
        plot(rows, config, output / "adaptation.png")
    except ImportError:
        text += "\n(matplotlib missing: no plot)"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tier", choices=sorted(TIERS), default="quick")
    parser.add_argument("--env", default=None, help="task family (default: the tier's)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
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
    parser.add_argument("--workers", type=int, default=2, help="cells run in parallel (processes)")
    parser.add_argument(
        "--output", type=Path, default=None, help="default: benchmarks/results/adaptation_<tier>_<env>"
    )
    parser.add_argument("--report-only", action="store_true", help="only rebuild the table and plot")
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
    ):
        value = getattr(args, flag)
        if value is not None:
            if value < minimum:
                parser.error(f"--{flag.replace('_', '-')} must be >= {minimum}, got {value}")
            tier[key] = value
    if not args.budget_scale > 0:
        parser.error(f"--budget-scale must be > 0, got {args.budget_scale}")
    tier["budgets"] = {m: max(1, int(b * args.budget_scale)) for m, b in tier["budgets"].items()}
    for item in args.budget:
        method, _, steps = item.partition("=")
        if method not in tier["budgets"] or not steps.isdigit() or int(steps) < 1:
            parser.error(
                f"--budget takes METHOD=STEPS with METHOD in {sorted(tier['budgets'])}, got {item!r}"
            )
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
    if args.vanilla_gradient:
        tier["natural_gradient"] = False
    if args.latent_gradient is not None:
        tier["latent_gradient"] = args.latent_gradient
    config = Config(**tier)
    output = (
        args.output or Path("benchmarks/results") / f"adaptation_{args.tier}_{config.env_id.split('/')[-1]}"
    )
    problem = _check_output(output)
    if problem:
        parser.error(problem)
    saved = output / "config.json"
    if saved.exists():
        previous = json.loads(saved.read_text())
        if previous != asdict(config):
            parser.error(f"{output} holds a run with another config ({saved}); pick another --output")
    else:
        saved.write_text(json.dumps(asdict(config), indent=1))
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
    slow_first = ("maml", "rl2", "maesn", "lsbaseline", "mtppo", "scratch")  # packs the workers better
    cells = [(m, s) for s in args.seeds for m in slow_first if m in args.methods and (m, s) not in done]
    print(f"{len(done)} cells already done, {len(cells)} to run in {output}", flush=True)
    failures: list[tuple[str, int, BaseException]] = []
    with make_pool(args.workers) as pool:
        futures = {pool.submit(run_cell, config, m, s): (m, s) for m, s in cells}
        for future in as_completed(futures):
            method, seed = futures[future]
            try:
                rows, info = future.result()
            except Exception as error:  # one failed cell must not cost the others their results
                failures.append((method, seed, error))
                print(f"{method:>10} seed {seed}: FAILED: {type(error).__name__}: {error}", flush=True)
                continue
            append_csv(output / "adaptation.csv", rows, FIELDS)
            append_csv(output / "training.csv", [info], info_fields)
            last = [r["success"] for r in rows if r["iteration"] == config.adapt_iterations]
            print(
                f"{info['method']:>10} seed {info['seed']}: train {info['train_steps']:,} steps in "
                f"{info['train_seconds']:.0f} s, adapt {info['adapt_seconds']:.0f} s, "
                f"success at iter {config.adapt_iterations}: {np.mean(last):.2f}",
                flush=True,
            )
    print(f"\nfinished in {time.perf_counter() - started:.0f} s\n")
    print(report(config, output))
    if failures:
        print(f"\n{len(failures)} cell(s) failed (run again to retry them):", file=sys.stderr)
        for method, seed, error in failures:
            print(f"  {method} seed {seed}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
