"""The MuJoCo task families: task API, rewards, physics sanity, rendering, VecEnv use, reachability."""

from __future__ import annotations

import os

# rendering needs a headless OpenGL backend; Gymnasium reads MUJOCO_GL when the first frame is drawn
os.environ.setdefault("MUJOCO_GL", "egl")

import math
import pickle
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import SubprocVecEnv

import maesn_sb3
from maesn_sb3 import TaskSet, make_meta_vec_env
from maesn_sb3.envs.scripted import BlockPushController, WheeledNavController

WHEELED, ANT, BLOCK = "maesn_sb3/WheeledNav-v0", "maesn_sb3/AntGoal-v0", "maesn_sb3/BlockPush-v0"
MUJOCO_IDS = (WHEELED, ANT, BLOCK)
HORIZONS = {WHEELED: 200, ANT: 200, BLOCK: 100}
OBS_SIZES = {WHEELED: 12, ANT: 33, BLOCK: 26}
ROOT = Path(__file__).resolve().parents[1]


def _random_actions(env: gym.Env, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    space = env.action_space
    return rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(np.float32)


def test_families_are_registered_and_listed() -> None:
    families = maesn_sb3.list_envs()
    for env_id in MUJOCO_IDS:
        assert families.get(env_id)
        assert gym.spec(env_id).max_episode_steps == HORIZONS[env_id]


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
@pytest.mark.parametrize("reward_type", ["dense", "sparse"])
def test_check_env_and_spaces(env_id: str, reward_type: str) -> None:
    env = gym.make(env_id, reward_type=reward_type)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert obs.shape == (OBS_SIZES[env_id],) and obs.dtype == np.float32
    assert set(info) >= {"distance", "is_success"} and info["is_success"] is False


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_bad_arguments_raise_clear_errors(env_id: str) -> None:
    with pytest.raises(ValueError, match="reward_type"):
        gym.make(env_id, reward_type="shaped")
    with pytest.raises(ValueError, match="goal_radius"):
        gym.make(env_id, goal_radius=-1.0)
    with pytest.raises(ValueError, match="render_mode"):
        gym.make(env_id, render_mode="ascii")
    env = gym.make(env_id)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="task"):
        env.unwrapped.set_task({"goal": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="n must be"):
        env.unwrapped.sample_tasks(-1)
    with pytest.raises(ValueError, match="action must have shape"):
        env.unwrapped.step(np.zeros(env.action_space.shape[0] + 1))
    with pytest.raises(ValueError, match="action must be finite"):
        env.unwrapped.step(np.full(env.action_space.shape, np.nan))


def test_block_push_task_errors() -> None:
    env = gym.make(BLOCK).unwrapped
    task = env.sample_tasks(1)[0]
    with pytest.raises(ValueError, match="target"):
        env.set_task({**task, "target": 5})
    with pytest.raises(ValueError, match="layout"):
        env.set_task({**task, "layout": np.zeros((4, 2))})


@pytest.mark.parametrize("env_id", [WHEELED, ANT])
def test_semicircle_task_sets(env_id: str) -> None:
    tasks = TaskSet.from_env(env_id, n_train=100, n_test=100, seed=0)
    again = TaskSet.from_env(env_id, n_train=100, n_test=100, seed=0)
    other = TaskSet.from_env(env_id, n_train=100, n_test=100, seed=1)
    goals = np.array([t["goal"] for t in tasks.train + tasks.test])
    assert goals.shape == (200, 2)
    np.testing.assert_allclose(np.linalg.norm(goals, axis=1), 2.0)
    assert np.all(goals[:, 1] >= 0) and goals[:, 0].min() < -1.5 and goals[:, 0].max() > 1.5
    np.testing.assert_array_equal(goals, [t["goal"] for t in again.train + again.test])
    assert not np.allclose(goals, [t["goal"] for t in other.train + other.test])


def test_block_push_task_set_is_20_layouts_by_5_targets() -> None:
    tasks = TaskSet.from_env(BLOCK, n_train=100, n_test=100, seed=0)
    for split in (tasks.train, tasks.test):
        layouts = {t["layout"].tobytes() for t in split}
        assert len(layouts) == 20
        for k in range(0, 100, 5):
            group = split[k : k + 5]
            assert [t["target"] for t in group] == [0, 1, 2, 3, 4]
            assert all(np.array_equal(t["layout"], group[0]["layout"]) for t in group)
    assert not {t["layout"].tobytes() for t in tasks.train} & {t["layout"].tobytes() for t in tasks.test}
    for task in tasks.train + tasks.test:
        layout, goal, target = task["layout"], task["goal"], task["target"]
        assert np.all((layout[:, 0] >= 0.35) & (layout[:, 0] <= 0.65))
        for i in range(5):
            assert -0.5 + 0.2 * i <= layout[i, 1] <= -0.3 + 0.2 * i
        assert np.all(np.diff(layout[:, 1]) >= 0.1)  # no two blocks overlap
        assert 0.75 <= goal[0] <= 0.95 and -0.5 + 0.2 * target <= goal[1] <= -0.3 + 0.2 * target


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_goal_is_not_in_the_observation(env_id: str) -> None:
    env = gym.make(env_id)
    unwrapped = env.unwrapped
    env.reset(seed=0)
    tasks = unwrapped.sample_tasks(5)
    if env_id == BLOCK:  # same layout, other target and goal
        tasks = [tasks[0], {**tasks[3], "layout": tasks[0]["layout"]}]
    rollouts = []
    for task in tasks[:2]:
        unwrapped.set_task(task)
        obs, _ = env.reset(seed=7)
        trajectory = [obs]
        for action in _random_actions(env, 20):
            trajectory.append(env.step(action)[0])
        rollouts.append(np.array(trajectory))
    assert not np.array_equal(tasks[0]["goal"], tasks[1]["goal"])
    np.testing.assert_array_equal(rollouts[0], rollouts[1])


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_same_seed_same_trajectory(env_id: str) -> None:
    def rollout(seed: int) -> tuple[np.ndarray, np.ndarray]:
        env = gym.make(env_id)
        env.reset(seed=seed)
        env.unwrapped.set_task(env.unwrapped.sample_tasks(1)[0])
        obs, _ = env.reset()
        observations, rewards = [obs], []
        for action in _random_actions(env, 30, seed=seed):
            obs, reward, terminated, _, _ = env.step(action)
            observations.append(obs)
            rewards.append(reward)
            if terminated:
                break
        return np.array(observations), np.array(rewards)

    first, second, other = rollout(3), rollout(3), rollout(4)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_info_reports_the_sparse_reward_whatever_the_reward_type(env_id: str) -> None:
    """``info["sparse_reward"]`` of a dense env is the reward a sparse env gives on the same steps."""

    def rollout(reward_type: str) -> tuple[list[float], list[float]]:
        env = gym.make(env_id, reward_type=reward_type)
        env.reset(seed=1)
        env.unwrapped.set_task(env.unwrapped.sample_tasks(1)[0])
        env.reset(seed=1)
        rewards, sparse = [], []
        for action in _random_actions(env, 20, seed=1):
            _, reward, terminated, _, info = env.step(action)
            rewards.append(reward)
            sparse.append(info["sparse_reward"])
            if terminated:
                break
        return rewards, sparse

    dense_rewards, sparse_in_dense = rollout("dense")
    sparse_rewards, sparse_in_sparse = rollout("sparse")
    assert sparse_in_dense == sparse_rewards == sparse_in_sparse
    assert dense_rewards != sparse_rewards  # the goal is far: the two rewards differ


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_pickle_round_trip(env_id: str) -> None:
    env = gym.make(env_id, reward_type="sparse").unwrapped
    clone = pickle.loads(pickle.dumps(env))
    assert type(clone) is type(env) and clone.reward_type == "sparse"
    obs, _ = clone.reset(seed=0)
    assert obs.shape == env.observation_space.shape


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_render_one_frame_showing_the_goal(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array", width=96, height=96)
    unwrapped = env.unwrapped
    env.reset(seed=0)
    tasks = unwrapped.sample_tasks(5)
    unwrapped.set_task(tasks[0])
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (96, 96, 3) and frame.dtype == np.uint8
    assert frame.std() > 5  # not a blank image
    # the goal marker is in view: moving the goal changes the picture
    unwrapped.set_task({**tasks[0], "goal": tasks[0]["goal"] * np.array([-1.0, 1.0]) + [0.0, -0.1]})
    assert np.abs(env.render().astype(int) - frame).sum() > 0
    env.close()


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_meta_task_vec_env_with_subprocess_workers(env_id: str) -> None:
    tasks = TaskSet.from_env(env_id, n_train=2, n_test=0, seed=0)
    venv = make_meta_vec_env(
        env_id,
        n_tasks=2,
        envs_per_task=1,
        seed=0,
        tasks=tasks,
        latent_dim=2,
        vec_env_cls=SubprocVecEnv,
        vec_env_kwargs={"start_method": "forkserver"},
    )
    try:
        obs = venv.reset()
        assert obs.shape == (2, OBS_SIZES[env_id] + 2)
        for k in range(2):
            assert np.array_equal(venv.env_method("get_task", indices=[k])[0]["goal"], tasks.train[k]["goal"])
        actions = np.stack([venv.action_space.sample() for _ in range(2)])
        obs, rewards, _, infos = venv.step(actions)
        assert rewards.shape == (2,) and [info["task_index"] for info in infos] == [0, 1]
        assert all("distance" in info and "is_success" in info for info in infos)
    finally:
        venv.close()


# -- physics sanity ---------------------------------------------------------------------------------


def _run(env: gym.Env, action: np.ndarray, steps: int) -> list[np.ndarray]:
    observations = []
    for _ in range(steps):
        obs, _, terminated, _, _ = env.step(action)
        observations.append(obs)
        assert not terminated
    return observations


def test_wheeled_equal_torques_drive_forward_opposite_torques_turn_in_place() -> None:
    env = gym.make(WHEELED, reset_noise_scale=0.0)
    env.reset(seed=0)
    obs = _run(env, np.array([2.0, 2.0]), 40)[-1]
    x, y, yaw = obs[0], obs[1], obs[3]
    assert x > 1.0 and abs(y) < 0.02 and abs(yaw) < 0.02  # straight ahead along +x
    env.reset(seed=0)
    obs = _run(env, np.array([-1.0, 1.0]), 20)[-1]
    assert obs[3] > 1.0  # yaw grew (counter-clockwise turn) ...
    assert math.hypot(obs[0], obs[1]) < 0.05  # ... on the spot
    env.reset(seed=0)
    obs = _run(env, np.zeros(2), 40)[-1]
    assert np.abs(obs[[0, 1, 3]]).max() < 1e-3  # at rest it stays put


def test_ant_stands_under_zero_action_for_one_horizon() -> None:
    env = gym.make(ANT)
    env.reset(seed=0)
    heights = [obs[2] for obs in _run(env, np.zeros(8), HORIZONS[ANT])]
    assert 0.4 < min(heights) and max(heights) < 0.9  # well inside the healthy range [0.2, 1]
    # the foot sensors carry the weight: normalised contact forces sum to about 1
    obs = env.step(np.zeros(8))[0]
    assert abs(obs[29:].sum() - 1.0) < 0.05 and np.all(obs[29:] > 0.1)


def test_ant_terminates_when_the_torso_leaves_the_height_range() -> None:
    env = gym.make(ANT, reset_noise_scale=0.0)
    env.reset(seed=0)
    unwrapped = env.unwrapped
    qpos, qvel = unwrapped.data.qpos.copy(), unwrapped.data.qvel.copy()
    qpos[2] = 1.6  # lifted above the range: it falls but is still out of range after one step
    unwrapped.set_state(qpos, qvel)
    assert env.step(np.zeros(8))[2] is True


def test_block_push_gripper_moves_only_the_block_it_hits() -> None:
    env = gym.make(BLOCK)
    unwrapped = env.unwrapped
    env.reset(seed=0)
    task = unwrapped.sample_tasks(5)[2]  # middle block, y band [-0.1, 0.1]
    unwrapped.set_task(task)
    obs, _ = env.reset(seed=0)
    layout = obs[3:13].reshape(5, 2).copy()
    np.testing.assert_allclose(layout, task["layout"], atol=1e-6)

    def drive_to(obs: np.ndarray, x: float, y: float) -> np.ndarray:  # PD on x, y; wrist held at 0
        return np.clip(
            [6 * (x - obs[0]) - 0.3 * obs[13], 6 * (y - obs[1]) - 0.3 * obs[14], -4 * obs[2]], -1, 1
        )

    y = layout[2, 1]
    for _ in range(20):  # line up below the blocks (x = 0.2) ...
        obs, *_ = env.step(drive_to(obs, 0.2, y))
    np.testing.assert_allclose(obs[3:13].reshape(5, 2), layout, atol=1e-9)  # nothing touched yet
    for _ in range(20):  # ... then drive through the middle block's position along +x
        obs, *_ = env.step(drive_to(obs, 1.2, y))
    blocks = obs[3:13].reshape(5, 2)
    assert blocks[2, 0] > layout[2, 0] + 0.3 and abs(blocks[2, 1] - y) < 0.02
    others = [0, 1, 3, 4]
    np.testing.assert_allclose(blocks[others], layout[others], atol=1e-6)


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_sparse_reward_switches_exactly_at_the_success_radius(env_id: str) -> None:
    kwargs = {} if env_id == BLOCK else {"reset_noise_scale": 0.0}
    env = gym.make(env_id, reward_type="sparse", **kwargs)
    unwrapped = env.unwrapped
    radius = unwrapped.goal_radius
    env.reset(seed=0)
    task = unwrapped.sample_tasks(1)[0]
    unwrapped.set_task(task)
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape)
    for _ in range(30):  # settle (the ant and the car come to rest)
        env.step(zero)
    if env_id == BLOCK:
        index = 3 + 2 * task["target"]
        point = unwrapped.data.qpos[index : index + 2].copy()
    else:
        point = unwrapped.data.qpos[:2].copy()
    direction = np.array([0.6, 0.8])
    results = {}
    for side, offset in (("inside", -1e-4), ("outside", 1e-4)):
        state = (unwrapped.data.qpos.copy(), unwrapped.data.qvel.copy())
        goal = point + (radius + offset) * direction
        unwrapped.set_task({**task, "goal": goal})
        _, reward, _, _, info = env.step(zero)
        results[side] = (reward, info)
        unwrapped.set_state(*state)
    reward_in, info_in = results["inside"]
    reward_out, info_out = results["outside"]
    assert info_in["distance"] < radius < info_out["distance"]
    assert abs(info_in["distance"] - (radius - 1e-4)) < 5e-5  # the body did not move
    assert info_in["is_success"] is True
    if env_id == WHEELED:
        assert reward_in == pytest.approx(-info_in["distance"])
        assert reward_out == pytest.approx(-np.linalg.norm(point + (radius + 1e-4) * direction))
    elif env_id == BLOCK:
        assert reward_in == pytest.approx(-5 * info_in["distance"])
        assert reward_out == pytest.approx(-5 * np.linalg.norm(point + (radius + 1e-4) * direction))
    else:  # ant: only the goal term changes; the costs and the survival bonus are the same
        goal_in = point + (radius - 1e-4) * direction
        goal_out = point + (radius + 1e-4) * direction
        pos = unwrapped.data.qpos[:2]
        costs = reward_in - (4.0 - np.abs(pos - goal_in).sum())
        assert reward_out == pytest.approx(4.0 - np.abs(goal_out).sum() + costs, abs=1e-6)


# -- reachability -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "controller"), [(WHEELED, WheeledNavController), (BLOCK, BlockPushController)]
)
def test_scripted_controller_reaches_held_out_goals(env_id: str, controller: type) -> None:
    tasks = TaskSet.from_env(env_id, n_train=100, n_test=100, seed=0).test[::10]
    env = gym.make(env_id)
    reached = 0
    for k, task in enumerate(tasks):
        env.unwrapped.set_task(task)
        obs, _ = env.reset(seed=k)
        act = controller(task)
        truncated = False
        while not truncated:
            obs, _, _, truncated, info = env.step(act(obs))
        reached += info["is_success"]
    assert reached >= 0.9 * len(tasks)


def test_example_trains_and_writes_an_image_strip(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_ppo_wheeled.py"), "--timesteps", "256",
         "--n-tasks", "2", "--envs-per-task", "1", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    strip = tmp_path / "wheeled_nav_strip.png"
    assert strip.exists() and strip.stat().st_size > 1000
    assert (tmp_path / "ppo_wheeled_nav.zip").exists()
