"""Task families shipped with maesn-sb3, registered with Gymnasium under ``maesn_sb3/``."""

from __future__ import annotations

import gymnasium as gym

from maesn_sb3.envs.point_nav import PointNav2DEnv

#: Registered task families: env id -> one-line description.
TASK_FAMILIES: dict[str, str] = {
    "maesn_sb3/PointNav2D-v0": "2D point, goals on a semicircle of radius 1 (numpy, fast), horizon 50",
    "maesn_sb3/WheeledNav-v0": "MuJoCo two-wheeled car, goals on a semicircle of radius 2, horizon 200",
    "maesn_sb3/AntGoal-v0": "MuJoCo ant (gear 30), goals on a semicircle of radius 2, horizon 200",
    "maesn_sb3/BlockPush-v0": "MuJoCo planar gripper pushes 1 of 5 blocks to a goal, horizon 100",
}

#: env id -> (entry point, horizon, vector entry point: the natively batched family)
_ENTRY_POINTS: dict[str, tuple[str, int, str | None]] = {
    "maesn_sb3/PointNav2D-v0": (
        "maesn_sb3.envs.point_nav:PointNav2DEnv",
        50,
        "maesn_sb3.envs.point_nav_vector:PointNav2DVectorEnv",
    ),
    # MuJoCo families: string entry points, so importing maesn_sb3 does not import MuJoCo rendering
    "maesn_sb3/WheeledNav-v0": (
        "maesn_sb3.envs.wheeled_nav:WheeledNavEnv",
        200,
        "maesn_sb3.envs.mujoco_vector:WheeledNavVectorEnv",
    ),
    "maesn_sb3/AntGoal-v0": (
        "maesn_sb3.envs.ant_goal:AntGoalEnv",
        200,
        "maesn_sb3.envs.mujoco_vector:AntGoalVectorEnv",
    ),
    "maesn_sb3/BlockPush-v0": (
        "maesn_sb3.envs.block_push:BlockPushEnv",
        100,
        "maesn_sb3.envs.mujoco_vector:BlockPushVectorEnv",
    ),
}


def register_envs() -> None:
    """Register every task family with Gymnasium (done on import; safe to call twice)."""
    for env_id, (entry_point, horizon, vector_entry_point) in _ENTRY_POINTS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                max_episode_steps=horizon,
                vector_entry_point=vector_entry_point,
            )


def list_envs() -> dict[str, str]:
    """The task families with a one-line description each."""
    return dict(TASK_FAMILIES)


register_envs()

__all__ = ["TASK_FAMILIES", "PointNav2DEnv", "list_envs", "register_envs"]
