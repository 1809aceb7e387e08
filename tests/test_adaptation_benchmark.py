"""The PPO baselines (multi-task PPO, fine-tuning, from scratch) and the paper-style adaptation benchmark."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import platform
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO

from maesn_sb3 import MAESN, MAML, LSBaseline, MultiTaskPPO, TaskSet, make_meta_vec_env, ppo_from_scratch
from maesn_sb3.benchmark import COVERAGE_FIELDS
from maesn_sb3.benchmark.results import cpu_model
from maesn_sb3.common.callbacks import TaskResamplingCallback
from maesn_sb3.ppo import finetune_ppo

ENV_ID = "maesn_sb3/PointNav2D-v0"
ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "adaptation_benchmark", ROOT / "benchmarks" / "adaptation.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the process pool pickles run_cell by module name
    spec.loader.exec_module(module)
    return module


def env(tasks, n_tasks=2, envs_per_task=2, seed=0, **kwargs):
    """Single envs: PPO fine-tunes one model per task slot."""
    return make_meta_vec_env(
        ENV_ID,
        n_tasks=n_tasks,
        envs_per_task=envs_per_task,
        seed=seed,
        tasks=tasks,
        env_kwargs={"max_episode_steps": 10, **kwargs},
        vectorization="dummy",
    )


TASKS = TaskSet.from_env(ENV_ID, n_train=8, n_test=2, seed=0)


# -- baselines ------------------------------------------------------------------------------------
def test_task_resampling_callback_draws_training_tasks_at_every_rollout():
    seen = []

    class Record(TaskResamplingCallback):
        def _on_rollout_start(self) -> None:
            super()._on_rollout_start()
            seen.append([float(t["goal"][0]) for t in self.training_env.tasks])

    venv = env(TASKS)
    PPO("MlpPolicy", venv, n_steps=10, batch_size=20, seed=0).learn(120, callback=Record(TASKS.train, seed=0))
    assert len(seen) == 3 and len({tuple(s) for s in seen}) == 3
    assert {g for s in seen for g in s} <= {float(t["goal"][0]) for t in TASKS.train}
    with pytest.raises(ValueError, match="tasks"):
        TaskResamplingCallback([])


def test_ppo_from_scratch_matches_the_adaptation_budget_and_is_reproducible():
    sparse = {"reward_type": "sparse"}
    first = ppo_from_scratch(
        env(TASKS.test, seed=1, **sparse), n_iterations=2, episodes_per_iteration=4, seed=0
    )
    second = ppo_from_scratch(
        env(TASKS.test, seed=1, **sparse), n_iterations=2, episodes_per_iteration=4, seed=0
    )
    assert first.returns.shape == first.success.shape == (3, 2)
    np.testing.assert_array_equal(first.env_steps, [40, 80, 120])  # 4 episodes x 10 steps per iteration
    np.testing.assert_array_equal(first.returns, second.returns)
    assert np.all((first.success >= 0) & (first.success <= 1))
    with pytest.raises(ValueError, match="episodes_per_iteration"):
        ppo_from_scratch(env(TASKS.test), n_iterations=1, episodes_per_iteration=3)
    with pytest.raises(TypeError, match="MetaTaskVecEnv"):
        ppo_from_scratch(PPO("MlpPolicy", ENV_ID).get_env(), n_iterations=1)


def test_multitask_ppo_learns_saves_and_finetunes_copies(tmp_path):
    model = MultiTaskPPO("MlpPolicy", env(TASKS), task_set=TASKS, n_steps=10, batch_size=20, seed=0).learn(80)
    weights = th.nn.utils.parameters_to_vector(model.policy.parameters()).clone()
    curve = model.adapt(env(TASKS.test, seed=2), n_iterations=1, episodes_per_iteration=2)
    assert curve.returns.shape == (2, 2)
    th.testing.assert_close(th.nn.utils.parameters_to_vector(model.policy.parameters()), weights)
    model.save(tmp_path / "mt")
    loaded = MultiTaskPPO.load(tmp_path / "mt", env=env(TASKS))
    assert len(loaded.task_set.train) == 8
    obs = loaded.env.reset()
    np.testing.assert_allclose(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
    with pytest.raises(TypeError, match="PPO"):
        finetune_ppo("not a model", env(TASKS.test), n_iterations=1)


def test_finetuning_starts_from_the_pretrained_policy():
    """Iteration 0 of fine-tuning plays the pre-trained policy: a policy trained to go to the goal does
    better there than a fresh one on the same sparse task."""
    goal = [{"goal": np.array([0.0, 0.5])}]
    trained = MultiTaskPPO(
        "MlpPolicy",
        env(goal * 2, n_tasks=2, envs_per_task=4),
        task_set=TaskSet(train=goal, test=[]),
        n_steps=10,
        batch_size=40,
        seed=0,
        learning_rate=3e-3,
    ).learn(12_000)
    sparse = env(goal, n_tasks=1, envs_per_task=8, seed=3, reward_type="sparse")
    tuned = finetune_ppo(trained, sparse, n_iterations=0, episodes_per_iteration=8, seed=0)
    fresh = ppo_from_scratch(
        env(goal, n_tasks=1, envs_per_task=8, seed=3, reward_type="sparse"), 0, 8, seed=0
    )
    print(f"success at iteration 0: fine-tuned {tuned.success[0, 0]:.2f}, fresh {fresh.success[0, 0]:.2f}")
    assert tuned.success[0, 0] > fresh.success[0, 0] + 0.3


# -- statistics -----------------------------------------------------------------------------------
def test_iqm_and_bootstrap():
    bench = load_benchmark()
    assert bench.iqm(np.arange(8.0)) == pytest.approx(np.mean([2, 3, 4, 5]))
    assert bench.iqm(np.array([0.0, 1, 1, 1, 1, 1, 1, 100])) == pytest.approx(1.0)  # robust to outliers
    scores = np.random.default_rng(0).uniform(size=(3, 10))
    low, high = bench.bootstrap_ci(scores)
    assert low < bench.iqm(scores) < high
    narrow = bench.bootstrap_ci(np.full((3, 10), 0.4))
    assert narrow == pytest.approx((0.4, 0.4))
    assert bench.bootstrap_ci(scores, seed=1) == bench.bootstrap_ci(scores, seed=1)


def test_probability_of_improvement_and_performance_profile_by_hand():
    from maesn_sb3.benchmark.stats import (
        improvement_ci,
        improvement_outcomes,
        performance_profile,
        probability_of_improvement,
    )

    # task 0: of the 2 x 3 pairs only 0.6 > 0.4 (twice) wins: 2/6; task 1: 0.5 ties 0.5 in every pair: 1/2
    x = np.array([[0.2, 0.5], [0.6, 0.5]])
    y = np.array([[0.4, 0.5], [0.4, 0.5], [0.8, 0.5]])
    assert probability_of_improvement(x, y) == pytest.approx((2 / 6 + 1 / 2) / 2)
    # wins 2/6 and 0, ties 0 and 1, losses 4/6 and 0 (task 0: 0.2 loses to all three, 0.6 to 0.8)
    np.testing.assert_allclose(improvement_outcomes(x, y), [1 / 6, 1 / 2, 1 / 3])
    # losses are counted, not 1 - wins - ties (which is -5.6e-17 here and printed as -0.00)
    assert improvement_outcomes(np.array([[1.0] * 7 + [0.0] * 3]), np.zeros((1, 10)))[2] == 0.0
    assert probability_of_improvement(y, x) == pytest.approx((4 / 6 + 1 / 2) / 2)  # P(X>Y) + P(Y>X) = 1
    assert probability_of_improvement(np.ones((3, 4)), np.zeros((3, 4))) == 1.0
    low, high = improvement_ci(x, y)
    assert 0.25 <= low <= probability_of_improvement(x, y) <= high <= 0.75
    with pytest.raises(ValueError, match="same tasks"):
        probability_of_improvement(x, y[:, :1])
    fraction, low, high = performance_profile(x, np.array([0.0, 0.3, 0.55, 1.0]))
    np.testing.assert_allclose(fraction, [1.0, 0.75, 0.25, 0.0])  # runs above each threshold
    assert np.all(low <= fraction) and np.all(fraction <= high)


# -- the benchmark end to end ---------------------------------------------------------------------
def test_benchmark_runs_resumes_and_reports(tmp_path, capsys, monkeypatch):
    bench = load_benchmark()
    out = tmp_path / "run"
    args = [
        "--tier",
        "quick",
        "--methods",
        "maesn",
        "scratch",
        "--seeds",
        "0",
        "1",
        "--test-tasks",
        "2",
        "--adapt-iterations",
        "1",
        "--adapt-episodes",
        "20",
        "--budget-scale",
        "0.004",
        "--speed-steps",
        "0",
        "--workers",
        "1",
        "--output",
        str(out),
    ]
    assert bench.main(args) == 0
    with (out / "adaptation.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == bench.FIELDS
    assert len(rows) == 2 * 2 * 2 * 2  # methods x seeds x tasks x iterations
    steps = {(r["method"], r["iteration"]): int(r["env_steps"]) for r in rows}
    assert steps[("maesn", "1")] == steps[("scratch", "1")] == 2 * 20 * 50  # the same budget for all
    table = (out / "adaptation.md").read_text()
    assert "| MAESN | 2 |" in table and "| PPO from scratch | 2 |" in table
    assert (out / "adaptation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    coverage = read_rows(out / "coverage.csv")  # MAESN's cells only
    assert [(r["method"], r["seed"]) for r in sorted(coverage, key=lambda r: r["seed"])] == [
        ("maesn", "0"),
        ("maesn", "1"),
    ]
    assert all(0 <= float(r[key]) <= 1 for r in coverage for key in COVERAGE_FIELDS[2:])
    assert "Exploration coverage of the 2 held-out tasks" in table
    distances = read_rows(out / "exploration.csv")  # MAESN's exploration figure, as numbers
    assert sorted((r["method"], r["seed"]) for r in distances) == [("maesn", "0"), ("maesn", "1")]
    assert all(float(r["prior_distance"]) > 0 and float(r["noise_distance"]) > 0 for r in distances)
    assert (out / "exploration_maesn_seed0.png").is_file() and "Distance from the start" in table
    versions = read_rows(out / "versions.csv")  # the packages each cell ran with
    assert sorted((r["method"], r["seed"]) for r in versions) == [
        ("maesn", "0"),
        ("maesn", "1"),
        ("scratch", "0"),
        ("scratch", "1"),
    ]
    assert {r["numpy"] for r in versions} == {np.__version__} and {r["torch"] for r in versions} == {
        th.__version__
    }
    assert f"numpy {np.__version__}" in table and "every cell" in table
    (cpu,) = {r["cpu"] for r in versions}
    assert cpu.startswith(f"{platform.machine()} {th.backends.cpu.get_cpu_capability()}")
    assert cpu_model() in cpu

    # compare_folders.py: the same P as the report, with the wins, ties and losses behind it
    capsys.readouterr()
    spec = importlib.util.spec_from_file_location(
        "compare_folders", ROOT / "benchmarks" / "compare_folders.py"
    )
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    monkeypatch.setattr(sys, "argv", ["compare_folders.py", f"{out}:maesn,scratch"])
    compare.main()
    printed = capsys.readouterr().out.splitlines()
    scratch_row = next(line for line in printed if line.startswith("| PPO from scratch"))
    p_text, outcomes = scratch_row.split(" | ")[3:5]
    wins, ties, losses = (float(v) for v in outcomes.strip(" |").split(" / "))
    assert wins + ties + losses == pytest.approx(1.0, abs=0.015)
    assert float(p_text.split()[0]) == pytest.approx(wins + ties / 2, abs=0.01)
    assert p_text in table  # the report's P(MAESN > PPO from scratch) with its CI

    # resume: finished cells are skipped; a lost cell is run again
    capsys.readouterr()
    assert bench.main(args) == 0
    assert "4 cells already done, 0 to run" in capsys.readouterr().out
    kept = [r for r in rows if not (r["method"] == "scratch" and r["seed"] == "1")]
    with (out / "adaptation.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=bench.FIELDS)
        writer.writeheader()
        writer.writerows(kept)
    assert bench.main(args) == 0
    assert "3 cells already done, 1 to run" in capsys.readouterr().out
    with (out / "adaptation.csv").open() as f:
        again = list(csv.DictReader(f))
    redone = [r for r in again if r["method"] == "scratch" and r["seed"] == "1"]
    original = [r for r in rows if r["method"] == "scratch" and r["seed"] == "1"]
    assert sorted(map(str, redone)) == sorted(map(str, original))  # same seed, same rows

    other = list(args)
    other[other.index("--adapt-iterations") + 1] = "2"
    with pytest.raises(SystemExit):  # another setting in the same folder is refused
        bench.main(other)


def test_skill_variants_count_every_env_step(tmp_path):
    """MAESN over skills and with a mixed reward: DIAYN's steps count in meta-training, and adaptation
    gets the same env steps per task as every other method (a skill action is 10 env steps)."""
    bench = load_benchmark()
    out = tmp_path / "run"
    args = [
        "--tier", "quick", "--methods", "skills", "mixed", "--seeds", "0", "--test-tasks", "2",
        "--adapt-iterations", "1", "--adapt-episodes", "4", "--budget", "skills=8000", "mixed=8000",
        "--diayn-steps", "1200", "--speed-steps", "0", "--workers", "1", "--output", str(out),
    ]  # fmt: skip
    assert bench.main(args) == 0
    rows = read_rows(out / "adaptation.csv")
    steps = {(r["method"], r["iteration"]) for r in rows if r["env_steps"] == str(2 * 4 * 50)}
    assert steps == {("skills", "1"), ("mixed", "1")}
    training = {r["method"]: int(r["train_steps"]) for r in read_rows(out / "training.csv")}
    assert training["skills"] >= 8000 + 1200 and training["mixed"] >= 8000
    table = (out / "adaptation.md").read_text()
    assert (
        "| MAESN over DIAYN skills | 1 |" in table and "| MAESN, mixed reward (task + skill) | 1 |" in table
    )


def run_and_edit_its_config(tmp_path, edit):
    """A finished quick-tier folder (one PPO-from-scratch cell) whose config.json ``edit`` changed in
    place; the benchmark and the command that made it."""
    import json

    bench = load_benchmark()
    args = quick_args(tmp_path / "run", "--methods", "scratch", "--seeds", "0")
    assert bench.main(args) == 0
    path = tmp_path / "run" / "config.json"
    saved = json.loads(path.read_text())
    edit(saved)
    path.write_text(json.dumps(saved))
    return bench, args


def test_a_run_begun_before_a_setting_was_added_resumes(tmp_path, capsys):
    def as_written_by_an_older_version(saved):
        del saved["diayn_steps"]

    bench, args = run_and_edit_its_config(tmp_path, as_written_by_an_older_version)
    capsys.readouterr()
    assert bench.main(args) == 0
    assert "1 cells already done, 0 to run" in capsys.readouterr().out


def test_a_folder_keeps_the_class_defaults_it_was_written_with(tmp_path, capsys):
    def as_if_the_default_had_been_1e3(saved):
        resolved = saved["resolved_kwargs"]
        assert saved["outer_kwargs"] == {} and resolved["maesn"]["kl_coef"] == 0.1
        assert resolved["maml"]["inner_lr"] == 0.1  # the cell's own arguments count too
        assert "seed" not in resolved["maesn"]  # the cell sets it
        for method in ("maesn", "lsbaseline", "maml"):
            resolved[method]["learning_rate"] = 1e-3

    bench, args = run_and_edit_its_config(tmp_path, as_if_the_default_had_been_1e3)
    with pytest.raises(SystemExit):
        bench.main(args)
    error = capsys.readouterr().err
    assert "maesn learning_rate: 0.001 saved, 0.0003 now" in error and "maml learning_rate" in error
    assert "pass the saved values in --outer-kwargs to continue it" in error
    # the saved value written out is the same run as the default it had then
    assert bench.main([*args, "--outer-kwargs", '{"learning_rate": 0.001}']) == 0
    assert "1 cells already done, 0 to run" in capsys.readouterr().out


def test_outer_kwargs_and_the_defaults_they_leave_out_are_compared_as_the_cells_receive_them():
    import dataclasses

    from maesn_sb3.benchmark.checkpoints import config_differences
    from maesn_sb3.benchmark.config import Config, resolved_kwargs

    def resolved(**kwargs):
        config = Config(env_id=ENV_ID, outer_update="ppo", **kwargs)
        return dataclasses.replace(config, resolved_kwargs=resolved_kwargs(config))

    written = dataclasses.asdict(resolved())
    assert config_differences(written, resolved(outer_kwargs={"learning_rate": 3e-4})) == []
    assert config_differences(written, resolved(outer_kwargs={"n_epochs": 5})) == [
        f"{method} n_epochs: 10 saved, 5 now" for method in ("lsbaseline", "maesn", "maml")
    ]
    # a config written before the hyperparameters were recorded: outer_kwargs as written
    del written["resolved_kwargs"]
    assert config_differences(written, resolved(outer_kwargs={"learning_rate": 3e-4})) == ["outer_kwargs"]
    assert config_differences(written, resolved()) == []


# -- runs that survive failures (issue 16) ------------------------------------------------------------------
def quick_args(out, *extra):
    return [
        "--tier", "quick", "--test-tasks", "2", "--adapt-iterations", "1", "--adapt-episodes", "20",
        "--budget-scale", "0.004", "--speed-steps", "0", "--workers", "1", "--output", str(out), *extra,
    ]  # fmt: skip


def read_rows(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_a_failing_cell_keeps_the_others_and_the_run_exits_nonzero(tmp_path, capsys):
    bench = load_benchmark()
    out = tmp_path / "run"
    args = quick_args(out, "--methods", "maesn", "scratch", "--seeds", "0", "--inner-reward-key", "nope")
    args[args.index("--workers") + 1] = "2"
    assert bench.main(args) == 1
    rows = read_rows(out / "adaptation.csv")
    assert {(r["method"], r["seed"]) for r in rows} == {("scratch", "0")} and len(rows) == 2 * 2
    captured = capsys.readouterr()
    assert "maesn seed 0: FAILED: KeyError" in captured.out
    assert "1 cell(s) failed" in captured.err and "maesn seed 0: KeyError" in captured.err
    assert "'nope'" in captured.err


def test_a_torn_last_row_is_dropped_and_its_cell_run_again(tmp_path, capsys):
    bench = load_benchmark()
    out = tmp_path / "run"
    args = quick_args(out, "--methods", "scratch", "--seeds", "0", "1")
    assert bench.main(args) == 0
    path = out / "adaptation.csv"
    rows = read_rows(path)
    path.write_bytes(path.read_bytes()[:-7])  # killed in the middle of the last row's write
    capsys.readouterr()
    assert bench.main([*args, "--report-only"]) == 0  # reads the finished cells only
    assert "| PPO from scratch | 1 |" in (out / "adaptation.md").read_text()
    assert bench.main(args) == 0
    assert "1 cells already done, 1 to run" in capsys.readouterr().out
    again = read_rows(path)
    assert sorted(map(str, again)) == sorted(map(str, rows))
    assert path.read_text().count("\n") == len(rows) + 1  # no row glued onto a torn one


def test_seeds_and_output_are_checked_before_any_work(tmp_path, capsys):
    bench = load_benchmark()
    for seeds, message in ((["0", "0"], "must not repeat a seed"), (["-1"], "must be ints >= 0")):
        with pytest.raises(SystemExit) as exit_info:
            bench.main(quick_args(tmp_path / "run", "--methods", "scratch", "--seeds", *seeds))
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(quick_args(blocker / "run", "--methods", "scratch", "--seeds", "0"))
    assert exit_info.value.code == 2 and "is not a writable folder" in capsys.readouterr().err
    # an outer-update argument that a method's class does not take (MAML has no latent prior)
    kl = ["--outer-kwargs", '{"kl_coef": 0.02}']
    with pytest.raises(SystemExit) as exit_info:
        bench.main(quick_args(tmp_path / "run", "--methods", "maesn", "maml", "--seeds", "0", *kl))
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "outer_kwargs ['kl_coef'] are not arguments of MAML" in error
    assert not (tmp_path / "run").exists()
    maesn_only = quick_args(tmp_path / "run", "--methods", "maesn", "--seeds", "0", *kl, "--status")
    assert bench.main(maesn_only) == 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has ended


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_pool_workers_end_with_the_benchmark_process(how):
    import signal
    import subprocess
    import time

    path = str(ROOT / "benchmarks" / "adaptation.py")
    script = (
        "import importlib.util, os, sys, time\n"
        f"spec = importlib.util.spec_from_file_location('bench', {path!r})\n"
        "bench = importlib.util.module_from_spec(spec); sys.modules['bench'] = bench\n"
        "spec.loader.exec_module(bench)\n"
        "pool = bench.make_pool(2)\n"
        "pids = {pool.submit(os.getpid).result() for _ in range(8)}\n"
        "[pool.submit(time.sleep, 60) for _ in range(2)]\n"
        "print(*pids, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert workers and all(_alive(pid) for pid in workers)
        parent.send_signal(getattr(signal, how))
        parent.wait(10)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "pool workers outlived the benchmark process"
    finally:
        parent.kill()


def test_outer_update_and_its_arguments_reach_the_meta_learners(tmp_path, monkeypatch):
    import json

    import maesn_sb3

    bench = load_benchmark()
    out = tmp_path / "run"
    ppo = ["--outer-update", "ppo", "--outer-kwargs", '{"n_epochs": 2}']
    assert bench.main(["--tier", "quick", *ppo, "--report-only", "--output", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["outer_update"] == "ppo" and saved["outer_kwargs"] == {"n_epochs": 2}
    with pytest.raises(SystemExit):
        bench.main(["--tier", "quick", "--outer-kwargs", "[2]", "--output", str(tmp_path / "other")])

    built = []

    class Recorded(maesn_sb3.LSBaseline):
        def __init__(self, *args, **kwargs):
            built.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(maesn_sb3, "LSBaseline", Recorded)
    config = bench.Config(
        env_id=ENV_ID, n_train_tasks=4, n_test_tasks=2, n_tasks=2, envs_per_task=2, adapt_iterations=1,
        adapt_episodes=4, budgets={"lsbaseline": 200}, outer_update="ppo", outer_kwargs={"n_epochs": 2},
    )  # fmt: skip
    rows, info = bench.run_cell(config, "lsbaseline", 0)
    assert built[0]["outer_update"] == "ppo" and built[0]["n_epochs"] == 2
    assert len(rows) == 2 * 2 and 0 <= info["coverage_latents"] <= 1


def test_the_meta_test_step_scale_reaches_the_latent_methods_adapt_and_is_a_setting(
    tmp_path, monkeypatch, capsys
):
    from maesn_sb3 import LSBaseline

    bench = load_benchmark()
    out = tmp_path / "run"
    assert (
        bench.main(["--tier", "quick", "--adapt-step-scale", "2", "--report-only", "--output", str(out)]) == 0
    )
    with pytest.raises(SystemExit):  # a folder of another meta-test step is not resumed with the default
        bench.main(["--tier", "quick", "--report-only", "--output", str(out)])
    assert "adapt_step_scale" in capsys.readouterr().err
    for bad in ("0", "nan"):
        with pytest.raises(SystemExit):
            bench.main(["--tier", "quick", "--adapt-step-scale", bad, "--output", str(tmp_path / bad)])
        assert "--adapt-step-scale must be a finite number > 0" in capsys.readouterr().err

    scales = []
    adapt = LSBaseline.adapt

    def recorded(self, *args, **kwargs):
        scales.append(kwargs["step_scale"])
        return adapt(self, *args, **kwargs)

    monkeypatch.setattr(LSBaseline, "adapt", recorded)
    config = bench.Config(
        env_id=ENV_ID, n_train_tasks=4, n_test_tasks=2, n_tasks=2, envs_per_task=2, adapt_iterations=1,
        adapt_episodes=4, budgets={"lsbaseline": 200}, adapt_step_scale=2.0,
    )  # fmt: skip
    bench.run_cell(config, "lsbaseline", 0)
    assert scales == [2.0]


def test_adapt_step_scale_at_scale_1_is_the_folders_cell_and_resumes(tmp_path):
    """benchmarks/adapt_step_scale.py trains each cell's model as the benchmark does: its scale-1 rows
    are the benchmark's own, row for row, for the three meta-learners; scale 2 doubles every step."""
    spec = importlib.util.spec_from_file_location(
        "adapt_step_scale", ROOT / "benchmarks" / "adapt_step_scale.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    folder, out = tmp_path / "run", tmp_path / "scales"
    methods = ["maesn", "lsbaseline", "maml"]
    tiny = ["--n-tasks", "4", "--envs-per-task", "4", "--test-tasks", "2", "--adapt-iterations", "1"]
    budgets = [f"{method}=8000" for method in methods]
    args = ["--tier", "quick", "--methods", *methods, "--seeds", "0", *tiny, "--adapt-episodes", "4"]
    assert (
        load_benchmark().main([*args, "--budget", *budgets, "--speed-steps", "0", "--output", str(folder)])
        == 0
    )
    scale_args = [str(folder), "--methods", *methods, "--scales", "1", "2", "--out", str(out)]
    script.main(scale_args)
    script.main(scale_args)  # a rerun skips the cells written

    def rows(path):
        return sorted(tuple(row.values()) for row in read_rows(path / "adaptation.csv"))

    assert rows(out / "scale1") == rows(folder)
    assert len(read_rows(out / "scale2" / "versions.csv")) == len(methods)  # one per cell, not rerun
    assert len(rows(out / "scale2")) == len(rows(folder)) and rows(out / "scale2") != rows(folder)
    maesn = MAESN.load(out / "models" / "maesn_seed0.zip")
    sizes = maesn.latents.step_size_mean.detach().clone()
    assert th.equal(script.scaled(maesn, 2.0).latents.step_size_mean, 2 * sizes)
    assert script.scaled(LSBaseline.load(out / "models" / "lsbaseline_seed0.zip"), 2.0).adapt_lr == 2.0
    maml = MAML.load(out / "models" / "maml_seed0.zip")
    assert script.scaled(maml, 2.0).adapt_lr == 2 * maml.inner_lr
    # S:L: the latent's log-std steps scaled apart from its mean steps; MAML has none to scale
    maesn = script.scaled(MAESN.load(out / "models" / "maesn_seed0.zip"), 2.0, 4.0)
    assert th.equal(maesn.latents.step_size_mean, 2 * sizes)
    lsb = script.scaled(LSBaseline.load(out / "models" / "lsbaseline_seed0.zip"), 2.0, 4.0)
    assert lsb.adapt_lr is None and lsb.latents.step_size_log_std.tolist() == [4.0, 4.0]
    assert lsb.latents.step_size_mean.tolist() == [2.0, 2.0] and lsb.adapt_step_scale(2) == 1.0
    with pytest.raises(ValueError, match=r"log_std_scale must be 2\.0, got 4\.0"):
        script.scaled(maml, 2.0, 4.0)
    assert script.parse_scale("2") == (2.0, 2.0) and script.parse_scale("1:3") == (1.0, 3.0)
    assert script.folder_name((2.0, 2.0)) == "scale2" and script.folder_name((1.0, 3.0)) == "scale1_logstd3"
    for bad in ("0", "1:2:3", "a", "1:-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="a scale is S or S:L"):
            script.parse_scale(bad)


def test_the_report_lists_the_package_versions_and_says_where_cells_differ():
    from maesn_sb3.benchmark.config import VERSION_FIELDS
    from maesn_sb3.benchmark.report import versions_note

    def row(method, seed, torch):
        return {"method": method, "seed": str(seed), **dict.fromkeys(VERSION_FIELDS[2:], "1"), "torch": torch}

    rows = [row("maesn", 0, "2.12"), row("maesn", 0, "2.13"), row("maml", 0, "2.13"), row("maml", 1, "2.12")]
    same = versions_note(rows, {("maesn", 0), ("maml", 0)})  # a cell's last row counts; maml 1 unfinished
    assert "every cell" in same and "torch 2.13" in same and "2.12" not in same
    differ = versions_note(rows, {("maesn", 0), ("maml", 0), ("maml", 1)})
    assert "they differ" in differ and differ.endswith(
        "torch 2.12, mujoco 1, gymnasium 1, "
        + "stable-baselines3 1, sb3-contrib 1, maesn-sb3 1, cpu 1: maml 1"
    )
    assert versions_note([], {("maesn", 0)}) == ""  # a folder from before versions.csv
    older = versions_note(rows, {("maesn", 0), ("lsbaseline", 2)})  # a cell from before the record
    assert (
        "every cell" not in older
        and "2.13, mujoco 1, gymnasium 1, stable-baselines3 1, sb3-contrib 1, maesn-sb3 1, cpu 1: maesn 0"
        in older
    )
    assert older.endswith("not recorded (run before `versions.csv` was written): lsbaseline 2")
