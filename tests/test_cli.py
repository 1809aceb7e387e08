"""The ``maesn-sb3`` command line: every command end to end on a tiny run, help, exit codes, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from maesn_sb3 import MAESN, __version__, cli, make_meta_vec_env

TINY = ["--timesteps", "1000", "--n-tasks", "2", "--envs-per-task", "5", "--n-train-tasks", "4"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "run"
    args = ["train", *TINY, "--n-test-tasks", "3", "--output", str(folder), "--seed", "1"]
    assert cli.main([*args, "--hp", "kl_coef=0.5", "--tensorboard", "--no-progress"]) == 0
    return folder


def test_envs_lists_the_task_families(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "maesn_sb3/PointNav2D-v0" in out and "maesn_sb3/AntGoal-v0" in out


def test_train_writes_model_config_and_logs(run: Path) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert config["hyperparams"] == {"kl_coef": 0.5} and config["seed"] == 1
    assert config["maesn_sb3_version"] == __version__
    model = MAESN.load(run / "model.zip")
    assert model.kl_coef == 0.5 and model.num_timesteps >= 1000
    assert len(model.task_set.train) == 4 and len(model.task_set.test) == 3
    header = (run / "logs" / "progress.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "rollout/post_update_return" in header and "train/approx_kl" in header  # the proximal step
    assert list((run / "logs").glob("events.out.tfevents.*"))


def test_train_from_yaml_config_with_flag_override(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "algo: lsbaseline\ntimesteps: 500\nn_tasks: 2\nenvs_per_task: 5\nn_train_tasks: 3\n"
        "hyperparams:\n  max_kl: 0.02\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    assert (
        cli.main(["train", "--config", str(config), "--seed", "4", "--output", str(out), "--no-progress"])
        == 0
    )
    saved = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))
    assert saved["algo"] == "lsbaseline" and saved["seed"] == 4 and saved["hyperparams"] == {"max_kl": 0.02}
    from maesn_sb3 import LSBaseline

    assert LSBaseline.load(out / "model.zip").max_kl == 0.02


def test_adapt_prints_and_saves_the_curve(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["adapt", str(run), "--iterations", "2", "--envs-per-task", "4", "--no-progress"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["0", "1", "2"]
    result = cli.load_adaptation(run / "adaptation.npz")
    assert result.returns.shape == (3, 3) and result.latent_means.shape == (3, 3, 2)
    assert np.all(result.latent_means[0] == 0)  # adaptation starts from the prior
    assert (run / "adaptation.csv").read_text(encoding="utf-8").count("\n") == 4

    # --step-scale 1, the reference's steps: half the default's first move from the prior (same batch)
    assert cli.main([*args, "--step-scale", "1", "--output", str(run / "reference.npz")]) == 0
    reference = cli.load_adaptation(run / "reference.npz")
    assert np.abs(result.latent_means[1]).max() > 1e-3
    assert np.allclose(2 * reference.latent_means[1], result.latent_means[1], atol=1e-6)
    assert cli.main([*args, "--step-scale", "0"]) == 2
    assert "--step-scale must be a finite number > 0, got 0.0" in capsys.readouterr().err


def test_evaluate_prints_per_task_figures(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"
    args = ["evaluate", str(run / "model.zip"), "--episodes", "3", "--output", str(out), "--no-progress"]
    assert cli.main(args) == 0
    assert "mean" in capsys.readouterr().out
    figures = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert len(figures["returns"]) == 3 and all(0 <= s <= 1 for s in figures["success"])
    train_args = ["evaluate", str(run), "--split", "train", "--latent", "trained", "--no-progress"]
    assert cli.main([*train_args, "--deterministic", "--episodes", "2"]) == 0


def test_plot_writes_pngs(run: Path, tmp_path: Path) -> None:
    if not (run / "adaptation.npz").exists():
        assert (
            cli.main(["adapt", str(run), "--iterations", "1", "--envs-per-task", "2", "--no-progress"]) == 0
        )
    out = tmp_path / "plots"
    assert cli.main(["plot", str(run), "--output", str(out), "--n-latents", "3", "--no-progress"]) == 0
    for kind in ("learning", "adaptation", "exploration"):
        assert (out / f"{kind}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--env", "maesn_sb3/PointNav-v0"], "unknown env id 'maesn_sb3/PointNav-v0'. Did you mean"),
        (["train", "--hp", "kl_cof=1"], "unknown hyperparameter(s) ['kl_cof']"),
        (["train", "--hp", "kl_coef"], "--hp takes KEY=VALUE, got 'kl_coef'"),
        (["train", "--timesteps", "0"], "--timesteps must be an int >= 1, got 0"),
        (["train", "--config", "missing.yaml"], "--config: no such file 'missing.yaml'"),
        (["train", "--algo", "ppo"], "--algo must be one of maesn, lsbaseline, got 'ppo'"),
        (["adapt", "no_such_run"], "no model at 'no_such_run.zip'"),
        (["plot", "no_such_run"], "no model at 'no_such_run.zip'"),
    ],
)
def test_errors_exit_2_with_an_actionable_message(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main([*argv, "--no-progress"] if argv[0] != "plot" else argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith(f"maesn-sb3 {argv[0]}: error:")
    assert not (tmp_path / "runs").exists()  # nothing written before the input was checked


def test_model_env_mismatch_is_reported(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "adapt",
        str(run),
        "--env",
        "maesn_sb3/WheeledNav-v0",
        "--iterations",
        "0",
        "--envs-per-task",
        "1",
    ]
    assert cli.main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "the model does not fit env 'maesn_sb3/WheeledNav-v0'" in err and "Observation spaces" in err


def test_existing_model_is_not_overwritten(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", *TINY, "--output", str(run), "--no-progress"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err


def test_bad_counts_are_usage_errors(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["adapt", str(run), "--iterations", "-1"])
    assert exit_info.value.code == 2 and "--iterations must be >= 0, got -1" in capsys.readouterr().err


def test_benchmark_delegates() -> None:
    # the benchmark ships in the package (maesn_sb3.benchmark): it runs from an installed wheel too
    assert cli.main(["benchmark", "--", "--help"]) == 0  # the benchmark's own --help, in a child
    assert cli.main(["benchmark", "--tier", "no-such-tier"]) == 2  # its usage error passes through


def test_help_explains_every_option() -> None:
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    assert set(subparsers) == {"envs", "train", "adapt", "evaluate", "plot", "benchmark"}
    for name, sub in subparsers.items():
        for action in sub._actions:
            assert action.help, (
                f"`maesn-sb3 {name}` option {action.option_strings or action.dest} has no help"
            )


def test_module_and_console_script_entry_points() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "maesn_sb3", "--help"], capture_output=True, text=True, check=True, timeout=120
    )
    assert "train" in done.stdout and "adapt" in done.stdout and "exit" not in done.stderr
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("maesn-sb3") == "maesn_sb3.cli:main"


def test_tensorboard_log_groups_the_meta_training_scalars(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=2, envs_per_task=2, latent_dim=2, seed=0)
    MAESN("MlpPolicy", env, n_train_tasks=4, seed=0, tensorboard_log=str(tmp_path)).learn(400)
    events = list((tmp_path / "MAESN_1").glob("events.out.tfevents.*"))
    assert len(events) == 1
    accumulator = EventAccumulator(str(events[0]))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {tag.split("/")[0] for tag in tags} == {"rollout", "train", "time"}
    assert {"rollout/post_update_return", "rollout/pre_update_success", "train/approx_kl"} <= tags
    assert {"train/latent_prior_kl", "train/step_size_mean_0", "time/fps"} <= tags


# -- usage errors are exit 2, found before any work (issue 16) ----------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--env", "CartPole-v1"], "'CartPole-v1' is not a task family"),
        (["train", "--env-kwarg", "nope=1"], "cannot build 'maesn_sb3/PointNav2D-v0' with env kwargs"),
        (
            ["train", "--n-tasks", "5", "--n-train-tasks", "2"],
            "--n-tasks (tasks per meta-iteration, 5) must",
        ),
        (["train", "--config", "bad.yaml"], "--config 'bad.yaml' is not readable YAML"),
        (["train", "--output", "a_file/run"], "--output 'a_file/run/model.zip' cannot be written"),
    ],
)
def test_train_usage_errors_exit_2_before_any_work(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("algo: [maesn\n")
    (tmp_path / "a_file").write_text("")
    assert cli.main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("maesn-sb3 train: error:")
    assert not (tmp_path / "runs").exists()


def test_adapt_evaluate_and_plot_check_their_output_first(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for argv in (
        ["adapt", str(run), "--iterations", "0", "--envs-per-task", "1", "--output", str(blocker / "c.npz")],
        ["evaluate", str(run), "--episodes", "1", "--output", str(blocker / "e.json")],
        ["plot", str(run), "--kind", "learning", "--output", str(blocker / "pngs")],
    ):
        extra = [] if argv[0] == "plot" else ["--no-progress"]
        assert cli.main([*argv, *extra]) == 2
        err = capsys.readouterr()
        assert "cannot be written" in err.err and err.out == ""  # nothing computed, nothing printed
    assert cli.main(["adapt", str(run), "--episodes", "3", "--envs-per-task", "2", "--no-progress"]) == 2
    assert "--episodes must be a multiple of --envs-per-task = 2, got 3" in capsys.readouterr().err


def test_adapt_output_folder_gets_the_file_it_prints(run: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "curves"
    folder.mkdir()
    args = ["adapt", str(run), "--iterations", "0", "--envs-per-task", "1", "--no-progress"]
    assert cli.main([*args, "--output", f"{folder}/"]) == 0
    assert f"curve saved to {folder / 'adaptation.npz'}" in capsys.readouterr().out
    assert (folder / "adaptation.npz").is_file()
    assert cli.main([*args, "--output", str(tmp_path / "named")]) == 0
    assert f"curve saved to {tmp_path / 'named.npz'}" in capsys.readouterr().out
    assert (tmp_path / "named.npz").is_file()


def test_a_run_config_with_an_unknown_algo_does_not_mention_a_missing_option(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    (copy / "config.yaml").write_text(yaml.safe_dump({**config, "algo": "maml"}))
    assert cli.main(["adapt", str(copy), "--iterations", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "the run's config.yaml key 'algo' must be one of maesn, lsbaseline, got 'maml'" in err
    assert "--algo" not in err


CUSTOM_FAMILY = '''
import gymnasium as gym
from maesn_sb3.envs.point_nav import PointNav2DEnv


class MyTask(PointNav2DEnv):
    """A task family whose constructor takes no reward_type."""

    def __init__(self, step_size: float = 0.1) -> None:
        super().__init__(reward_type="sparse", step_size=step_size)


gym.register("mypkg17/MyTask-v0", entry_point=MyTask, max_episode_steps=8)
'''


@pytest.mark.parametrize("how", ["module_colon_id", "import_option"])
def test_a_custom_family_trains_from_the_cli(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"family17_{how}"
    (tmp_path / f"{module}.py").write_text(CUSTOM_FAMILY.replace("mypkg17", module), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    env_id = f"{module}/MyTask-v0"
    env = (
        ["--env", f"{module}:{env_id}"] if how == "module_colon_id" else ["--env", env_id, "--import", module]
    )
    out = tmp_path / "run"
    assert cli.main(["train", *TINY, *env, "--output", str(out), "--no-progress"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))["env_kwargs"] == {}
    assert (
        cli.main(["adapt", str(out), "--iterations", "1", "--envs-per-task", "2", "--no-progress", *env[2:]])
        == 0
    )


def test_train_reward_type_none_passes_no_reward_type(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert cli.main(["train", *TINY, "--reward-type", "none", "--output", str(out), "--no-progress"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))["env_kwargs"] == {}


@pytest.mark.parametrize("command", ["train", "adapt", "evaluate", "plot"])
def test_help_shows_each_default_once(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    options = capsys.readouterr().out.split("\n  -")[1:]
    assert options and all(option.count("(default") <= 1 for option in options), options


def test_progress_is_quiet_when_not_a_terminal_and_adapt_shows_its_work(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["evaluate", str(run), "--episodes", "2"]) == 0
    assert cli.main(["adapt", str(run), "--iterations", "1", "--envs-per-task", "2"]) == 0
    captured = capsys.readouterr()
    assert "%|" not in captured.err and "it/s" not in captured.err
    assert "3 test task(s) x 2 episodes x 2 iterations" in captured.out
    assert " env steps): about " in captured.out and " env steps/s of meta-training" in captured.out
    assert " s in all" in captured.out  # and refined after the first iteration
