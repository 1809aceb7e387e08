"""Every example runs end to end with a tiny budget (their defaults take minutes; see each docstring)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = {
    "quickstart.py": ["--timesteps", "1000", "--tasks-per-iteration", "2", "--episodes", "4",
                      "--test-tasks", "2", "--adapt-iterations", "1"],
    "custom_env.py": ["--timesteps", "4000", "--episodes", "4", "--adapt-iterations", "1"],
    "maesn_wheeled.py": ["--timesteps", "800", "--tasks-per-iteration", "2", "--episodes", "2",
                         "--test-tasks", "1", "--adapt-iterations", "1", "--output-dir", "out"],
    "compare_sb3.py": ["--timesteps", "1000", "--tasks-per-iteration", "2", "--episodes", "4",
                       "--test-tasks", "2", "--adapt-iterations", "1"],
}  # fmt: skip
EXPECT = {
    "quickstart.py": ["saved and loaded: 100 training tasks", "held-out goal 0 with its adapted mean latent"],
    "custom_env.py": ["meta-trained latent means", "iteration 1: success"],
    "maesn_wheeled.py": ["exploration.png and adaptation.png written"],
    "compare_sb3.py": ["MAESN    multi-task PPO  PPO from scratch"],
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_example_runs(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [name, *TINY[name]])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    out = capsys.readouterr().out
    for text in EXPECT[name]:
        assert text in out
    if name == "maesn_wheeled.py":
        for file in ("maesn_wheeled.zip", "exploration.png", "adaptation.png"):
            assert (tmp_path / "out" / file).stat().st_size > 0


def test_every_example_of_this_suite_is_listed() -> None:
    assert set(TINY) <= {path.name for path in EXAMPLES.glob("*.py")}


@pytest.mark.parametrize("name", sorted(TINY))
def test_example_help_shows_the_defaults_once(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit):
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    options = capsys.readouterr().out.split("\n  -")[1:]
    assert any("(default: " in option for option in options)
    assert all(option.count("(default") <= 1 for option in options)
