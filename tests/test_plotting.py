"""Exploration, adaptation and learning plots: figures with the right content, seeded, bad inputs named."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from matplotlib.figure import Figure

from maesn_sb3 import MAESN, AdaptationResult, TaskSet, make_meta_vec_env
from maesn_sb3.plotting import (
    exploration_paths,
    plot_adaptation_curve,
    plot_exploration,
    plot_learning_curve,
    read_progress,
)
from wrappers import LatentWrapper

ENV_ID = "maesn_sb3/PointNav2D-v0"


@pytest.fixture(scope="module")
def setup() -> tuple[MAESN, TaskSet, AdaptationResult]:
    tasks = TaskSet.from_env(ENV_ID, n_train=4, n_test=2, seed=0)
    env = make_meta_vec_env(ENV_ID, n_tasks=2, envs_per_task=2, latent_dim=2, seed=0, tasks=tasks)
    model = MAESN("MlpPolicy", env, task_set=tasks, seed=0).learn(400)
    test_env = make_meta_vec_env(
        ENV_ID, n_tasks=2, envs_per_task=3, latent_dim=2, seed=1, tasks=tasks.test,
        env_kwargs={"reward_type": "sparse"},
    )  # fmt: skip
    return model, tasks, model.adapt(test_env, n_iterations=2)


def test_paths_follow_the_latent_and_are_seeded(setup: tuple[MAESN, TaskSet, AdaptationResult]) -> None:
    model, tasks, _ = setup
    latents = np.array([[2.0, -2.0], [-2.0, 2.0], [2.0, -2.0]])
    paths = exploration_paths(model, ENV_ID, latents, deterministic=True, task=tasks.test[0])
    assert [p.shape for p in paths] == [(51, 2)] * 3  # horizon 50 plus the start
    assert np.allclose(paths[0][0], 0) and not np.allclose(paths[0], paths[1])
    # mean actions with one latent give one path, whatever the reset seed (the start is fixed)
    assert np.allclose(paths[0], paths[2])
    noisy = [exploration_paths(model, ENV_ID, latents[:2], deterministic=False, seed=5) for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*noisy, strict=True))  # same seed, same noise


def test_exploration_figure_has_the_papers_panels(
    setup: tuple[MAESN, TaskSet, AdaptationResult], tmp_path: Path
) -> None:
    model, tasks, result = setup
    fig = plot_exploration(model, ENV_ID, task=tasks.test[1], n_latents=4, adaptation=result, task_slot=1,
                           goal_radius=0.2)  # fmt: skip
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    structured, noise, latent = fig.axes
    assert "prior" in structured.get_title() and "action noise" in noise.get_title()
    assert "adaptation" in latent.get_title()
    # 4 paths (+ end markers), the start, the goal and the adapted path
    assert sum(len(line.get_xdata()) == 51 for line in structured.lines) == 5
    assert sum(len(line.get_xdata()) == 51 for line in noise.lines) == 4
    assert np.allclose(latent.collections[0].get_offsets(), result.latent_means[:, 1])
    fig.savefig(tmp_path / "x.png")
    assert plot_exploration(model, ENV_ID, n_latents=2).axes.__len__() == 2  # without adaptation


def test_paths_default_to_what_the_reward_scores() -> None:
    """BlockPush's paths are the target block's (its reward scores the block), not the gripper's."""
    block_id = "maesn_sb3/BlockPush-v0"
    tasks = TaskSet.from_env(block_id, n_train=5, n_test=5, seed=0)
    env = make_meta_vec_env(block_id, n_tasks=1, envs_per_task=1, latent_dim=2, seed=0, tasks=tasks)
    model = MAESN("MlpPolicy", env, task_set=tasks, seed=0)
    task = tasks.test[3]
    target = (3 + 2 * task["target"], 4 + 2 * task["target"])
    paths = {
        xy: exploration_paths(model, block_id, np.zeros((1, 2)), deterministic=False, task=task, xy=xy)[0]
        for xy in (None, target, (0, 1))
    }
    assert np.array_equal(paths[None], paths[target])
    assert np.allclose(paths[None][0], task["layout"][task["target"]], atol=1e-6)  # starts at the layout
    assert np.allclose(paths[(0, 1)][0], 0)  # the gripper starts at the origin


def test_exploration_rejects_bad_inputs(setup: tuple[MAESN, TaskSet, AdaptationResult]) -> None:
    model, _, result = setup
    with pytest.raises(ValueError, match="n_latents must be an int >= 1, got 0"):
        plot_exploration(model, ENV_ID, n_latents=0)
    with pytest.raises(ValueError, match=r"task_slot must lie in \[0, 2\), got 2"):
        plot_exploration(model, ENV_ID, adaptation=result, task_slot=2)
    with pytest.raises(ValueError, match="latents must have shape"):
        exploration_paths(model, ENV_ID, np.zeros((2, 3)), deterministic=True)
    with pytest.raises(ValueError, match="without a LatentWrapper"):
        exploration_paths(model, LatentWrapper(gym.make(ENV_ID), 2), np.zeros((1, 2)), deterministic=True)
    with pytest.raises(ValueError, match="was it trained on another env"):
        exploration_paths(model, "maesn_sb3/WheeledNav-v0", np.zeros((1, 2)), deterministic=True)
    with pytest.raises(ValueError, match="xy must be two observation indices"):
        exploration_paths(model, ENV_ID, np.zeros((1, 2)), deterministic=True, xy=(0,))


def test_adaptation_curve_compares_results(setup: tuple[MAESN, TaskSet, AdaptationResult]) -> None:
    _, _, result = setup
    fig = plot_adaptation_curve({"MAESN": result, "other": result}, x="env_steps")
    success, returns = fig.axes
    assert len(returns.lines) == 4 and np.allclose(returns.lines[0].get_ydata(), result.mean_return)
    assert len(success.lines) == 4 and np.array_equal(success.lines[0].get_xdata(), result.env_steps)
    assert np.allclose(success.lines[0].get_ydata(), result.mean_success)
    with pytest.raises(ValueError, match="x must be 'iteration' or 'env_steps', got 'time'"):
        plot_adaptation_curve(result, x="time")
    with pytest.raises(TypeError, match="results\\['a'\\] must be an AdaptationResult"):
        plot_adaptation_curve({"a": 1})


def test_learning_curve_from_progress_csv(tmp_path: Path) -> None:
    path = tmp_path / "progress.csv"
    path.write_text(
        "time/total_timesteps,rollout/post_update_return,rollout/post_update_success,train/trpo_kl\n"
        "100,-5.0,0.0,0.01\n200,-3.0,0.5,\n",
        encoding="utf-8",
    )
    columns = read_progress(path)
    assert np.isnan(columns["train/trpo_kl"][1])
    returns, success = plot_learning_curve(path).axes
    assert np.array_equal(returns.lines[0].get_ydata(), [-5.0, -3.0])
    assert np.array_equal(success.lines[0].get_ydata(), [0.0, 0.5])
    with pytest.raises(ValueError, match="none of"):
        plot_learning_curve(path, keys=("rollout/nothing",))
    with pytest.raises(FileNotFoundError, match="no progress file"):
        read_progress(tmp_path / "missing.csv")
