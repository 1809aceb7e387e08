"""The batched MuJoCo families' plumbing: the physics of many envs, on ``mujoco.batch`` or in a loop.

``mujoco.batch.Batch`` (MuJoCo >= 4) steps many simulations of one model on a thread pool with the
GIL released, bit-identical to a loop of ``mj_step``. Without it (MuJoCo 3.3, which Meta-World pins)
the same object loops over one ``MjData`` per env, so every batched family works on both.
"""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np

from maesn_sb3.envs._goals import check_goal
from maesn_sb3.envs._vector_base import TaskVectorEnv
from maesn_sb3.envs.ant_goal import ant_goal_term
from maesn_sb3.validators import check_threads

try:  # MuJoCo >= 4
    from mujoco.batch import Batch as _Batch
except ImportError:  # pragma: no cover - MuJoCo 3.x
    _Batch = None

__all__ = [
    "HAS_MUJOCO_BATCH",
    "GoalMujocoVectorEnv",
    "LoopPhysics",
    "MujocoTaskVectorEnv",
    "Physics",
]

#: whether this MuJoCo has ``mujoco.batch`` (else the per-env ``MjData`` loop is used)
HAS_MUJOCO_BATCH = _Batch is not None


class LoopPhysics:
    """``num_envs`` simulations of ``model`` as one ``MjData`` each, stepped in a loop (the fallback).

    ``qpos``, ``qvel`` and ``sensordata`` are ``(num_envs, ...)`` arrays kept in step with the envs.
    """

    def __init__(self, model: mujoco.MjModel, num_envs: int, frame_skip: int) -> None:
        self.model, self.frame_skip, self.threads = model, frame_skip, 1
        self._datas = [mujoco.MjData(model) for _ in range(num_envs)]
        self.qpos = np.zeros((num_envs, model.nq))
        self.qvel = np.zeros((num_envs, model.nv))
        self.sensordata = np.zeros((num_envs, model.nsensordata))

    def _copy_out(self, i: int, data: mujoco.MjData) -> None:
        self.qpos[i], self.qvel[i], self.sensordata[i] = data.qpos, data.qvel, data.sensordata

    def reset(self, indices: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """As a single env's ``mj_resetData`` + ``set_state``: defaults, the state, ``mj_forward``."""
        for row, i in enumerate(indices.tolist()):
            data = self._datas[i]
            mujoco.mj_resetData(self.model, data)
            data.qpos[:], data.qvel[:] = qpos[row], qvel[row]
            mujoco.mj_forward(self.model, data)
            self._copy_out(i, data)

    def step(self, ctrl: np.ndarray) -> None:
        """Write the controls and advance every env by ``frame_skip`` ``mj_step``s."""
        for i, data in enumerate(self._datas):
            data.ctrl[:] = ctrl[i]
            mujoco.mj_step(self.model, data, nstep=self.frame_skip)
            self._copy_out(i, data)


class Physics(LoopPhysics):
    """The same on ``mujoco.batch.Batch``: ``threads`` threads, GIL released, bound live arrays."""

    def __init__(self, model: mujoco.MjModel, num_envs: int, frame_skip: int, threads: int) -> None:
        self.model, self.frame_skip, self.threads = model, frame_skip, threads
        self._batch = _Batch(model, num_envs, nthread=threads)
        self.qpos, self.qvel = self._batch.bind("qpos"), self._batch.bind("qvel")
        self._ctrl = self._batch.bind("ctrl")
        self.sensordata = self._batch.bind("sensordata")

    def reset(self, indices: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        self._batch.reset(indices, stage=mujoco.mjtStage.mjSTAGE_NONE)
        self.qpos[indices], self.qvel[indices] = qpos, qvel
        self._batch.forward(indices)

    def step(self, ctrl: np.ndarray) -> None:
        self._ctrl[:] = ctrl
        self._batch.step(nstep=self.frame_skip)


class MujocoTaskVectorEnv(TaskVectorEnv):
    """Base of the batched MuJoCo goal families: a single env (for its model, checks and rendering)
    and the physics of every env; goals ``(num_envs, 2)`` per env, reset noise from each env's generator.

    :param single: the single env this batch reproduces (its constructor checked the arguments).
    :param threads: threads of ``mujoco.batch`` (>= 1); default: the cores the process may use.
    :param use_mujoco_batch: False forces the per-env ``MjData`` loop (MuJoCo 3.x's path).
    """

    def __init__(
        self,
        single: Any,
        num_envs: int,
        max_episode_steps: int | None,
        render_index: int,
        threads: int | None,
        use_mujoco_batch: bool | None,
    ) -> None:
        self._single = single
        super().__init__(
            num_envs,
            single.observation_space,
            single.action_space,
            max_episode_steps,
            single.render_mode,
            render_index,
        )
        threads = check_threads("threads", threads)
        if use_mujoco_batch is None:
            use_mujoco_batch = HAS_MUJOCO_BATCH
        if use_mujoco_batch and not HAS_MUJOCO_BATCH:
            raise ValueError(
                f"use_mujoco_batch=True needs mujoco.batch (MuJoCo >= 4), this is MuJoCo {mujoco.__version__}"
            )
        model, frame_skip = single.model, single.frame_skip
        if use_mujoco_batch:
            self.physics: LoopPhysics = Physics(model, self.num_envs, frame_skip, threads)
        else:
            self.physics = LoopPhysics(model, self.num_envs, frame_skip)
        self.threads = self.physics.threads
        self.reward_type, self.sparse = single.reward_type, single.sparse
        self._init_qpos, self._init_qvel = single.init_qpos.copy(), single.init_qvel.copy()
        low, high = model.actuator_ctrlrange.T
        self._ctrl_low, self._ctrl_high = low.copy(), high.copy()
        self._reached = np.zeros(self.num_envs, dtype=np.bool_)
        self._distance = np.zeros(self.num_envs)

    # -- shared pieces --------------------------------------------------------------------------
    def sample_tasks(self, n: int, index: int = 0) -> list[Any]:
        """Draw ``n`` tasks with the single env's sampler from env ``index``'s generator."""
        self._single.np_random = self.env_np_random(index)
        return self._single.sample_tasks(n)

    def _noisy_states(self, indices: np.ndarray, noisy_qpos: np.ndarray, scale: float) -> tuple:
        """Initial states with the single env's reset noise, drawn from each env's generator in turn."""
        qpos = np.tile(self._init_qpos, (len(indices), 1))
        qvel = np.tile(self._init_qvel, (len(indices), 1))
        if scale > 0:
            for row, i in enumerate(indices.tolist()):
                rng = self.env_np_random(i)
                qpos[row, noisy_qpos] += scale * rng.standard_normal(noisy_qpos.size)
                qvel[row] += scale * rng.standard_normal(qvel.shape[1])
        return qpos, qvel

    def _controls(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``ctrl`` as the single env writes it and ``|clamped ctrl|^2`` summed in the single env's order."""
        ctrl = actions.astype(np.float64)
        if not np.all(np.isfinite(ctrl)):
            raise ValueError(f"actions must be finite, got {actions!r}")
        clamped = np.clip(ctrl, self._ctrl_low, self._ctrl_high)
        sq = np.zeros(self.num_envs)
        for j in range(clamped.shape[1]):  # left to right, as the single env's loop
            sq = sq + clamped[:, j] * clamped[:, j]
        return ctrl, sq

    @staticmethod
    def _hypot(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        # math.hypot per env, as the single env (numpy's hypot may round differently)
        return np.array([math.hypot(a, b) for a, b in zip(dx.tolist(), dy.tolist(), strict=True)])

    def _reset_info(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {"distance": self._distance[indices].copy(), "is_success": self._reached[indices].copy()}

    def _render_one(self, index: int) -> Any:
        # the current state after mj_forward (a single env's frame after mj_step shows the kinematics
        # one substep behind: the same picture to within a few pixels)
        single = self._single
        single.set_task(self.get_task(index))
        single.set_state(self.physics.qpos[index].copy(), self.physics.qvel[index].copy())
        return single.render()

    def close_extras(self, **kwargs: Any) -> None:
        self._single.close()


class GoalMujocoVectorEnv(MujocoTaskVectorEnv):
    """Goal on a semicircle, goal as ``(x, y)`` of ``qpos[:2]``: WheeledNav's and AntGoal's task API."""

    def _init_goals(self) -> None:
        self._goals = np.zeros((self.num_envs, 2))
        self._goal_norms = np.zeros(self.num_envs)  # |goal| (WheeledNav's sparse constant)
        self._goal_l1 = np.zeros(self.num_envs)  # AntGoal's sparse goal term
        self._write_task(self._single.get_task()["goal"], np.arange(self.num_envs))

    def _goal_distances(self, indices: np.ndarray | slice = slice(None)) -> np.ndarray:
        qpos, goals = self.physics.qpos[indices], self._goals[indices]
        return self._hypot(qpos[:, 0] - goals[:, 0], qpos[:, 1] - goals[:, 1])

    def _check_task(self, task: Any) -> np.ndarray:
        return check_goal(task)

    def _write_task(self, task: np.ndarray, indices: np.ndarray) -> None:
        gx, gy = float(task[0]), float(task[1])
        self._goals[indices] = task
        self._goal_norms[indices] = math.hypot(gx, gy)
        self._goal_l1[indices] = ant_goal_term(gx, gy)

    def _read_task(self, index: int) -> dict[str, np.ndarray]:
        return {"goal": self._goals[index].copy()}
