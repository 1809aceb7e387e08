"""``maesn-sb3 plot``: a run's exploration and adaptation figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from maesn_sb3 import runs
from maesn_sb3.cli._common import (
    CLIError,
    _Bar,
    _check_writable,
    _show_progress,
)
from maesn_sb3.runs import (
    ADAPT_FILE,
    CONFIG_FILE,
    load_adaptation,
)


def cmd_plot(args: argparse.Namespace) -> int:
    try:
        from maesn_sb3 import plotting
    except ImportError as error:
        raise CLIError(str(error)) from error
    folder, model_path, config = runs.find_run(args.run)
    output = Path(args.output or folder)
    _check_writable(output / "plot.png", "--output" if args.output else "the run folder")
    output.mkdir(parents=True, exist_ok=True)
    kinds = args.kind or ["learning", "adaptation", "exploration"]
    explicit = bool(args.kind)
    written = []
    bar = _Bar(len(kinds), "plotting", _show_progress(args))
    for kind in kinds:
        if kind == "learning":
            progress = folder / "logs" / "progress.csv"
            if progress.is_file():
                fig = plotting.plot_learning_curve(progress)
            elif explicit:
                raise CLIError(f"no training log at {str(progress)!r}")
            else:
                fig = None
        elif kind == "adaptation":
            path = folder / ADAPT_FILE
            if path.is_file():
                fig = plotting.plot_adaptation_curve(load_adaptation(path), x=args.x)
            elif explicit:
                raise CLIError(f"no adaptation curve at {str(path)!r}: run `maesn-sb3 adapt {folder}` first")
            else:
                fig = None
        else:
            model = runs.load_model(model_path, config)
            env_id = args.env or config.get("env")
            if env_id is None:
                raise CLIError(f"no {CONFIG_FILE} next to {str(model_path)!r}: pass the env id with --env")
            runs.check_env_id(env_id)
            tasks = runs.held_out_tasks(model, env_id, "test", None, args.seed)
            if not 0 <= args.task < len(tasks):
                raise CLIError(f"--task must lie in [0, {len(tasks)}), got {args.task}")
            adaptation = load_adaptation(folder / ADAPT_FILE) if (folder / ADAPT_FILE).is_file() else None
            if adaptation is not None and args.task >= adaptation.latent_means.shape[1]:
                adaptation = None
            try:
                fig = plotting.plot_exploration(
                    model,
                    env_id,
                    task=tasks[args.task],
                    n_latents=args.n_latents,
                    adaptation=adaptation,
                    task_slot=args.task,
                    seed=args.seed,
                    env_kwargs=config.get("env_kwargs"),
                )
            except ValueError as error:
                raise CLIError(str(error)) from error
        bar.update()
        if fig is not None:
            path = output / f"{kind}.png"
            fig.savefig(path, dpi=args.dpi)
            written.append(str(path))
    bar.close()
    if not written:
        raise CLIError(f"nothing to plot in {str(folder)!r}")
    print("wrote " + ", ".join(written))
    return 0
