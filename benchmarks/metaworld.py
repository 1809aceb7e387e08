"""Meta-World ML1: MAESN, MAML, RL^2, fine-tuned multi-task PPO and PPO from scratch, meta-tested with
Meta-World's protocol and scored two ways from the same episodes; Meta-World's env steps/s and memory
per env through the library's dummy and subprocess backends.

Run it in the Meta-World venv (MuJoCo 3.3; ``make test-metaworld`` builds ``.venv-metaworld``). The
issue-scale run (hours on a few cores; 5 methods x 2 envs x 3 seeds at 1M meta-training steps)::

    nice -n 10 .venv-metaworld/bin/python benchmarks/metaworld.py --budget 1000000 --seeds 0 1 2 \\
        --num-evals 10 --adaptation-episodes 10 --speed --out benchmarks/results/metaworld_1m

Every cell (env, method, seed) runs in its own process (its peak memory its own, read from
``getrusage``) at one torch thread and appends one JSON line to ``<out>/cells.jsonl``; a rerun with the
same settings skips the cells already there. MAESN's and MAML's meta-training checkpoints every
``--checkpoint-every`` meta-iterations and on SIGTERM (``kill -TERM`` this script: it passes the signal
to the cell, which checkpoints at the end of its meta-iteration) under
``<out>/<env>/checkpoints/`` (:mod:`maesn_sb3.benchmark.checkpoints`; commit them to continue on another
machine), and a rerun continues the cell from there, the same run as one never stopped; the other
methods' cells run whole or start again. The report (Markdown tables) is printed at the end, and by
``--report`` alone.

Each method meta-trains on the benchmark's training tasks for ``--budget`` env steps (PPO from scratch:
none), then ``maesn_sb3.metaworld.metalearning_evaluation`` runs Meta-World's protocol on its test
tasks: per round (``--num-evals``) each of ``--meta-batch-size`` test envs gets a test goal, the method
adapts on ``--adaptation-episodes`` episodes per env (``--adaptation-steps`` times), then plays
``--evaluation-episodes`` episodes per env that stop at success. "success (per env)" scores every
env's episodes (every sampled goal counts once); "success (Meta-World 3.1)" is Meta-World's own count
of the same episodes (the first episodes to end per env name, which inflates ML1; the tests check that
it equals ``metaworld.evaluation.metalearning_evaluation``). MAESN adapts its latent, MAML its weights
(one policy-gradient step per adaptation step), RL^2 its LSTM state (trials of adaptation + evaluation
episodes, the length it trains on), the PPO baselines fine-tune a copy per test env.

``--speed`` measures Meta-World's env steps/s through ``make_metaworld_env`` (random actions) with the
dummy and subprocess backends at 1 to ``--speed-envs`` sub-envs, and the memory per sub-env (the
growth of this process's proportional set size plus the workers', over the sub-envs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# this script's folder comes first on sys.path, and its name would shadow the metaworld package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

METHODS = ("maesn", "maml", "rl2", "mtppo", "scratch")
#: the methods whose meta-training checkpoints (the others' cells run whole)
CHECKPOINTED = ("maesn", "maml")
ENVS = ("reach-v3", "push-v3")
#: MAESN's latent size unless ``--latent-dim`` says otherwise (rows written before that option read as it)
LATENT_DIM = 2
#: ML10 meta-test success in the Meta-World paper (Yu et al., CoRL 2019): MAML and RL^2 have agents here
PUBLISHED_ML10 = {"MAML": 0.316, "RL^2": 0.358, "PEARL": 0.130}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pss_mb(pid: int | str = "self") -> float:
    """A process's proportional set size now (Linux): its resident memory, pages shared with other
    processes (the forkserver's imports) split between them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no Pss for process {pid}")


def train(cell: dict[str, Any], out: Path | None = None, checkpoint_every: int = 10) -> tuple[Any, float]:
    """Meta-train the cell's method (PPO from scratch: untrained); returns the model and the seconds of
    meta-training done before this process, by the checkpoint it continued (MAESN and MAML, with
    ``out``: see :func:`maesn_sb3.benchmark.meta_train`)."""
    from stable_baselines3 import PPO

    from maesn_sb3 import MAESN, MAML, RL2, MultiTaskPPO
    from maesn_sb3.benchmark import Checkpointing, meta_train
    from maesn_sb3.metaworld import make_metaworld_env, metaworld_task_set
    from wrappers import RL2Wrapper

    method, seed, horizon = cell["method"], cell["seed"], cell["max_episode_steps"]
    tasks = metaworld_task_set("ML1", cell["env_name"], seed=0)
    trial = cell["adaptation_episodes"] * cell["adaptation_steps"] + cell["evaluation_episodes"]
    extra: dict[str, Any] = {"latent_dim": cell.get("latent_dim", LATENT_DIM)} if method == "maesn" else {}
    if method == "rl2":
        extra = {"wrapper_class": RL2Wrapper, "wrapper_kwargs": {"episodes_per_trial": trial}}

    def make_env() -> Any:
        return make_metaworld_env(
            "ML1",
            cell["env_name"],
            cell["n_tasks"],
            cell["envs_per_task"],
            seed=seed,
            tasks=tasks,
            max_episode_steps=horizon,
            **extra,
        )

    if method in CHECKPOINTED:
        algorithm = MAESN if method == "maesn" else MAML
        checkpointing = None
        if out is not None:
            checkpointing = Checkpointing(out / cell["env_name"], cell, method, seed, checkpoint_every)
        model, before = meta_train(
            lambda: algorithm("MlpPolicy", make_env(), task_set=tasks, seed=seed),
            lambda payload: algorithm.load(payload, env=make_env()),
            cell["budget"],
            checkpointing,
        )
        model.env.close()
        return model, before
    env = make_env()
    ppo = {"n_steps": horizon, "batch_size": horizon, "n_epochs": 10, "seed": seed}
    if method == "rl2":
        model = RL2("MlpLstmPolicy", env, task_set=tasks, n_steps=horizon * trial, seed=seed)
    elif method == "mtppo":
        model = MultiTaskPPO("MlpPolicy", env, task_set=tasks, **ppo)
    else:
        model = PPO("MlpPolicy", env, **ppo)
    if method != "scratch":
        model.learn(cell["budget"])
    env.close()
    return model, 0.0


@contextlib.contextmanager
def _checkpointed_steps(out: Path | None, cell: dict[str, Any]) -> Iterator[None]:
    """A SIGTERM in the meta-test names the step of the cell's newest checkpoint, which a rerun continues
    from (its meta-training's last meta-iterations and the meta-test run again)."""
    from maesn_sb3.benchmark import CellInterrupted, checkpointed_cells

    try:
        yield
    except CellInterrupted as stopped:
        header = (
            {}
            if out is None
            else checkpointed_cells(out / cell["env_name"]).get((stopped.method, stopped.seed), {})
        )
        raise CellInterrupted(stopped.method, stopped.seed, header.get("num_timesteps")) from None


def run_cell(cell: dict[str, Any], out: Path | None = None, checkpoint_every: int = 10) -> dict[str, Any]:
    """Meta-train one method and meta-test it (in this process); with ``out``, MAESN and MAML continue
    from their newest checkpoint there, and a finished cell's checkpoints are removed."""
    import torch as th

    th.set_num_threads(1)
    from maesn_sb3.benchmark import remove_checkpoints, stop_at_once, stop_on_sigterm
    from maesn_sb3.metaworld import metalearning_evaluation, metaworld_agent

    method, seed = cell["method"], cell["seed"]
    # a SIGTERM: MAESN and MAML checkpoint at the end of the meta-iteration, the rest stops at once
    with stop_on_sigterm():
        start = time.perf_counter()
        with contextlib.nullcontext() if method in CHECKPOINTED else stop_at_once(method, seed):
            model, before = train(cell, out, checkpoint_every)
        train_s = before + time.perf_counter() - start
        steps = int(model.num_timesteps)
        start = time.perf_counter()
        with stop_at_once(method, seed), _checkpointed_steps(out, cell):
            score = metalearning_evaluation(
                metaworld_agent(model, seed=seed),
                "ML1",
                cell["env_name"],
                meta_batch_size=cell["meta_batch_size"],
                num_evals=cell["num_evals"],
                adaptation_steps=cell["adaptation_steps"],
                adaptation_episodes=cell["adaptation_episodes"],
                evaluation_episodes=cell["evaluation_episodes"],
                max_episode_steps=cell["max_episode_steps"],
            )
    result = {
        **cell,
        "success": score.success_rate,
        "success_metaworld": score.success_rate_by_name,
        "return": score.mean_return,
        "return_metaworld": score.mean_return_by_name,
        "success_per_env": score.success_per_env.tolist(),
        "train_steps": steps,
        "train_s": round(train_s, 1),
        "train_steps_per_s": round(steps / train_s, 1) if steps else None,
        "eval_s": round(time.perf_counter() - start, 1),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    if out is not None:
        remove_checkpoints(out / cell["env_name"], cell["method"], cell["seed"])
    return result


def run_speed(cell: dict[str, Any]) -> dict[str, Any]:
    """Meta-World env steps/s and memory per sub-env through one backend (in this process)."""
    import numpy as np
    import torch as th

    th.set_num_threads(1)
    from maesn_sb3.metaworld import make_metaworld_env, metaworld_task_set

    tasks = metaworld_task_set("ML1", cell["env_name"], seed=0)
    before = pss_mb()
    start = time.perf_counter()
    env = make_metaworld_env(
        "ML1", cell["env_name"], cell["n_envs"], 1, seed=0, tasks=tasks, vectorization=cell["backend"]
    )
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    env.reset()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < cell["seconds"]:
        env.step(rng.uniform(-1, 1, (env.num_envs, 4)).astype(np.float32))
        steps += env.num_envs
    elapsed = time.perf_counter() - start
    workers = sum(pss_mb(child.pid) for child in multiprocessing.active_children())
    main = pss_mb()
    env.close()
    return {
        **cell,
        "steps_per_s": round(steps / elapsed, 1),
        "build_s": round(build_s, 2),
        "pss_mb_before": round(before),
        "pss_mb_main": round(main),
        "pss_mb_workers": round(workers),
        "mb_per_env": round((main - before + workers) / cell["n_envs"], 1),
    }


#: a cell process's exit status after a SIGTERM stopped it (MAESN and MAML: after their checkpoint)
INTERRUPTED = 3
_child: subprocess.Popen | None = None  # the cell process running now


def _pass_sigterm(signum: int, frame: Any) -> None:
    """This script's SIGTERM handler: the running cell gets the signal (and checkpoints), then we stop."""
    if _child is not None and _child.poll() is None:
        _child.send_signal(signal.SIGTERM)
    else:
        raise SystemExit(128 + signum)


def in_subprocess(kind: str, cell: dict[str, Any], options: list[str]) -> dict[str, Any] | None:
    """Run one cell in a process of its own; None if a SIGTERM stopped it."""
    global _child
    command = [sys.executable, __file__, *options, f"--{kind}", json.dumps(cell)]
    _child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = _child.communicate()
    code, _child = _child.returncode, None
    if code in (INTERRUPTED, -signal.SIGTERM):  # the latter: stopped before its handler was installed
        print(stderr.strip().splitlines()[-1] if code == INTERRUPTED else f"{cell} stopped", flush=True)
        return None
    if code != 0:
        raise RuntimeError(f"{kind} {cell} failed:\n{stderr[-4000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def is_done(cell: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """Whether a row has the cell's keys with the same values (a MAESN row without ``latent_dim``, written
    before that option, has :data:`LATENT_DIM`)."""
    legacy = {"latent_dim": LATENT_DIM} if cell.get("method") == "maesn" else {}
    return any(all(row.get(k, legacy.get(k)) == v for k, v in cell.items()) for row in rows)


def run_missing(kind: str, path: Path, cells: list[dict[str, Any]], options: list[str]) -> bool:
    """Run the cells not yet in ``path`` (:func:`is_done`), appending each result as it ends;
    False if a SIGTERM stopped one (the rest are left for the next run)."""
    for cell in cells:
        if is_done(cell, load(path)):
            continue
        result = in_subprocess(kind, cell, options)
        if result is None:
            return False
        with open(path, "a") as f:
            f.write(json.dumps(result) + "\n")
        shown = ("env_name", "method", "seed", "success", "success_metaworld", "train_s")
        print({k: result[k] for k in shown if k in result} if kind == "cell" else result, flush=True)
    return True


def method_label(cell: dict[str, Any]) -> str:
    """The method's name in the report, with MAESN's latent size where it is not :data:`LATENT_DIM`."""
    latent_dim = cell.get("latent_dim", LATENT_DIM)
    return cell["method"] if latent_dim == LATENT_DIM else f"{cell['method']} (latent_dim {latent_dim})"


def report(out: Path) -> str:
    import numpy as np

    lines = []
    cells = load(out / "cells.jsonl")
    if cells:
        lines += [
            "| env | method | seeds | meta-train env steps | success (per env) | "
            "success (Meta-World 3.1 count) | return (per env) |",
            "|---|---|---|---|---|---|---|",
        ]
        groups: dict[tuple, list] = {}
        for c in cells:
            groups.setdefault((c["env_name"], method_label(c), c["budget"]), []).append(c)
        for (env_name, method, _), rows in sorted(groups.items()):

            def cell(key: str, rows: list = rows) -> str:
                values = [r[key] for r in rows]
                each = ", ".join(f"{v:.2f}" for v in values)
                return f"{np.mean(values):.2f} ({each})" if len(values) > 1 else f"{values[0]:.2f}"

            lines.append(
                f"| {env_name} | {method} | {', '.join(str(r['seed']) for r in rows)} | "
                f"{rows[0]['train_steps']:,} | {cell('success')} | {cell('success_metaworld')} | "
                f"{np.mean([r['return'] for r in rows]):.1f} |"
            )
        first = cells[0]
        lines.append(
            f"\nProtocol: {first['num_evals']} round(s) x {first['meta_batch_size']} test envs, "
            f"{first['adaptation_episodes']} adaptation episodes x {first['adaptation_steps']} step(s), "
            f"{first['evaluation_episodes']} evaluation episodes per env; "
            f"horizon {first['max_episode_steps']}; "
            f"meta-training layout {first['n_tasks']} tasks x {first['envs_per_task']} envs. Per seed in "
            "brackets. Published ML10 meta-test success (Meta-World paper): "
            + ", ".join(f"{k} {v:.1%}" for k, v in PUBLISHED_ML10.items())
        )
        lines += [
            "\n| cell | meta-train env-steps/s | train s | eval s | peak RSS MB |",
            "|---|---|---|---|---|",
        ]
        for c in cells:
            lines.append(
                f"| {c['env_name']} {method_label(c)} seed {c['seed']} | {c['train_steps_per_s']} | "
                f"{c['train_s']} | {c['eval_s']} | {c['peak_rss_mb']} |"
            )
    speed = load(out / "speed.jsonl")
    if speed:
        lines += [
            f"\n| backend | sub-envs | env steps/s | MB per sub-env | main / workers PSS MB | build s |"
            f" (cores: {os.cpu_count()})",
            "|---|---|---|---|---|---|",
        ]
        for c in speed:
            lines.append(
                f"| {c['backend']} | {c['n_envs']} | {c['steps_per_s']:,} | {c['mb_per_env']} | "
                f"{c['pss_mb_main']} / {c['pss_mb_workers']} | {c['build_s']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/metaworld"))
    parser.add_argument("--budget", type=int, default=1_000_000, help="meta-training env steps per method")
    parser.add_argument("--envs", nargs="+", default=list(ENVS), help="ML1 environments")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--latent-dim", type=int, default=LATENT_DIM, help="MAESN's latent size")
    parser.add_argument("--n-tasks", type=int, default=10, help="task slots per meta-iteration / rollout")
    parser.add_argument("--envs-per-task", type=int, default=2)
    parser.add_argument("--max-episode-steps", type=int, default=500, help="Meta-World's horizon is 500")
    parser.add_argument("--meta-batch-size", type=int, default=10, help="Meta-World's test envs")
    parser.add_argument("--num-evals", type=int, default=1, help="rounds (Meta-World's default: 10)")
    parser.add_argument("--adaptation-steps", type=int, default=1)
    parser.add_argument("--adaptation-episodes", type=int, default=2, help="Meta-World's default: 10")
    parser.add_argument("--evaluation-episodes", type=int, default=3)
    parser.add_argument("--speed", action="store_true", help="also measure env steps/s and memory per env")
    parser.add_argument("--speed-envs", type=int, default=8, help="the largest sub-env count measured")
    parser.add_argument("--speed-seconds", type=float, default=10.0)
    parser.add_argument("--no-cells", action="store_true", help="skip the methods (e.g. only --speed)")
    parser.add_argument("--report", action="store_true", help="print the report of --out and stop")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        help="MAESN's and MAML's meta-iterations between checkpoints (0: only on SIGTERM)",
    )
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--speed-cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.checkpoint_every < 0:
        parser.error(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.latent_dim < 1:
        parser.error(f"--latent-dim must be >= 1, got {args.latent_dim}")
    if args.speed_cell:
        print(json.dumps(run_speed(json.loads(args.speed_cell))))
        return
    if args.cell:
        from maesn_sb3.benchmark import CellInterrupted

        try:
            result = run_cell(json.loads(args.cell), args.out, args.checkpoint_every)
        except CellInterrupted as stopped:
            print(stopped, file=sys.stderr)
            sys.exit(INTERRUPTED)
        print(json.dumps(result))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        print(f"load: {os.getloadavg()}", flush=True)
        if args.speed:
            counts = sorted({1, *(2**k for k in range(1, 8) if 2**k < args.speed_envs), args.speed_envs})
            speed = [
                {"env_name": ENVS[0], "backend": backend, "n_envs": n, "seconds": args.speed_seconds}
                for backend in ("dummy", "subproc")
                for n in counts
            ]
            run_missing("speed-cell", args.out / "speed.jsonl", speed, [])
        settings = {
            "budget": args.budget,
            "n_tasks": args.n_tasks,
            "envs_per_task": args.envs_per_task,
            "max_episode_steps": args.max_episode_steps,
            "meta_batch_size": args.meta_batch_size,
            "num_evals": args.num_evals,
            "adaptation_steps": args.adaptation_steps,
            "adaptation_episodes": args.adaptation_episodes,
            "evaluation_episodes": args.evaluation_episodes,
        }
        maesn = {"latent_dim": args.latent_dim}
        plan = [
            {
                "env_name": env_name,
                "method": method,
                "seed": seed,
                **settings,
                **(maesn if method == "maesn" else {}),
            }
            for seed in args.seeds
            for env_name in args.envs
            for method in args.methods
        ]
        signal.signal(signal.SIGTERM, _pass_sigterm)
        options = ["--out", str(args.out), "--checkpoint-every", str(args.checkpoint_every)]
        if not run_missing("cell", args.out / "cells.jsonl", [] if args.no_cells else plan, options):
            print("stopped by SIGTERM: run the same command again to continue", flush=True)
            return
        print(f"load: {os.getloadavg()}", flush=True)
    print(report(args.out))


if __name__ == "__main__":
    main()
