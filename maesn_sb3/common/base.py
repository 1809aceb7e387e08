"""What the meta-learning algorithms share: argument checks, the adaptation curve, the learn loop."""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import MaybeCallback

SelfMetaAlgorithm = TypeVar("SelfMetaAlgorithm", bound="MetaAlgorithm")


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int, or a ``ValueError`` naming ``name`` unless it is an int ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, minimum: float | None = None, strict: bool = False) -> float:
    """``value`` as a finite float ``>= minimum`` (``> minimum`` if ``strict``), else a ``ValueError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number) or (
        minimum is not None and (number <= minimum if strict else number < minimum)
    ):
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return number


def steps_per_task(total_steps: int | np.ndarray, n_tasks: int) -> int | np.ndarray:
    """Env steps per task slot from the steps of ``n_tasks`` slots together (the adaptation curves' unit)."""
    return np.rint(np.asarray(total_steps) / n_tasks).astype(np.int64)


@dataclass
class AdaptationCurve:
    """Per-iteration adaptation curve on each task slot, what every method's ``adapt`` returns.

    ``returns[k, i]`` and ``success[k, i]`` are the means over the episodes that task slot ``i`` ran in
    adaptation iteration ``k`` (row 0: before any update); ``env_steps[k]`` counts the exploration
    steps taken **per task slot** (the mean over slots, see :func:`steps_per_task`) up to and including
    iteration ``k``, the same for every method. ``eval_*`` hold deterministic evaluations when run.
    """

    returns: np.ndarray
    success: np.ndarray
    env_steps: np.ndarray
    eval_returns: np.ndarray | None = None
    eval_success: np.ndarray | None = None

    @property
    def mean_return(self) -> np.ndarray:
        """Mean return per iteration, over tasks."""
        return self.returns.mean(axis=1)

    @property
    def mean_success(self) -> np.ndarray:
        """Mean success rate per iteration, over tasks."""
        return self.success.mean(axis=1)


class MetaAlgorithm(BaseAlgorithm):
    """An SB3 algorithm that learns in whole meta-iterations (``_meta_iteration``), as MAESN and MAML."""

    @abstractmethod
    def _meta_iteration(self, callback: BaseCallback) -> bool:
        """Run one meta-iteration; False when a callback stopped it."""

    def learn(
        self: SelfMetaAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMetaAlgorithm:
        """Meta-train for ``total_timesteps`` environment steps (whole meta-iterations)."""
        if self.env is None:
            raise ValueError("learn() needs an env: pass one to the constructor, set_env() or load()")
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        iteration = 0
        while self.num_timesteps < total_timesteps:
            if not self._meta_iteration(callback):
                break
            iteration += 1
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            if log_interval and iteration % log_interval == 0:
                self.logger.record("time/iterations", iteration, exclude="tensorboard")
                self._dump_logs()
        callback.on_training_end()
        return self

    def _dump_logs(self) -> None:
        elapsed = max((time.time_ns() - self.start_time) / 1e9, 1e-9)
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_mean", float(np.mean([ep["r"] for ep in self.ep_info_buffer])))
            self.logger.record("rollout/ep_len_mean", float(np.mean([ep["l"] for ep in self.ep_info_buffer])))
        if self.ep_success_buffer:
            self.logger.record("rollout/success_rate", float(np.mean(self.ep_success_buffer)))
        self.logger.record("time/fps", int((self.num_timesteps - self._num_timesteps_at_start) / elapsed))
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)
