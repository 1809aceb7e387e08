"""MAESN from one benchmark folder against methods from others, on the same held-out tasks.

A family's methods can live in folders of different settings: the outer-step settings touch MAESN,
the latent-space baseline and MAML only, so RL², multi-task PPO and PPO from scratch keep their
rows in the family's first folder, and a MAESN setting may be run without rerunning MAML. This prints
the IQM success at the last adaptation iteration (95 % stratified-bootstrap CI) of each
``FOLDER:METHOD`` and P(MAESN > method) with its CI, as the benchmark's report does within one
folder, and the pairs of runs behind P: the fractions MAESN wins, ties and loses (P = wins + ties / 2).
The folders must share the family, the held-out tasks and the adaptation protocol (checked).
``FOLDER+FOLDER...:METHOD`` pools the runs of several folders as one method's (e.g. seeds 0-4 in one
folder and 5-9 in another); a seed found in two of them is refused, as runs of one seed share their
initial weights and task draws and are not independent samples.

    python benchmarks/compare_folders.py \\
        benchmarks/results/paper/WheeledNav-v0_ppo_latentlr0.01:maesn \\
        benchmarks/results/paper/WheeledNav-v0_ppo_latentlr0.01:lsbaseline \\
        benchmarks/results/paper/WheeledNav-v0_ppo:maml \\
        benchmarks/results/paper/WheeledNav-v0:rl2,mtppo,scratch
    python benchmarks/compare_folders.py A/scale2+B/scale2:maesn A/scale1+B/scale1:lsbaseline
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from maesn_sb3.benchmark.config import Config
from maesn_sb3.benchmark.report import label
from maesn_sb3.benchmark.results import read_csv
from maesn_sb3.benchmark.stats import (
    bootstrap_ci,
    improvement_ci,
    improvement_outcomes,
    iqm,
    score_matrix,
)

#: the settings two folders must share for their rows to be compared
PROTOCOL = ("env_id", "n_train_tasks", "n_test_tasks", "task_seed", "adapt_iterations", "adapt_episodes")


def parse(spec: str) -> tuple[list[Path], list[str]]:
    """``FOLDER[+FOLDER...]:METHOD[,METHOD...]`` as the folders and their methods."""
    folders, _, methods = spec.rpartition(":")
    if not folders or not methods or "" in folders.split("+"):
        raise argparse.ArgumentTypeError(f"expected FOLDER[+FOLDER...]:METHOD[,METHOD...], got {spec!r}")
    return [Path(folder) for folder in folders.split("+")], methods.split(",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "specs", nargs="+", type=parse, help="FOLDER[+FOLDER...]:METHOD[,METHOD...]; MAESN's first"
    )
    args = parser.parse_args()
    protocol, scores = None, {}
    for folders, methods in args.specs:
        rows = []
        for folder in folders:
            config = json.loads((folder / "config.json").read_text())
            shared = {key: config.get(key) for key in PROTOCOL}
            if protocol is not None and shared != protocol:
                raise SystemExit(f"{folder} was run with another protocol: {shared} against {protocol}")
            protocol = shared
            rows.append((folder, read_csv(folder / "adaptation.csv")))
        for method in methods:
            matrices, seeds = [], set()
            for folder, folder_rows in rows:
                ran = {int(r["seed"]) for r in folder_rows if r["method"] == method}
                if seeds & ran:
                    raise SystemExit(
                        f"{folder} holds seeds {sorted(seeds & ran)} of {method!r}, as another pooled "
                        "folder does: runs of one seed are not independent"
                    )
                seeds |= ran
                matrix = score_matrix(folder_rows, method, protocol["adapt_iterations"], "success")
                if matrix.size == 0:
                    raise SystemExit(f"{folder} has no finished cell of {method!r}")
                matrices.append(matrix)
            name = folders[0].name
            if len(folders) > 1:  # each by its parent too (scale folders share their names)
                name = "+".join(f"{folder.parent.name}/{folder.name}" for folder in folders)
            scores[f"{label(method, Config(**config))} ({name})"] = np.concatenate(matrices)
    names = list(scores)
    if not any(name.startswith("MAESN (") for name in names[:1]):
        raise SystemExit("the first FOLDER:METHOD must be MAESN's (maesn)")
    maesn = scores[names[0]]
    print(f"{protocol['env_id']}: held-out success at iteration {protocol['adapt_iterations']}\n")
    print(
        "| method (folder) | seeds | IQM [95 % CI] | P(MAESN > method) [95 % CI] "
        "| MAESN wins / ties / loses |\n|---|---|---|---|---|"
    )
    for name in names:
        low, high = bootstrap_ci(scores[name])
        row = f"| {name} | {scores[name].shape[0]} | {iqm(scores[name]):.2f} [{low:.2f}, {high:.2f}] |"
        if name == names[0]:
            print(row + " | |")
            continue
        p_low, p_high = improvement_ci(maesn, scores[name])
        wins, ties, losses = improvement_outcomes(maesn, scores[name])
        outcomes = f"{wins:.2f} / {ties:.2f} / {losses:.2f}"
        print(row + f" {wins + ties / 2:.2f} [{p_low:.2f}, {p_high:.2f}] | {outcomes} |")


if __name__ == "__main__":
    main()
