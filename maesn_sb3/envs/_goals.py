"""What the task families share: reward types, the paper's semicircle of goals, the goal check, and
:func:`where`, which lets one reward function serve a single env (floats) and a batch (arrays)."""

from __future__ import annotations

from typing import Any

import numpy as np

from maesn_sb3.validators import check_int

REWARD_TYPES = ("dense", "sparse")


def semicircle_goals(rng: np.random.Generator, n: int, radius: float) -> list[dict[str, np.ndarray]]:
    """``n`` tasks ``{"goal": (x, y)}`` on the upper semicircle of ``radius``, angle uniform in [0, pi]."""
    angles = rng.uniform(0.0, np.pi, size=check_int("n", n, minimum=0))
    goals = radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    return [{"goal": goal} for goal in goals]


def check_goal(task: Any, extra_keys: tuple[str, ...] = ()) -> np.ndarray:
    """The finite ``(2,)`` goal of a task dict (a copy), or a ``ValueError`` saying what was expected."""
    keys = ("goal", *extra_keys)
    if not isinstance(task, dict) or any(key not in task for key in keys):
        raise ValueError(f"task must be a dict with keys {keys}, got {task!r}")
    message = f"task['goal'] must be a finite array of shape (2,), got {task['goal']!r}"
    try:
        goal = np.array(task["goal"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if goal.shape != (2,) or not np.all(np.isfinite(goal)):
        raise ValueError(message)
    return goal


def where(condition: Any, if_true: Any, if_false: Any) -> Any:
    """``np.where`` on a batch (``condition`` an array); on one env a plain choice, so floats stay floats.

    Each family's reward function is written once with it and gives a single env and a batched env
    the same numbers, bit for bit (the same IEEE operations in the same order).

    Example:
        >>> where(True, 1.0, 0.0), where(np.array([True, False]), 1.0, 0.0)
        (1.0, array([1., 0.]))
    """
    if isinstance(condition, np.ndarray):
        return np.where(condition, if_true, if_false)
    return if_true if condition else if_false
