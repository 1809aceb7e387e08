"""Hand-written controllers that know the task: reachability checks and demonstrations.

They read only the observation and the task they are given (which the agent never sees), so they
show that every task of a family can be solved within the horizon.

Example:
    >>> import gymnasium as gym
    >>> import maesn_sb3
    >>> from maesn_sb3.envs.scripted import WheeledNavController
    >>> env = gym.make("maesn_sb3/WheeledNav-v0")
    >>> task = env.unwrapped.sample_tasks(1)[0]
    >>> env.unwrapped.set_task(task)
    >>> obs, info = env.reset(seed=0)
    >>> controller = WheeledNavController(task)
    >>> for _ in range(200):
    ...     obs, reward, terminated, truncated, info = env.step(controller(obs))
    >>> bool(info["is_success"])
    True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["BlockPushController", "WheeledNavController"]


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class WheeledNavController:
    """Turn towards the goal, then drive at it: ``left = v - w``, ``right = v + w``.

    :param task: the ``WheeledNav`` task (``{"goal": (2,)}``).
    :param max_torque: the wheel torque limit (the env's control range).
    """

    def __init__(self, task: dict[str, Any], max_torque: float = 2.0) -> None:
        self.goal = np.asarray(task["goal"], dtype=np.float64)
        self.max_torque = float(max_torque)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x, y, yaw = float(obs[0]), float(obs[1]), float(obs[3])
        dx, dy = self.goal[0] - x, self.goal[1] - y
        if math.hypot(dx, dy) < 0.1:
            return np.zeros(2, dtype=np.float32)
        error = _wrap(math.atan2(dy, dx) - yaw)
        turn = float(np.clip(3.0 * error - 0.3 * float(obs[9]), -self.max_torque, self.max_torque))
        forward = self.max_torque * max(0.0, math.cos(error)) ** 3
        action = np.clip([forward - turn, forward + turn], -self.max_torque, self.max_torque)
        return action.astype(np.float32)


class BlockPushController:
    """Line the gripper up behind the target block, then push it along the block-goal line.

    The push direction ``u`` is fixed from the task (the target's start position to the goal). While
    the block does not sit between the fingers, the gripper goes to a staging point ``0.16`` behind
    the block along ``u`` (changing lanes only below x = 0.25, clear of all blocks) and closes in;
    once the block is cradled, the gripper pushes it until it has passed the goal along ``u``.

    :param task: the ``BlockPush`` task (``{"layout", "target", "goal"}``).
    """

    def __init__(self, task: dict[str, Any]) -> None:
        self.target = int(task["target"])
        self.goal = np.asarray(task["goal"], dtype=np.float64)
        start = np.asarray(task["layout"], dtype=np.float64)[self.target]
        delta = self.goal - start
        self.u = delta / max(np.linalg.norm(delta), 1e-9)
        self.angle = math.atan2(self.u[1], self.u[0])

    def _drive(
        self, position: np.ndarray, velocity: np.ndarray, target: np.ndarray, gain: float = 6.0
    ) -> np.ndarray:
        return np.clip(gain * (target - position) - 0.3 * velocity, -1.0, 1.0)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        gripper, angle = obs[0:2], obs[2]
        gripper_vel, angle_vel = obs[13:15], obs[15]
        i = 3 + 2 * self.target
        block = obs[i : i + 2]
        u = self.u
        lateral = np.array([-u[1], u[0]])
        rel = block - gripper
        along, across = float(rel @ u), float(rel @ lateral)
        wrist = float(np.clip(4.0 * _wrap(self.angle - angle) - 0.2 * angle_vel, -1.0, 1.0))
        cradled = 0.02 < along < 0.1 and abs(across) < 0.03 and abs(_wrap(self.angle - angle)) < 0.3
        if cradled:
            if float((self.goal - block) @ u) < 0.01:
                move = self._drive(gripper, gripper_vel, gripper)  # the block is there: hold still
            else:
                # aim past the goal so the gripper keeps pushing at speed, steering the lateral error
                aim = self.goal - 0.04 * u + 0.1 * u - 0.5 * across * lateral
                move = self._drive(gripper, gripper_vel, aim)
        else:
            in_line = 0.03 < along < 0.3 and abs(across) < 0.02
            staging = block - 0.16 * u
            if in_line:
                target = block - 0.04 * u  # close in on the block
            elif abs(gripper[1] - staging[1]) <= 0.03 or staging[0] <= 0.25:
                target = staging
            elif gripper[0] > 0.27:
                target = np.array([0.22, gripper[1]])  # back out of the block area first
            else:
                target = np.array([0.22, staging[1]])  # move sideways below the blocks
            move = self._drive(gripper, gripper_vel, target)
        return np.array([move[0], move[1], wrist], dtype=np.float32)
