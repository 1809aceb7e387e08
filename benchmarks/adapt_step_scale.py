"""Meta-test step sizes: held-out success with every adaptation step scaled, from the same trained models.

At meta-test, MAESN steps its latent with the step sizes meta-trained for one inner step, on the
reference's schedule (1, 1, 1/2, 1/4, ... times them); the latent-space baseline with ``adapt_lr``
(1, 1, 1, 1/2, ...); MAML with ``adapt_lr`` (its ``inner_lr``; then half of it). This meta-trains
each (method, seed) once with a benchmark folder's settings (the same run as that folder's cell),
saves the model under ``OUT/models/`` (or loads it from there), and adapts it on the folder's
held-out tasks with every step multiplied by each of ``--scales``: MAESN's learned step sizes (means
and log-stds), the baseline's and MAML's ``adapt_lr``; a scale ``S:L`` multiplies the latent's mean
steps by S and its log-std steps by L (MAESN and the baseline; folder ``scale<S>_logstd<L>``). Scale 1
is the folder's own cell (the same envs, tasks and seeds: :mod:`maesn_sb3.benchmark.cells`). The rows
go to ``OUT/scale<S>/adaptation.csv`` (with the folder's ``config.json``, and ``versions.csv``: the
packages that adapted), so that ``compare_folders.py`` and ``adaptation.py --report-only`` read them
as any benchmark folder.

    python benchmarks/adapt_step_scale.py benchmarks/results/paper/WheeledNav-v0_2x \\
        --methods maesn maml --seeds 0 1 --scales 1 2 --out /tmp/wheeled_scales
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import torch as th

from maesn_sb3 import MAML
from maesn_sb3.benchmark.cells import adaptation_rows, cell_env, cell_tasks
from maesn_sb3.benchmark.config import FIELDS, META_LEARNERS, VERSION_FIELDS, Config, meta_learner
from maesn_sb3.benchmark.results import append_csv, cell_rows, package_versions, read_csv


def scaled(model: Any, scale: float, log_std_scale: float | None = None) -> Any:
    """``model`` with every adaptation step multiplied by ``scale``; the latent's log-std steps by
    ``log_std_scale`` instead where given (MAESN and the latent-space baseline)."""
    log_std_scale = scale if log_std_scale is None else log_std_scale
    if isinstance(model, MAML):
        if log_std_scale != scale:
            raise ValueError(
                f"MAML has no latent log-std step: log_std_scale must be {scale}, got {log_std_scale}"
            )
        model.adapt_lr = scale * (model.inner_lr if model.adapt_lr is None else model.adapt_lr)
    elif model.adapt_lr is not None and log_std_scale == scale:  # the latent-space baseline: a fixed step
        model.adapt_lr *= scale
    else:  # MAESN's learned step sizes, or the baseline's fixed one written as two
        with th.no_grad():
            if model.adapt_lr is not None:
                model.latents.step_size_mean.fill_(model.adapt_lr)
                model.latents.step_size_log_std.fill_(model.adapt_lr)
                model.adapt_lr = None
            model.latents.step_size_mean.mul_(scale)
            model.latents.step_size_log_std.mul_(log_std_scale)
    return model


def parse_scale(text: str) -> tuple[float, float]:
    """``S`` (every step times S) or ``S:L`` (the latent's mean steps times S, its log-std steps times L)."""
    try:
        scales = tuple(float(part) for part in text.split(":"))
    except ValueError:
        scales = ()
    if len(scales) not in (1, 2) or min(scales) <= 0:
        raise argparse.ArgumentTypeError(f"a scale is S or S:L with positive numbers, got {text!r}")
    return scales[0], scales[-1]


def folder_name(scale: tuple[float, float]) -> str:
    """``scale<S>``, or ``scale<S>_logstd<L>`` where the log-std steps are scaled otherwise."""
    mean, log_std = scale
    return f"scale{mean:g}" if mean == log_std else f"scale{mean:g}_logstd{log_std:g}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a benchmark folder (its config.json)")
    parser.add_argument("--methods", nargs="+", choices=META_LEARNERS, default=["maesn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--scales",
        nargs="+",
        type=parse_scale,
        default=[(1.0, 1.0), (2.0, 2.0)],
        help="S or S:L (see scaled)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if "maml" in args.methods and any(mean != log_std for mean, log_std in args.scales):
        parser.error("--scales S:L scales a latent's log-std steps: MAML has none (give it S alone)")
    th.set_num_threads(1)  # as the benchmark's cells
    config = Config(**json.loads((args.folder / "config.json").read_text()))
    tasks = cell_tasks(config)

    (args.out / "models").mkdir(parents=True, exist_ok=True)
    folders = {scale: args.out / folder_name(scale) for scale in args.scales}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
        shutil.copy(args.folder / "config.json", folder / "config.json")
    for method in args.methods:
        algorithm, kwargs = meta_learner(config, method)
        for seed in args.seeds:
            path = args.out / "models" / f"{method}_seed{seed}.zip"
            if not path.exists():
                env = cell_env(config, method, seed, tasks, train=True)
                model = algorithm("MlpPolicy", env, task_set=tasks, seed=seed, **kwargs)
                model.learn(config.budgets[method]).save(path)
            for scale, folder in folders.items():
                csv_path = folder / "adaptation.csv"
                if (method, seed) in cell_rows(read_csv(csv_path), config):  # a rerun skips it
                    continue
                adapt = {} if method == "maml" else {"evaluate": False, "step_scale": config.adapt_step_scale}
                result = scaled(algorithm.load(path), *scale).adapt(
                    cell_env(config, method, seed, tasks, train=False),
                    n_iterations=config.adapt_iterations,
                    episodes_per_iteration=config.adapt_episodes,
                    seed=seed,
                    **adapt,
                )
                versions = {"method": method, "seed": seed, **package_versions()}
                append_csv(folder / "versions.csv", [versions], VERSION_FIELDS)
                append_csv(csv_path, adaptation_rows(config, method, seed, result), FIELDS)
                print(
                    f"{method} seed {seed}, {folder.name}: success at iteration {config.adapt_iterations} "
                    f"{result.success[-1].mean():.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
