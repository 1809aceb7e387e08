"""``maesn-sb3 evaluate``: a run's model on its train or held-out tasks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from maesn_sb3.cli._common import (
    CLIError,
    _Bar,
    _check_writable,
    _model_on_tasks,
    _show_progress,
)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from maesn_sb3.evaluation import evaluate_latents

    if args.output:
        _check_writable(Path(args.output), "--output")
    _, model_path, model, env_id, _, tasks, env = _model_on_tasks(args, args.episodes)

    if args.latent == "trained" and args.split != "train":
        raise CLIError("--latent trained needs --split train (held-out tasks have no trained latent)")
    bar = _Bar(len(tasks) * args.episodes, "evaluating", _show_progress(args), unit="episode")
    finished = np.zeros(env.num_envs, dtype=bool)

    def on_step(step: dict[str, Any]) -> bool:
        bar.update(int(np.sum(step["dones"] & ~finished)))
        finished[:] |= step["dones"]
        return True

    returns, success = evaluate_latents(
        model, env, args.latent, args.deterministic, seed=args.seed, on_step=on_step
    )
    bar.close()
    env.close()
    print(
        f"{model_path} on {len(tasks)} {args.split} task(s) of {env_id}, {args.episodes} episode(s) each, "
        f"latent from {'the prior' if args.latent == 'prior' else 'the trained task latents'}"
        f"{', mean actions and latents' if args.deterministic else ''}:"
    )
    print(f"{'task':>5} {'return':>9} {'success':>8}")
    for k in range(len(tasks)):
        print(f"{k:>5} {returns[k]:>9.3f} {success[k]:>8.1%}")
    print(f"{'mean':>5} {returns.mean():>9.3f} {success.mean():>8.1%}")
    if args.output:
        Path(args.output).write_text(
            json.dumps({"returns": returns.tolist(), "success": success.tolist()}), encoding="utf-8"
        )
    return 0
