"""Meta-test step sizes: held-out success with every adaptation step scaled, from the same trained models.

At meta-test, MAESN steps its latent with the step sizes meta-trained for one inner step, on the
reference's schedule (1, 1, 1/2, 1/4, ... times them); the latent-space baseline with ``adapt_lr``
(1, 1, 1, 1/2, ...); MAML with ``adapt_lr`` (its ``inner_lr``; then half of it). This meta-trains
each (method, seed) once with a benchmark folder's settings (the same run as that folder's cell),
saves the model under ``OUT/models/`` (or loads it from there), and adapts it on the folder's
held-out tasks with every step multiplied by each of ``--scales``: MAESN's learned step sizes (means
and log-stds), the baseline's and MAML's ``adapt_lr``. Scale 1 is the folder's own cell (the same
envs, tasks and seeds: :mod:`maesn_sb3.benchmark.cells`). The rows go to ``OUT/scale<s>/adaptation.csv``
(with the folder's ``config.json``, and ``versions.csv``: the packages that adapted), so that
``compare_folders.py`` and ``adaptation.py --report-only`` read them as any benchmark folder.

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


def scaled(model: Any, scale: float) -> Any:
    """``model`` with every adaptation step multiplied by ``scale``."""
    if isinstance(model, MAML):
        model.adapt_lr = scale * (model.inner_lr if model.adapt_lr is None else model.adapt_lr)
    elif model.adapt_lr is not None:  # the latent-space baseline: a fixed step
        model.adapt_lr *= scale
    else:  # MAESN: the learned step sizes
        with th.no_grad():
            model.latents.step_size_mean.mul_(scale)
            model.latents.step_size_log_std.mul_(scale)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a benchmark folder (its config.json)")
    parser.add_argument("--methods", nargs="+", choices=META_LEARNERS, default=["maesn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--scales", nargs="+", type=float, default=[1.0, 2.0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if any(scale <= 0 for scale in args.scales):
        parser.error(f"--scales must be positive, got {args.scales}")
    th.set_num_threads(1)  # as the benchmark's cells
    config = Config(**json.loads((args.folder / "config.json").read_text()))
    tasks = cell_tasks(config)

    (args.out / "models").mkdir(parents=True, exist_ok=True)
    folders = {scale: args.out / f"scale{scale:g}" for scale in args.scales}
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
                adapt = {"evaluate": False} if method != "maml" else {}
                result = scaled(algorithm.load(path), scale).adapt(
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
                    f"{method} seed {seed}, scale {scale:g}: success at iteration {config.adapt_iterations} "
                    f"{result.success[-1].mean():.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
