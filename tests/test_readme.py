"""The README's Python examples run as written, and ``make demo``'s module runs end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from maesn_sb3 import demo

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme_blocks() -> list[str]:
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def test_readme_has_python_examples() -> None:
    assert len(readme_blocks()) >= 1


@pytest.mark.parametrize("index", range(len(readme_blocks())))
def test_readme_block_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # whatever a block writes lands in a temporary folder
    torch.set_num_threads(1)
    code = compile(readme_blocks()[index], f"README.md python block {index}", "exec")
    exec(code, {"__name__": f"readme_block_{index}"})


def test_readme_names_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--output-dir",
        str(tmp_path / "out"),
        "--timesteps",
        "8000",
        "--test-tasks",
        "2",
        "--adapt-iterations",
        "1",
        "--no-progress",
    ]
    assert demo.main(args) == 0
    printed = capsys.readouterr().out
    assert "meta-trained on 100 goals" in printed and "success (mean z)" in printed
    rows = [line.split() for line in printed.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["0", "1"]  # one row per adaptation iteration
    png = tmp_path / "out" / "maesn_point_nav.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "maesn_point_nav.zip").exists()


def test_demo_rejects_bad_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        demo.main(["--test-tasks", "0"])
    assert "--test-tasks must be >= 1, got 0" in capsys.readouterr().err
