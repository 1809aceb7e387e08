"""Where a benchmark run stands: the cells done, in progress (checkpointed) and to do, and the time left."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maesn_sb3.benchmark.checkpoints import checkpointed_cells
from maesn_sb3.benchmark.config import METHODS, Config
from maesn_sb3.benchmark.results import cell_rows, read_csv

# speed.json's measurement that stands for a method with no measured cell yet
_SPEED_KEYS = {"maesn": "MAESN", "lsbaseline": "MAESN", "maml": "MAML"}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _same_family(output: Path, env_id: str) -> list[Path]:
    """The other run folders beside ``output`` (other budgets, other settings) of the task family."""
    if not output.parent.is_dir():
        return []
    return [
        folder
        for folder in sorted(output.parent.iterdir())
        if folder != output
        and (folder / "config.json").is_file()
        and json.loads((folder / "config.json").read_text()).get("env_id") == env_id
    ]


def _speeds(
    output: Path, env_id: str, methods: Sequence[str], checkpointed: dict[tuple[str, int], dict[str, Any]]
) -> dict[str, tuple[float | None, float]]:
    """Per method: meta-training env steps/s, from the folder's finished cells (``training.csv``), else its
    ``checkpointed`` cells, else the finished cells of the family's other folders beside it, else its
    ``speed.json`` (None: unknown); and the mean adaptation seconds of the finished cells."""
    here = read_csv(output / "training.csv")
    beside = [r for folder in _same_family(output, env_id) for r in read_csv(folder / "training.csv")]
    measured_json = output / "speed.json"
    side_by_side = json.loads(measured_json.read_text()) if measured_json.exists() else {}
    speeds: dict[str, tuple[float | None, float]] = {}
    for method in methods:
        finished = [[r for r in rows if r["method"] == method] for rows in (here, beside)]
        saved = [
            (p["num_timesteps"], p["train_seconds"]) for (m, _), p in checkpointed.items() if m == method
        ]
        rate = side_by_side.get(_SPEED_KEYS.get(method, ""))
        for pairs in (_steps_and_seconds(finished[0]), saved, _steps_and_seconds(finished[1])):
            seconds = sum(s for _, s in pairs)
            if seconds:
                rate = sum(n for n, _ in pairs) / seconds
                break
        cells = finished[0] + finished[1]
        adapt = sum(float(r["adapt_seconds"]) for r in cells) / len(cells) if cells else 0.0
        speeds[method] = (rate, adapt)
    return speeds


def _steps_and_seconds(rows: list[dict[str, Any]]) -> list[tuple[int, float]]:
    return [(int(r["train_steps"]), float(r["train_seconds"])) for r in rows]


def status(
    config: Config, output: Path, methods: Sequence[str], seeds: Sequence[int], workers: int = 1
) -> str:
    """A table of the cells (``methods`` x ``seeds``) of the run in ``output``: done, in progress (with the
    step and time of its newest checkpoint) or to do, and the time left from the measured speed."""
    output = Path(output)
    finished = cell_rows(read_csv(output / "adaptation.csv"), config)
    trained = {
        (r["method"], int(r["seed"])): int(r["train_steps"]) for r in read_csv(output / "training.csv")
    }
    methods = [m for m in METHODS if m in methods]
    checkpointed = checkpointed_cells(output)
    speeds = _speeds(output, config.env_id, methods, checkpointed)
    lines, counts, left, unknown = [], {"done": 0, "in progress": 0, "to do": 0}, 0.0, 0
    for seed in seeds:
        for method in methods:
            budget = config.budgets.get(method, 0)
            if (method, seed) in finished:
                counts["done"] += 1
                steps = trained.get((method, seed), budget)
                lines.append(f"  {'done':<12} {method:<10} seed {seed:<3} {steps:>12,} / {budget:,} steps")
                continue
            progress = checkpointed.get((method, seed))
            rate, adapt = speeds[method]
            steps = progress["num_timesteps"] if progress else 0
            if progress and progress["train_seconds"]:  # the cell's own speed so far
                rate = steps / progress["train_seconds"]
            state = "in progress" if progress else "to do"
            counts[state] += 1
            line = f"  {state:<12} {method:<10} seed {seed:<3} {steps:>12,} / {budget:,} steps"
            if progress:
                line += f" (checkpoint of {progress['written']})"
            if rate or not budget:
                seconds = max(budget - steps, 0) / rate if budget else 0.0
                seconds += adapt
                left += seconds
                line += f", about {_duration(seconds)} left"
            else:
                unknown += 1
                line += ", time unknown (no cell of this method measured yet)"
            lines.append(line)
    total = sum(counts.values())
    head = f"{output}: {counts['done']} done, {counts['in progress']} in progress, {counts['to do']} to do"
    lines.insert(0, f"{head} (of {total} cells)")
    if counts["in progress"] + counts["to do"]:
        parallel = min(workers, counts["in progress"] + counts["to do"])
        estimate = f"left: about {_duration(left)} of cell time"
        if parallel > 1:
            estimate += f", about {_duration(left / parallel)} with --workers {parallel}"
        if unknown:
            estimate += f", plus {unknown} cell(s) of unknown speed"
        lines.append(estimate + " (from the meta-training speed measured in this run or the family's others)")
    return "\n".join(lines)
