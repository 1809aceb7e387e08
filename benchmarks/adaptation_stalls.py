"""Where adaptation stalls: held-out tasks whose first batch holds no success.

With the sparse reward, a task none of whose episodes in a batch succeeds gives every episode the
same return, so its advantages, centred per task, are all zero and the latent (or policy) step on it
is zero: the task can only recover if a later batch, sampled afresh, happens to hold a success. For
each method of a benchmark folder's ``adaptation.csv`` this prints the fraction of (seed, task) pairs
with no success in the first batch, the success at the last iteration of those and of the others, and
the fraction still at zero success after each iteration.

    python benchmarks/adaptation_stalls.py benchmarks/results/paper/PointNav2D-v0_quick_ppo
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np


def stalls(path: Path) -> dict[str, dict[str, object]]:
    """Per method: the statistics above, from ``path/adaptation.csv``."""
    success: dict[str, dict[tuple[str, str], dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    with open(path / "adaptation.csv", newline="") as f:
        for row in csv.DictReader(f):
            success[row["method"]][row["seed"], row["task"]][int(row["iteration"])] = float(row["success"])
    out = {}
    for method, cells in success.items():
        table = np.array(
            [[cell[k] for k in sorted(cell)] for cell in cells.values()]
        )  # (seed x task, iteration)
        none_first = table[:, 0] == 0
        last = table[:, -1]
        out[method] = {
            "no success in the first batch": round(float(none_first.mean()), 2),
            "last success, those": round(float(last[none_first].mean()), 2) if none_first.any() else None,
            "last success, the others": round(float(last[~none_first].mean()), 2),
            "still at zero after each iteration": (table == 0).mean(axis=0).round(2).tolist(),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="benchmark folders with an adaptation.csv")
    args = parser.parse_args()
    for folder in args.folders:
        print(folder)
        for method, figures in stalls(folder).items():
            print(f"  {method}: " + "; ".join(f"{name} {value}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
