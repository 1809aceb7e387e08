"""MAESN runs through rl-zoo3's ``train`` with the shipped hyperparameters (rl-zoo3 is a dev extra)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from maesn_sb3 import MAESN, MetaTaskVecEnv, make_meta_vec_env, zoo
from maesn_sb3.envs import TASK_FAMILIES


def test_register_adds_the_algorithms_to_the_zoo() -> None:
    from rl_zoo3 import ALGOS as exported
    from rl_zoo3.exp_manager import ALGOS as used_by_experiments

    zoo.register()
    zoo.register()  # idempotent
    for table in (exported, used_by_experiments):
        assert table["maesn"] is MAESN and "lsbaseline" in table and "ppo" in table


def test_hyperparameter_file_covers_every_task_family() -> None:
    params = yaml.safe_load(Path(zoo.HYPERPARAMS).read_text(encoding="utf-8"))
    assert set(params) == set(TASK_FAMILIES)
    for entry in params.values():
        per_task = entry["vec_env_wrapper"][0]["maesn_sb3.zoo.meta_tasks"]["envs_per_task"]
        assert entry["n_envs"] % per_task == 0


def test_meta_tasks_lays_out_slots_and_names_bad_counts() -> None:
    venv = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=1, envs_per_task=6, latent_dim=2, seed=0).venv
    meta = zoo.meta_tasks(venv, envs_per_task=3)
    assert isinstance(meta, MetaTaskVecEnv) and (meta.n_tasks, meta.envs_per_task) == (2, 3)
    with pytest.raises(ValueError, match="not a multiple of envs_per_task=4"):
        zoo.meta_tasks(venv, envs_per_task=4)
    with pytest.raises(ValueError, match="envs_per_task must be an int >= 1, got 0"):
        zoo.meta_tasks(venv, envs_per_task=0)
    venv.close()


def test_zoo_train_runs_maesn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    zoo.main(
        [
            "--algo", "maesn", "--env", "maesn_sb3/PointNav2D-v0", "-f", str(tmp_path / "logs"),
            "-n", "1000", "--seed", "3", "--num-threads", "1",
            "-params", "n_envs:10", "n_train_tasks:6",
            "vec_env_wrapper:[{'maesn_sb3.zoo.meta_tasks': {'envs_per_task': 5}}]",
        ]
    )  # fmt: skip
    run = tmp_path / "logs" / "maesn" / "maesn_sb3-PointNav2D-v0_1"
    model = MAESN.load(run / "maesn_sb3-PointNav2D-v0.zip")
    assert model.num_timesteps >= 1000 and model.latent_dim == 2 and len(model.task_set.train) == 6
    config = yaml.unsafe_load((run / "maesn_sb3-PointNav2D-v0" / "config.yml").read_text(encoding="utf-8"))
    assert dict(config)["n_train_tasks"] == 6
