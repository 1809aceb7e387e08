"""The adaptation curve every method's ``adapt`` returns (in env steps per task slot), and the loop that
records it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from stable_baselines3.common.callbacks import BaseCallback

    from maesn_sb3.common.rollouts import EpisodeBatch
    from maesn_sb3.vec_env import MetaTaskVecEnv

__all__ = ["AdaptationCurve", "adaptation_iterations", "steps_per_task"]

SelfCurve = TypeVar("SelfCurve", bound="AdaptationCurve")


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

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the curve's arrays to an ``.npz`` file (``np.savez`` adds the suffix if missing)."""
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        np.savez(path, **{key: value for key, value in arrays.items() if value is not None})

    @classmethod
    def load(cls: type[SelfCurve], path: str | os.PathLike[str]) -> SelfCurve:
        """Read a curve written by :meth:`save`."""
        with np.load(path) as data:
            return cls(**{key: data[key] for key in data.files})


def adaptation_iterations(
    meta: MetaTaskVecEnv,
    n_rounds: int,
    n_iterations: int,
    evaluate: bool,
    callback: BaseCallback | None,
    sample: Callable[[MetaTaskVecEnv, int, bool], EpisodeBatch],
    step: Callable[[int, EpisodeBatch], None],
    record: Callable[[], None] | None = None,
) -> dict[str, np.ndarray | None]:
    """The loop of ``adapt`` on ``meta``: for ``k = 0 .. n_iterations`` sample a batch of ``n_rounds``
    rounds (``sample(meta, n_rounds, deterministic)``), record it (and ``record()``: the state it came
    from), evaluate deterministically if asked, call the callback (locals ``iteration`` and ``batch``;
    False stops) and, unless last, take adaptation step ``step(k, batch)``.

    Returns the fields of an :class:`AdaptationCurve`."""
    n_tasks = meta.n_tasks
    history: dict[str, list[np.ndarray]] = {k: [] for k in ("ret", "succ", "eret", "esucc")}
    env_steps, total = [], 0
    for iteration in range(n_iterations + 1):
        batch = sample(meta, n_rounds, False)
        total += batch.n_steps
        env_steps.append(total)
        history["ret"].append(batch.per_task(batch.episode_returns, n_tasks))
        history["succ"].append(batch.per_task(batch.success.astype(float), n_tasks))
        if record is not None:
            record()
        if evaluate:
            evaluation = sample(meta, 1, True)
            history["eret"].append(evaluation.per_task(evaluation.episode_returns, n_tasks))
            history["esucc"].append(evaluation.per_task(evaluation.success.astype(float), n_tasks))
        if callback is not None:
            callback.update_locals({"iteration": iteration, "batch": batch})
            if not callback.on_step():
                break
        if iteration < n_iterations:
            step(iteration, batch)
    return {
        "returns": np.stack(history["ret"]),
        "success": np.stack(history["succ"]),
        "env_steps": steps_per_task(env_steps, n_tasks),
        "eval_returns": np.stack(history["eret"]) if evaluate else None,
        "eval_success": np.stack(history["esucc"]) if evaluate else None,
    }
