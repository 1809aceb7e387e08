"""The documented benchmark scripts run end to end with both outer steps (tiny budgets)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(BENCHMARKS / name), run_name="__main__")


@pytest.mark.parametrize("outer_update", ["ppo", "trpo"])
def test_maesn_learning_runs(
    outer_update: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    tiny = "--timesteps 4000 --n-tasks 2 --episodes 4 --test-tasks 2 --adapt-iterations 2 --adapt-episodes 2"
    args = [*tiny.split(), "--threads", "1", "--outer-update", outer_update, "--step-scale", "1"]
    run_script("maesn_learning.py", [*args, "--output", str(tmp_path)], monkeypatch)
    assert "latent share of the outer step" in capsys.readouterr().out
    (result,) = tmp_path.glob("maesn_*.npz")
    assert np.load(result)["success"].shape[0] == 3  # before adapting, then after each of 2 iterations


def test_skills_maesn_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = "--timesteps 4000 --diayn-timesteps 1000 --n-tasks 2 --episodes 2 --test-tasks 2"
    args = [*tiny.split(), "--adapt-iterations", "1", "--adapt-episodes", "2", "--seeds", "0"]
    run_script("skills_maesn.py", [*args, "--output", str(tmp_path / "out.json")], monkeypatch)
    runs = json.loads((tmp_path / "out.json").read_text())["seed0"]
    assert set(runs) == {"maesn", "skills", "mixed"}
    # every variant adapts on the same env steps, counted by the sub-envs' Monitors
    assert len({tuple(run["adapt_env_steps"]) for run in runs.values()}) == 1
    assert all(len(run["success"]) == 2 for run in runs.values())
