"""The documented benchmark scripts run end to end (tiny budgets; both outer steps where they take either)."""

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
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as `python benchmarks/<name>` has it (their imports)
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


def test_adaptation_stalls_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    folder = BENCHMARKS / "results" / "paper" / "WheeledNav-v0_2x"  # committed, only read
    run_script("adaptation_stalls.py", [str(folder)], monkeypatch)
    out = capsys.readouterr().out
    assert all(f"  {method}: no success in the first batch" in out for method in ("maesn", "maml"))


def test_checkpoint_overhead_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)  # its temporary checkpoints go there
    monkeypatch.chdir(tmp_path)
    args = ["--env", "maesn_sb3/PointNav2D-v0", "--methods", "maesn", "--iterations", "1", "--writes", "1"]
    run_script("checkpoint_overhead.py", args, monkeypatch)
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("maesn ")]
    assert row.endswith("True")  # the resumed model ends bit-identical
    assert not any((tmp_path / "benchmarks" / "results").iterdir())


def test_fisher_speed_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    args = "--n-tasks 2 --episodes 2 --warmup 1 --repeats 1 --fisher-threads 2".split()
    with pytest.warns(UserWarning, match="runs whole meta-iterations"):
        run_script("fisher_speed.py", args, monkeypatch)
    out = capsys.readouterr().out
    differences = [float(line.split()[-1]) for line in out.splitlines() if "relative difference" in line]
    assert len(differences) == 2 and max(differences) < 1e-4  # the forms give the same product
    assert "trpo_step on 2 Fisher threads" in out


@pytest.mark.parametrize("has_outer_kwargs", [True, False])  # False: a folder older than the setting
def test_latent_spread_runs(
    has_outer_kwargs: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    saved = BENCHMARKS / "results" / "paper" / "PointNav2D-v0_quick_ppo_latentlr0.01" / "config.json"
    config = json.loads(saved.read_text())
    tiny = {"n_train_tasks": 4, "n_test_tasks": 2, "n_tasks": 2, "envs_per_task": 2, "adapt_episodes": 2}
    config.update(tiny, adapt_iterations=1, budgets={"maesn": 1000})
    if not has_outer_kwargs:
        del config["outer_kwargs"], config["outer_update"]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    run_script("latent_spread.py", ["--folder", str(folder), "--kl-coefs", "0.1", "0.02"], monkeypatch)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0.")]
    assert [row.split()[1] for row in rows] == ["0.1", "0.02"]
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["config.json", "folder"]  # wrote nothing


@pytest.fixture
def outer_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The outer step of every MAESN built in this process, in order."""
    from maesn_sb3 import MAESN

    steps: list[str] = []
    init = MAESN.__init__

    def recording_init(self: MAESN, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)
        steps.append(self.outer_update)

    monkeypatch.setattr(MAESN, "__init__", recording_init)
    return steps


def test_maesn_memory_runs(
    outer_steps: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    run_script("maesn_memory.py", ["--n-tasks", "2", "--episodes", "1"], monkeypatch)  # in a subprocess
    (row,) = [
        line.split() for line in capsys.readouterr().out.splitlines() if line.split()[:2] == ["1", "400"]
    ]
    assert float(row[3]) >= float(row[2]) > 0  # peak and after-setup MB
    with pytest.warns(UserWarning, match="runs whole meta-iterations"):  # learn(1): one meta-iteration
        run_script("maesn_memory.py", ["--n-tasks", "2", "--child", "1"], monkeypatch)  # the child, here
    assert json.loads(capsys.readouterr().out)["steps_per_phase"] == 400
    assert outer_steps == ["trpo"]  # the step of the documented figures


def test_maesn_speed_runs(
    outer_steps: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    tiny = "--n-tasks 2 --episodes 2 --meta-iterations 1 --fisher-subsample 0.5 --outer-update ppo"
    run_script("maesn_speed.py", tiny.split(), monkeypatch)
    # dummy, native and the Fisher subsample with TRPO, then the proximal step: the ratio's two sides
    assert outer_steps == ["trpo", "trpo", "trpo", "ppo"]
    assert "time per step: proximal outer step / TRPO" in capsys.readouterr().out


def test_mujoco_throughput_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo's MUJOCO_LOG.TXT
    run_script(
        "mujoco_throughput.py", ["--steps", "20", "--rounds", "1", "--output", str(tmp_path)], monkeypatch
    )
    report = json.loads((tmp_path / "mujoco_throughput.json").read_text())
    assert {"maesn_sb3/AntGoal-v0", "Ant-v5"} <= set(report)


@pytest.mark.parametrize("sections", [["latent", "vec", "mujoco"], ["native", "layers"], ["memory"]])
def test_throughput_runs(sections: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo's MUJOCO_LOG.TXT
    tiny = "--repeats 1 --scale 0.01 --n-tasks 2 --envs-per-task 2 --native-envs 20".split()
    output = tmp_path / "throughput.json"
    run_script("throughput.py", [*tiny, "--sections", *sections, "--output", str(output)], monkeypatch)
    assert set(json.loads(output.read_text())) == {"argv", *sections}


def test_compare_folders_pools_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    config = (BENCHMARKS / "results" / "paper" / "WheeledNav-v0_2x" / "config.json").read_text()
    header = "method,seed,task,iteration,env_steps,return,success\n"
    for name, seeds in (("a", (0, 1)), ("b", (2, 3))):
        folder = tmp_path / name / "scale2"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(config)
        rows = [
            f"{method},{seed},{task},5,1000,0.0,{success}\n"
            for method, success in (("maesn", 1.0), ("lsbaseline", 0.0))
            for seed in seeds
            for task in range(10)
        ]
        (folder / "adaptation.csv").write_text(header + "".join(rows))
    a, b = tmp_path / "a" / "scale2", tmp_path / "b" / "scale2"
    specs = [f"{a}+{b}:maesn", f"{a}+{b}:lsbaseline", f"{a}:lsbaseline"]
    run_script("compare_folders.py", specs, monkeypatch)
    table = capsys.readouterr().out
    assert "| MAESN (a/scale2+b/scale2) | 4 | 1.00 [1.00, 1.00] | |" in table
    assert "| latent-space baseline (a/scale2+b/scale2) | 4 | 0.00 [0.00, 0.00] | 1.00" in table
    assert "| latent-space baseline (scale2) | 2 |" in table  # one folder: its own name, as before
    with pytest.raises(SystemExit, match=r"seeds \[0, 1\] of 'maesn'.*not independent"):
        run_script("compare_folders.py", [f"{a}+{a}:maesn", f"{b}:lsbaseline"], monkeypatch)
