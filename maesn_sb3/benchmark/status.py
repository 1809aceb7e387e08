"""Where a benchmark run stands: the cells done, in progress (checkpointed) and to do, and the time left."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maesn_sb3.benchmark.cells import METHODS, Config
from maesn_sb3.benchmark.checkpoints import checkpointed_cells
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


def measured_speeds(
    output: Path, env_id: str, methods: Sequence[str], checkpointed: dict[tuple[str, int], dict[str, Any]]
) -> dict[str, tuple[float | None, float]]:
    """Per method: meta-training env steps/s and adaptation seconds per cell, from the folder's finished
    cells (``training.csv``), else its ``checkpointed`` cells, else the finished cells of the family's
    other folders beside it, else its ``speed.json`` (steps/s None: unknown)."""
    here = read_csv(output / "training.csv")
    beside = [r for folder in _same_family(output, env_id) for r in read_csv(folder / "training.csv")]
    measured_json = output / "speed.json"
    side_by_side = json.loads(measured_json.read_text()) if measured_json.exists() else {}
    speeds: dict[str, tuple[float | None, float]] = {}
    for method in methods:
        saved = [p for (m, _), p in checkpointed.items() if m == method]
        sources = (
            [(int(r["train_steps"]), float(r["train_seconds"]), r) for r in here if r["method"] == method],
            [(p["num_timesteps"], p["train_seconds"], None) for p in saved],
            [(int(r["train_steps"]), float(r["train_seconds"]), r) for r in beside if r["method"] == method],
        )
        cells = [r for source in (sources[0], sources[2]) for _, _, r in source]
        adapt = sum(float(r["adapt_seconds"]) for r in cells) / len(cells) if cells else 0.0
        rate = side_by_side.get(_SPEED_KEYS.get(method, ""))
        for source in sources:
            seconds = sum(s for _, s, _ in source)
            if seconds:
                rate = sum(n for n, _, _ in source) / seconds
                break
        speeds[method] = (rate, adapt)
    return speeds


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
    speeds = measured_speeds(output, config.env_id, methods, checkpointed)
    lines, counts, left, unknown = [], {"done": 0, "in progress": 0, "to do": 0}, 0.0, []
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
                unknown.append(f"{method} seed {seed}")
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
            estimate += f", plus {len(unknown)} cell(s) of unknown speed"
        lines.append(estimate + " (from the meta-training speed measured in this run or the family's others)")
    return "\n".join(lines)
