"""Benchmark cells that checkpoint and resume mid-training (issue 26)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maesn_sb3.benchmark import Config, main, run_cell
from maesn_sb3.benchmark.checkpoints import (
    CHECKPOINTED,
    CellInterrupted,
    checkpointed_cells,
    meta_train,
    read_checkpoint,
    stop_at_once,
    stop_on_sigterm,
    write_checkpoint,
)
from maesn_sb3.benchmark.pool import lower_priority

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "maesn_sb3/PointNav2D-v0"
# one meta-iteration: 2 tasks x 2 episodes x 50 steps x 2 phases = 400 env steps
SMALL = {"n_train_tasks": 8, "n_test_tasks": 2, "n_tasks": 2, "envs_per_task": 2, "adapt_iterations": 1}
CONFIG = Config(
    env_id=ENV_ID,
    adapt_episodes=2,
    vectorization="native",
    budgets=dict.fromkeys(CHECKPOINTED, 2000),
    **SMALL,
)


def files(output):
    return sorted(p.name for p in (output / "checkpoints").glob("*.ckpt"))


# -- in one process: resume from the newest checkpoint, or the one before a damaged one ------------------
@pytest.mark.parametrize("outer_update", ["trpo", "ppo"])
def test_meta_training_one_meta_iteration_at_a_time_is_the_same_run_as_one_learn_call(outer_update):
    import torch as th

    from maesn_sb3 import MAESN, make_meta_vec_env

    def new_model():
        env = make_meta_vec_env(ENV_ID, n_tasks=2, envs_per_task=2, seed=0, latent_dim=2)
        return MAESN("MlpPolicy", env, n_train_tasks=4, seed=0, outer_update=outer_update)

    whole = new_model().learn(2000)
    stepwise, before = meta_train(new_model, None, 2000)
    assert before == 0.0 and stepwise.num_timesteps == whole.num_timesteps == 2000
    for name, tensor in whole.policy.state_dict().items():
        assert th.equal(stepwise.policy.state_dict()[name], tensor), name
    assert th.equal(stepwise.latents.means, whole.latents.means)


@pytest.mark.parametrize(
    ("method", "outer", "outer_kwargs"),
    [
        *[
            pytest.param(method, outer, {}, id=f"{method}-{outer}")
            for method in CHECKPOINTED
            for outer in ("trpo", "ppo")
        ],
        # running observation statistics travel too
        pytest.param("maesn", "ppo", {"normalize_observations": True}, id="maesn-ppo-normalized"),
    ],
)
def test_a_resumed_cell_returns_the_rows_of_an_uninterrupted_one(method, outer, outer_kwargs, tmp_path):
    config = dataclasses.replace(CONFIG, outer_update=outer, outer_kwargs=outer_kwargs)
    straight, info = run_cell(config, method, 0)
    assert info["train_steps"] == 2000
    # checkpointing does not change the run; the two newest checkpoints stay (the cell's rows are not
    # written yet: the benchmark's main removes them after)
    assert run_cell(config, method, 0, output=tmp_path, checkpoint_every=1)[0] == straight
    newest, before = (tmp_path / "checkpoints" / name for name in reversed(files(tmp_path)))
    header, _ = read_checkpoint(newest)
    per_iteration = header["num_timesteps"] // header["iterations"]  # LSBaseline's has one phase
    assert header["method"] == method and header["num_timesteps"] == 2000 - per_iteration
    assert before.name == f"{method}_seed0_{2000 - 2 * per_iteration:012d}.ckpt"

    rows, resumed = run_cell(config, method, 0, output=tmp_path, checkpoint_every=0)  # from the newest
    assert rows == straight and resumed["train_steps"] == 2000

    newest.write_bytes(newest.read_bytes()[:-100])  # torn: a copy cut short
    with pytest.warns(UserWarning, match="skipping a damaged checkpoint.*using the one before it"):
        rows, _ = run_cell(config, method, 0, output=tmp_path, checkpoint_every=0)  # from the one before
    assert rows == straight


def test_a_checkpoint_whose_model_bytes_changed_is_passed_over(tmp_path):
    run_cell(CONFIG, "maesn", 0, output=tmp_path, checkpoint_every=4)
    (path,) = (tmp_path / "checkpoints").glob("*.ckpt")  # at 1,600 steps
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the model: the zip's CRC catches it
    path.write_bytes(bytes(data))
    assert checkpointed_cells(tmp_path) == {}
    with pytest.warns(UserWarning, match="damaged checkpoint"):
        rows, _ = run_cell(CONFIG, "maesn", 0, output=tmp_path, checkpoint_every=0)  # from the start
    assert rows == run_cell(CONFIG, "maesn", 0)[0]


def test_a_checkpoint_from_another_config_is_refused(tmp_path):
    run_cell(CONFIG, "maml", 0, output=tmp_path, checkpoint_every=2)
    other = dataclasses.replace(CONFIG, n_tasks=4, task_seed=1)
    with pytest.raises(ValueError, match=r"another config \(it differs in: n_tasks, task_seed\)"):
        run_cell(other, "maml", 0, output=tmp_path)


def test_a_dict_config_is_checked_key_by_key(tmp_path):
    from maesn_sb3 import MAESN, make_meta_vec_env
    from maesn_sb3.benchmark.checkpoints import latest_checkpoint

    model = MAESN("MlpPolicy", make_meta_vec_env(ENV_ID, n_tasks=2, envs_per_task=2, seed=0, latent_dim=2))
    config = {"env_name": "reach-v3", "budget": 1000}  # e.g. a cell of benchmarks/metaworld.py
    write_checkpoint(tmp_path, config, "maesn", 0, model, {"iterations": 0, "train_seconds": 0.0})
    header, _ = latest_checkpoint(tmp_path, dict(config), "maesn", 0)
    assert header["config"] == config
    with pytest.raises(ValueError, match=r"another config \(it differs in: budget, seeds\)"):
        latest_checkpoint(tmp_path, {**config, "budget": 2000, "seeds": 3}, "maesn", 0)


def test_checkpoints_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from maesn_sb3 import MAESN, make_meta_vec_env

    model = MAESN("MlpPolicy", make_meta_vec_env(ENV_ID, n_tasks=2, envs_per_task=2, seed=0, latent_dim=2))
    first = write_checkpoint(tmp_path, CONFIG, "maesn", 0, model, {"iterations": 0, "train_seconds": 0.0})

    def killed(*args):  # the process dies between writing the file and renaming it
        raise KeyboardInterrupt

    model.num_timesteps = 400
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(tmp_path, CONFIG, "maesn", 0, model, {"iterations": 1, "train_seconds": 1.0})
    monkeypatch.undo()
    assert files(tmp_path) == [first.name]  # the torn temporary file is not a checkpoint
    assert checkpointed_cells(tmp_path)[("maesn", 0)]["num_timesteps"] == 0


# -- the benchmark killed for real, and resumed on a fresh clone ------------------------------------------
def bench_args(output, *extra):
    return [
        "--tier", "quick", "--methods", "maesn", "--seeds", "0", "--test-tasks", "2", "--n-tasks", "2",
        "--envs-per-task", "2", "--adapt-iterations", "1", "--adapt-episodes", "2", "--budget", "maesn=4000",
        "--speed-steps", "0", "--workers", "1", "--checkpoint-every", "2", "--output", str(output), *extra,
    ]  # fmt: skip


def newest_steps(output):
    return checkpointed_cells(output).get(("maesn", 0), {}).get("num_timesteps", -1)


def start_and_kill(output, how, *extra):
    """Start the benchmark in a session of its own; once it has checkpointed past where it began, send
    ``how``; its exit code and output."""
    begun = newest_steps(output)
    process = subprocess.Popen(
        [sys.executable, "-m", "maesn_sb3.benchmark", *bench_args(output, *extra)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while newest_steps(output) <= begun and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.02)
        if how == "SIGKILL":  # the whole group, workers included, with no chance to save anything
            os.killpg(process.pid, signal.SIGKILL)
        else:  # the benchmark's process only: it passes the signal on to its workers
            process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, out


def csv_rows(path):
    with path.open() as f:
        return sorted(str(row) for row in csv.DictReader(f))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and process groups")
@pytest.mark.skipif(shutil.which("git") is None, reason="clones with git")
def test_a_benchmark_stopped_by_sigterm_and_sigkill_resumes_on_a_fresh_clone_with_the_same_rows(
    tmp_path, capsys
):
    repo = tmp_path / "repo"
    output = repo / "benchmarks" / "results" / "paper" / "PointNav2D-v0"
    output.mkdir(parents=True)
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")  # the project's rules say what is committed

    # SIGTERM to the benchmark's process: its worker ends the meta-iteration, checkpoints and stops
    code, out = start_and_kill(output, "SIGTERM")
    assert code == 128 + signal.SIGTERM, out
    steps = newest_steps(output)
    assert f"maesn seed 0: stopped by SIGTERM, checkpointed at {steps:,} steps" in out
    assert "run the same command to continue" in out and "1 in progress" in out

    # the rerun resumes there; SIGKILL to every process of it once it has checkpointed further
    code, out = start_and_kill(output, "SIGKILL")
    assert code == -signal.SIGKILL and f"resumes from its checkpoint at {steps:,} steps" in out, out
    steps = newest_steps(output)

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "a run stopped mid-cell"], cwd=repo, check=True)
    clone = tmp_path / "clone"
    subprocess.run([*git, "clone", "-q", str(repo), str(clone)], check=True)
    continued = clone / output.relative_to(repo)
    assert files(continued) == files(output)  # the checkpoints travelled with the clone

    capsys.readouterr()
    assert main(bench_args(continued)) == 0
    assert f"maesn seed 0: resumes from its checkpoint at {steps:,} steps" in capsys.readouterr().out
    assert not (continued / "checkpoints").exists()  # removed once the cell's rows are written
    # the same rows as the cell run in one go, with the config the benchmark saved
    config = Config(**json.loads((continued / "config.json").read_text()))
    rows, _ = run_cell(config, "maesn", 0)
    assert csv_rows(continued / "adaptation.csv") == sorted(
        str({k: str(v) for k, v in r.items()}) for r in rows
    )


# -- --status -------------------------------------------------------------------------------------------
def test_status_lists_done_in_progress_and_to_do_cells_with_the_time_left(tmp_path, capsys):
    from maesn_sb3 import MAESN, make_meta_vec_env

    output = tmp_path / "run"
    args = bench_args(output, "--seeds", "0", "1", "2", "--budget", "maesn=12000")  # the last ones stand
    assert main([*args, "--status"]) == 0
    assert not output.exists()  # --status creates nothing
    assert "0 done, 0 in progress, 3 to do (of 3 cells)" in capsys.readouterr().out
    # seed 0 done (12,000 steps in 10 s: 1,200 steps/s, 2 s to adapt), seed 1 checkpointed at 6,000 steps
    # after 2 s, seed 2 not begun
    output.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "method": "maesn",
            "seed": 0,
            "task": t,
            "iteration": k,
            "env_steps": 1,
            "return": 0.0,
            "success": 0.0,
        }
        for k in range(2)
        for t in range(2)
    ]
    with (output / "adaptation.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (output / "training.csv").write_text(
        "method,seed,train_steps,train_seconds,adapt_seconds\nmaesn,0,12000,10.0,2.0\n"
    )
    model = MAESN("MlpPolicy", make_meta_vec_env(ENV_ID, n_tasks=2, envs_per_task=2, seed=0, latent_dim=2))
    model.num_timesteps = 6000
    write_checkpoint(output, CONFIG, "maesn", 1, model, {"iterations": 15, "train_seconds": 2.0})
    capsys.readouterr()
    assert main([*args, "--status"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "1 done, 1 in progress, 1 to do (of 3 cells)" in text
    assert "done maesn seed 0 12,000 / 12,000 steps" in text
    # its own speed: 6,000 steps in 2 s, so 6,000 more in 2 s, and 2 s to adapt
    assert "in progress maesn seed 1 6,000 / 12,000 steps (checkpoint of 20" in text
    assert "UTC), about 4 s left" in text
    assert "to do maesn seed 2 0 / 12,000 steps, about 12 s left" in text  # 10 + 2 s
    assert "left: about 16 s of cell time" in text


# -- a low priority that holds against other sessions -----------------------------------------------------
@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no scheduler autogroups here")
def test_lower_priority_puts_the_process_in_a_session_of_its_own_at_nice_19():
    ours = Path("/proc/self/autogroup").read_text()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  (the child reports through the pipe)
        try:
            done = lower_priority()
            autogroup = Path("/proc/self/autogroup").read_text()
            os.write(write, f"{os.getsid(0) == os.getpid()}|{os.nice(0)}|{autogroup}|{done}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        own_session, nice, autogroup, done = pipe.read().split("|")
    os.waitpid(child, 0)
    assert own_session == "True" and nice == "19" and autogroup.strip().endswith("nice 19"), done
    assert done == "a session of its own, nice 19, autogroup " + autogroup.strip()
    assert Path("/proc/self/autogroup").read_text() == ours  # this session's priority is left alone


# -- the budget curve ------------------------------------------------------------------------------------
def write_run(folder, config, success, coverage=None, methods=("maesn",)):
    """A run folder with 3 seeds x 2 tasks of ``methods`` whose success at the last iteration is
    ``success``."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    rows = [
        {"method": method, "env_steps": 1, "return": 0.0, "seed": seed, "task": task, "iteration": k}
        | {"success": success if k else 0.0}
        for method in methods
        for seed in range(3)
        for task in range(2)
        for k in range(config.adapt_iterations + 1)
    ]
    with (folder / "adaptation.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if coverage is not None:
        (folder / "coverage.csv").write_text(
            "method,seed,coverage_latents,coverage_action_noise\n"
            + "".join(f"maesn,{seed},{coverage},0.1\n" for seed in range(3))
        )


def test_the_budget_curve_takes_the_family_runs_with_its_settings_and_coverage_where_there_is_some(tmp_path):
    from maesn_sb3.benchmark.budget import budget_runs, plot_budget_curve

    base = dataclasses.replace(CONFIG, budgets={"maesn": 2000})
    write_run(tmp_path / "PointNav2D-v0", base, 0.5)
    write_run(tmp_path / "PointNav2D-v0_2x", dataclasses.replace(base, budgets={"maesn": 4000}), 1.0, 0.8)
    write_run(tmp_path / "PointNav2D-v0_vanilla", dataclasses.replace(base, natural_gradient=False), 0.0)
    write_run(tmp_path / "WheeledNav-v0", dataclasses.replace(base, env_id="maesn_sb3/WheeledNav-v0"), 0.0)
    runs, other = budget_runs(tmp_path, ENV_ID)
    assert [folder.name for folder, _ in runs] == ["PointNav2D-v0", "PointNav2D-v0_2x"]
    assert [folder.name for folder in other] == ["PointNav2D-v0_vanilla"]  # other settings: left out
    points = plot_budget_curve(tmp_path, ENV_ID, tmp_path / "curve.png")
    low, high = points["maesn"]
    assert (low["steps"], low["iqm"], low["coverage"]) == (2000, 0.5, None)
    assert (high["steps"], high["iqm"], high["coverage"]) == (4000, 1.0, pytest.approx(0.8))
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no finished cells"):
        plot_budget_curve(tmp_path, "maesn_sb3/AntGoal-v0", tmp_path / "none.png")


def test_the_budget_curve_compares_the_outer_update_as_each_method_receives_it(tmp_path):
    from maesn_sb3.benchmark.budget import budget_runs, plot_budget_curve

    ppo = {"outer_update": "ppo", "budgets": {"maesn": 2000, "lsbaseline": 2000, "maml": 2000}}
    base = dataclasses.replace(CONFIG, **ppo, outer_kwargs={"latent_learning_rate": 0.01})  # the default
    write_run(
        tmp_path / "ppo", dataclasses.replace(base, outer_kwargs={}), 0.5, methods=("maesn", "lsbaseline")
    )
    # MAML takes no latent learning rate: this folder's MAML is base's MAML, its MAESN another run
    other_latent_rate = dataclasses.replace(base, outer_kwargs={"latent_learning_rate": 3e-4})
    write_run(tmp_path / "ppo_slow_latents", other_latent_rate, 0.25, methods=("maesn", "maml"))
    write_run(tmp_path / "trpo", dataclasses.replace(CONFIG, budgets=ppo["budgets"]), 1.0, methods=("maml",))
    runs, other = budget_runs(tmp_path, ENV_ID, base)
    assert [folder.name for folder, _ in runs] == ["ppo", "ppo_slow_latents"]
    assert [folder.name for folder in other] == ["trpo"]
    points = plot_budget_curve(tmp_path, ENV_ID, tmp_path / "curve.png", base=base)
    assert [(p["folder"], p["iqm"]) for p in points["maesn"]] == [("ppo", 0.5)]
    # LSBaseline takes MAESN's arguments through **kwargs: their defaults count for it too
    assert [(p["folder"], p["iqm"]) for p in points["lsbaseline"]] == [("ppo", 0.5)]
    assert [(p["folder"], p["iqm"], p["label"]) for p in points["maml"]] == [
        ("ppo_slow_latents", 0.25, "MAML (ProMP)")
    ]


def test_checkpoint_every_is_checked_before_any_work(tmp_path, capsys):
    for extra, message in (
        (["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0 (meta-iterations), got -1"),
        (["--checkpoint-every", "5", "--ray-address", "auto"], "a Ray cell runs on another machine's disk"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*bench_args(tmp_path / "run"), *extra])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_second_sigterm_does_not_cut_short_the_handling_of_the_first():
    # two SIGTERMs (one to the script, passed on, and one to the cell itself): the first stops the
    # meta-test at once; the second, arriving while its handler looks up the newest checkpoint, is ignored
    with pytest.raises(CellInterrupted) as stopped, stop_on_sigterm(), stop_at_once("maesn", 0):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except CellInterrupted:
            os.kill(os.getpid(), signal.SIGTERM)
            raise CellInterrupted("maesn", 0, 800_000) from None
    assert stopped.value.steps == 800_000
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
