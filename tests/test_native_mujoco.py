"""Batched MuJoCo families: bit-identical to the single envs, on mujoco.batch and on the MjData loop."""

from __future__ import annotations

import os

# rendering needs a headless OpenGL backend; Gymnasium reads MUJOCO_GL when the first frame is drawn
os.environ.setdefault("MUJOCO_GL", "egl")

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import maesn_sb3  # noqa: F401  (registers the envs)
from maesn_sb3.envs import _mujoco_vector
from maesn_sb3.envs.mujoco_vector import AntGoalVectorEnv, BlockPushVectorEnv, WheeledNavVectorEnv
from maesn_sb3.validators import available_cores
from tests._vector_equality import compare_rollouts, single_envs

needs_batch = pytest.mark.skipif(not _mujoco_vector.HAS_MUJOCO_BATCH, reason="needs mujoco.batch")
PHYSICS = [
    pytest.param({"use_mujoco_batch": True, "threads": 2}, id="batch-2threads", marks=needs_batch),
    pytest.param({"use_mujoco_batch": False}, id="loop"),
]


def set_task(native: Any, reference: Any, i: int, task: Any) -> None:
    native.unwrapped.set_task(task, indices=[i])
    reference.unwrapped.envs[i].unwrapped.set_task(task)


def goal_tasks(seed: int, n: int) -> list[dict[str, np.ndarray]]:
    # half near the start (success at once or soon), half on the paper's semicircle
    rng = np.random.default_rng(seed)
    near = [{"goal": rng.uniform(-0.5, 0.5, 2)} for _ in range(n // 2)]
    angles = rng.uniform(0, np.pi, n - n // 2)
    return near + [{"goal": 2.0 * np.array([np.cos(a), np.sin(a)])} for a in angles]


CASES = [
    ("maesn_sb3/WheeledNav-v0", {"reward_type": "sparse"}, goal_tasks),
    ("maesn_sb3/WheeledNav-v0", {"reward_type": "dense", "reset_noise_scale": 0.1}, goal_tasks),
    ("maesn_sb3/AntGoal-v0", {"reward_type": "dense"}, goal_tasks),
    ("maesn_sb3/AntGoal-v0", {"reward_type": "sparse", "healthy_z_range": (0.55, 1.0)}, goal_tasks),
    ("maesn_sb3/BlockPush-v0", {"reward_type": "dense", "goal_radius": 0.6}, None),
]


@pytest.mark.parametrize("physics", PHYSICS)
@pytest.mark.parametrize(("env_id", "kwargs", "make_tasks"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_batch_equals_single_envs(
    env_id: str, kwargs: dict, make_tasks: Any, physics: dict, seed: int
) -> None:
    kwargs = {**kwargs, "max_episode_steps": 9}
    native = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point", **kwargs, **physics)
    reference = single_envs(env_id, 4, **kwargs)
    assert native.unwrapped.physics.__class__.__name__ == (
        "Physics" if physics["use_mujoco_batch"] else "LoopPhysics"
    )
    if make_tasks is None:  # BlockPush: the family's own tasks, drawn as the single env draws them
        native.reset(seed=seed)
        reference.reset(seed=seed)
        tasks = native.unwrapped.sample_tasks(4, index=1)
        expected = reference.envs[1].unwrapped.sample_tasks(4)
        for a, b in zip(tasks, expected, strict=True):
            np.testing.assert_array_equal(a["layout"], b["layout"])
            assert a["target"] == b["target"]
    else:
        tasks = make_tasks(seed, 4)
    ended = compare_rollouts(native, reference, tasks, seed, steps=20, set_task=set_task)
    assert ended >= 8  # every env went through a reset (time limit 9, or the ant's fall)


@pytest.mark.determinism
@needs_batch
def test_threads_give_the_same_results_and_default_to_the_cores() -> None:
    outs = []
    for threads in (1, 2):
        envs = AntGoalVectorEnv(num_envs=6, threads=threads)
        envs.reset(seed=3)
        rng = np.random.default_rng(0)
        for _ in range(5):
            out = envs.step(rng.uniform(-1, 1, (6, 8)).astype(np.float32))
        outs.append(out[0])
    np.testing.assert_array_equal(outs[0], outs[1])
    assert WheeledNavVectorEnv(num_envs=2).threads == available_cores()


def test_fallback_when_mujoco_has_no_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """MuJoCo 3.3 (no mujoco.batch): the loop is the default and asking for the batch is an error."""
    monkeypatch.setattr(_mujoco_vector, "HAS_MUJOCO_BATCH", False)
    monkeypatch.setattr(_mujoco_vector, "_Batch", None)
    envs = WheeledNavVectorEnv(num_envs=2)
    assert isinstance(envs.physics, _mujoco_vector.LoopPhysics) and envs.threads == 1
    with pytest.raises(ValueError, match=r"use_mujoco_batch=True needs mujoco.batch \(MuJoCo >= 4\)"):
        WheeledNavVectorEnv(num_envs=2, use_mujoco_batch=True)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: WheeledNavVectorEnv(num_envs=2, threads=0),
            ValueError,
            "threads must be an int >= 1, got 0",
        ),
        (
            lambda: AntGoalVectorEnv(num_envs=2, threads=1.5),
            ValueError,
            "threads must be an int >= 1, got 1.5",
        ),
        (lambda: WheeledNavVectorEnv(num_envs=2, goal_radius=-1), ValueError, "goal_radius must be a finite"),
        (
            lambda: BlockPushVectorEnv(num_envs=2).set_task({"goal": [0.8, 0]}),
            ValueError,
            "task must be a dict",
        ),
        (
            lambda: BlockPushVectorEnv(num_envs=2).set_task(
                {"goal": [0.8, 0], "layout": np.zeros((5, 2)), "target": 7}
            ),
            ValueError,
            r"task\['target'\] must be an int in \[0, 5\), got 7",
        ),
        (
            lambda: AntGoalVectorEnv(num_envs=2).set_task({"layout": 1}),
            ValueError,
            "task must be a dict with keys",
        ),
        (
            lambda: AntGoalVectorEnv(num_envs=2).get_task(2),
            IndexError,
            r"index must be an int in \[0, 2\), got 2",
        ),
        (
            lambda: WheeledNavVectorEnv(num_envs=2).step(np.full((2, 2), np.nan, dtype=np.float32)),
            ValueError,
            "actions must be finite",
        ),
    ],
)
def test_bad_input(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_render_one_chosen_env() -> None:
    envs = WheeledNavVectorEnv(
        num_envs=3, render_mode="rgb_array", render_index=1, width=64, height=64, threads=1
    )
    single = gym.make("maesn_sb3/WheeledNav-v0", render_mode="rgb_array", width=64, height=64)
    task = {"goal": np.array([1.0, 1.5])}
    envs.set_task(task, indices=[1])
    single.unwrapped.set_task(task)
    envs.reset(seed=[0, 1, 2])
    single.reset(seed=1)
    action = np.array([1.0, 0.5], dtype=np.float32)
    for _ in range(3):
        envs.step(np.tile(action, (3, 1)))
        single.step(action)
    (frame,) = envs.render()
    # the batch draws the current state (mj_forward); a single env's data after mj_step holds the
    # kinematics one substep behind, so bring it to its current state first
    unwrapped = single.unwrapped
    unwrapped.set_state(unwrapped.data.qpos.copy(), unwrapped.data.qvel.copy())
    np.testing.assert_array_equal(frame, single.render())
    assert WheeledNavVectorEnv(num_envs=1, threads=1).render() is None
