"""Meta-World: MAESN vs fine-tuned multi-task PPO vs PPO from scratch, scored by Meta-World's own
``metaworld.evaluation.metalearning_evaluation``, and MAESN's meta-training speed and memory per layout.

Run it in the Meta-World venv (MuJoCo 3.3; ``make test-metaworld`` builds ``.venv-metaworld``)::

    .venv-metaworld/bin/python benchmarks/metaworld.py --budget 200000 --out benchmarks/results/metaworld

Every cell (benchmark, environment, method, seed) runs in its own process (so its peak memory is its
own, read from ``getrusage``) at one torch thread, and appends one JSON line to ``<out>/cells.jsonl``;
a rerun with the same settings skips the cells already there (resumable). ``--layouts`` measures
MAESN's meta-training env-steps/s and peak memory for ``n_tasks x envs_per_task`` layouts. The report
(a Markdown table) is printed at the end, and by ``--report`` alone.

Methods, all at the same meta-training budget of env steps (``--budget``; PPO from scratch: none) and
the same evaluation: Meta-World builds its test envs (the benchmark's test tasks) and, per evaluation
round, lets each method adapt for ``--adaptation-episodes`` episodes per env (``--adaptation-steps``
updates), then counts the success of ``--evaluation-episodes`` episodes per environment name (solved if
the success flag was ever set). MAESN adapts its latent (``MAESNAgent``), the PPO baselines fine-tune a
copy per test env with one PPO update per adaptation step (``PPOFinetuneAgent``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# this script's folder comes first on sys.path, and its name would shadow the metaworld package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

#: (benchmark, env, seed) in the order they run
CELLS = [
    ("ML1", "reach-v3", 0),
    ("ML10", None, 0),
    ("ML1", "push-v3", 0),
    ("ML1", "reach-v3", 1),
    ("ML1", "reach-v3", 2),
    ("ML1", "pick-place-v3", 0),
]
METHODS = ("maesn", "mtppo", "scratch")
ML10_METHODS = ("maesn", "mtppo")
#: ML10 meta-test success in the Meta-World paper (Yu et al., CoRL 2019, Table/Figure of ML10 results)
PUBLISHED_ML10 = {"MAML": 0.316, "RL^2": 0.358, "PEARL": 0.130}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """Meta-train one method and score it with Meta-World's evaluation (in this process)."""
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3 import PPO

    from maesn_sb3 import MAESN, MultiTaskPPO
    from maesn_sb3.metaworld import (
        make_metaworld_env,
        metalearning_evaluation,
        metaworld_agent,
        metaworld_task_set,
    )

    bench, env_name, method, seed = cell["benchmark"], cell["env_name"], cell["method"], cell["seed"]
    horizon = cell["max_episode_steps"]
    tasks = metaworld_task_set(bench, env_name, seed=0)
    env = make_metaworld_env(
        bench,
        env_name,
        cell["n_tasks"],
        cell["envs_per_task"],
        seed=seed,
        tasks=tasks,
        latent_dim=2 if method == "maesn" else None,
        max_episode_steps=horizon,
    )
    rss_envs = peak_rss_mb()
    ppo_settings = {"n_steps": horizon, "batch_size": horizon, "n_epochs": 10, "seed": seed}
    start = time.perf_counter()
    if method == "maesn":
        model = MAESN("MlpPolicy", env, task_set=tasks, seed=seed)
        model.learn(cell["budget"])
    elif method == "mtppo":
        model = MultiTaskPPO("MlpPolicy", env, task_set=tasks, **ppo_settings)
        model.learn(cell["budget"])
    else:
        model = PPO("MlpPolicy", env, **ppo_settings)
    train_s = time.perf_counter() - start
    steps = int(model.num_timesteps)
    env.close()
    start = time.perf_counter()
    score = metalearning_evaluation(
        metaworld_agent(model, seed=seed),
        bench,
        env_name,
        meta_batch_size=cell["meta_batch_size"],
        num_evals=cell["num_evals"],
        adaptation_steps=cell["adaptation_steps"],
        adaptation_episodes=cell["adaptation_episodes"],
        evaluation_episodes=cell["evaluation_episodes"],
        max_episode_steps=horizon,
    )
    return {
        **cell,
        "success": score.success_rate,
        "return": score.mean_return,
        "success_per_task": score.success_per_task,
        "train_steps": steps,
        "train_s": round(train_s, 1),
        "train_steps_per_s": round(steps / train_s, 1) if steps else None,
        "eval_s": round(time.perf_counter() - start, 1),
        "peak_rss_mb_after_envs": round(rss_envs),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def run_layout(cell: dict[str, Any]) -> dict[str, Any]:
    """One MAESN meta-iteration on ``env_name`` at a layout: env-steps/s and peak memory."""
    import torch as th

    th.set_num_threads(1)
    from maesn_sb3 import MAESN
    from maesn_sb3.metaworld import make_metaworld_env, metaworld_task_set

    tasks = metaworld_task_set(cell["benchmark"], cell["env_name"], seed=0)
    base = peak_rss_mb()
    start = time.perf_counter()
    env = make_metaworld_env(
        cell["benchmark"],
        cell["env_name"],
        cell["n_tasks"],
        cell["envs_per_task"],
        seed=0,
        tasks=tasks,
        latent_dim=2,
        max_episode_steps=cell["max_episode_steps"],
    )
    build_s = time.perf_counter() - start
    with_envs = peak_rss_mb()
    model = MAESN("MlpPolicy", env, task_set=tasks, seed=0)
    start = time.perf_counter()
    model.learn(1)  # one meta-iteration: pre- and post-update episodes of every sub-env
    learn_s = time.perf_counter() - start
    return {
        **cell,
        "build_s": round(build_s, 1),
        "env_steps": int(model.num_timesteps),
        "steps_per_s": round(model.num_timesteps / learn_s, 1),
        "rss_mb_before_envs": round(base),
        "peak_rss_mb_after_envs": round(with_envs),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def in_subprocess(kind: str, cell: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, __file__, f"--{kind}", json.dumps(cell)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {cell} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def report(out: Path) -> str:
    import numpy as np

    lines = []
    cells = load(out / "cells.jsonl")
    if cells:
        lines += [
            "| benchmark | env | method | seeds | meta-train env steps | success (Meta-World) | return |",
            "|---|---|---|---|---|---|---|",
        ]
        groups: dict[tuple, list] = {}
        for c in cells:
            groups.setdefault((c["benchmark"], c["env_name"] or "-", c["method"]), []).append(c)
        for (bench, env_name, method), rows in groups.items():
            success = np.array([r["success"] for r in rows])
            returns = np.array([r["return"] for r in rows])
            spread = f" ± {success.std(ddof=1):.2f}" if len(rows) > 1 else ""
            lines.append(
                f"| {bench} | {env_name} | {method} | {len(rows)} | {rows[0]['train_steps']:,} | "
                f"{success.mean():.2f}{spread} | {returns.mean():.1f} |"
            )
        first = cells[0]
        lines.append(
            f"\nEvaluation: meta_batch_size={first['meta_batch_size']}, num_evals={first['num_evals']}, "
            f"adaptation_steps={first['adaptation_steps']}, "
            f"adaptation_episodes={first['adaptation_episodes']}, "
            f"evaluation_episodes={first['evaluation_episodes']}, horizon {first['max_episode_steps']}; "
            f"layout {first['n_tasks']} tasks x {first['envs_per_task']} envs."
        )
        lines.append(
            "Published ML10 meta-test success (Meta-World paper): "
            + ", ".join(f"{k} {v:.1%}" for k, v in PUBLISHED_ML10.items())
        )
        lines += [
            "\n| cell | train env-steps/s | train s | eval s | peak RSS MB (envs built / end) |",
            "|---|---|---|---|---|",
        ]
        for c in cells:
            lines.append(
                f"| {c['benchmark']} {c['env_name'] or ''} {c['method']} seed {c['seed']} | "
                f"{c['train_steps_per_s']} | {c['train_s']} | {c['eval_s']} | "
                f"{c['peak_rss_mb_after_envs']} / {c['peak_rss_mb']} |"
            )
    layouts = load(out / "layouts.jsonl")
    if layouts:
        lines += [
            "\n| MAESN layout (tasks x envs) | env | env steps | env-steps/s | build s | "
            "RSS MB: start / envs / peak |",
            "|---|---|---|---|---|---|",
        ]
        for c in layouts:
            lines.append(
                f"| {c['n_tasks']} x {c['envs_per_task']} | {c['env_name']} | {c['env_steps']:,} | "
                f"{c['steps_per_s']} | {c['build_s']} | {c['rss_mb_before_envs']} / "
                f"{c['peak_rss_mb_after_envs']} / {c['peak_rss_mb']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/metaworld"))
    parser.add_argument("--budget", type=int, default=200_000, help="meta-training env steps per method")
    parser.add_argument("--n-tasks", type=int, default=10, help="task slots per meta-iteration / rollout")
    parser.add_argument("--envs-per-task", type=int, default=2)
    parser.add_argument("--max-episode-steps", type=int, default=500, help="Meta-World's horizon is 500")
    parser.add_argument("--meta-batch-size", type=int, default=10, help="Meta-World's test envs")
    parser.add_argument("--num-evals", type=int, default=1)
    parser.add_argument("--adaptation-steps", type=int, default=1)
    parser.add_argument("--adaptation-episodes", type=int, default=2)
    parser.add_argument("--evaluation-episodes", type=int, default=3)
    parser.add_argument("--skip-ml10", action="store_true")
    parser.add_argument("--only", default="", help="run only these comma-separated envs (e.g. reach-v3,ML10)")
    parser.add_argument("--layouts", default="", help="e.g. 10x2,10x10: MAESN speed and memory (push-v3)")
    parser.add_argument("--report", action="store_true", help="print the report of --out and stop")
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--layout", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell or args.layout:
        result = run_cell(json.loads(args.cell)) if args.cell else run_layout(json.loads(args.layout))
        print(json.dumps(result))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        print(f"load: {os.getloadavg()}", flush=True)
        for layout in filter(None, args.layouts.split(",")):
            n_tasks, envs = (int(x) for x in layout.split("x"))
            cell = {
                "benchmark": "ML1",
                "env_name": "push-v3",
                "n_tasks": n_tasks,
                "envs_per_task": envs,
                "max_episode_steps": args.max_episode_steps,
            }
            if cell not in [{k: c[k] for k in cell} for c in load(args.out / "layouts.jsonl")]:
                result = in_subprocess("layout", cell)
                with open(args.out / "layouts.jsonl", "a") as f:
                    f.write(json.dumps(result) + "\n")
                print(result, flush=True)
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
        plan = [
            (b, e, m, s)
            for b, e, s in CELLS
            if not (b == "ML10" and args.skip_ml10)
            if not args.only or (e or b) in args.only.split(",")
            for m in (ML10_METHODS if b == "ML10" else METHODS)
        ]
        for bench, env_name, method, seed in plan:
            cell = {"benchmark": bench, "env_name": env_name, "method": method, "seed": seed, **settings}
            done = [{k: c[k] for k in cell} for c in load(args.out / "cells.jsonl")]
            if cell in done:
                continue
            result = in_subprocess("cell", cell)
            with open(args.out / "cells.jsonl", "a") as f:
                f.write(json.dumps(result) + "\n")
            print(
                {k: result[k] for k in ("benchmark", "env_name", "method", "seed", "success", "train_s")},
                flush=True,
            )
        print(f"load: {os.getloadavg()}", flush=True)
    print(report(args.out))


if __name__ == "__main__":
    main()
