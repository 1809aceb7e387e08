"""Helpers: a batched family against a ``SyncVectorEnv`` of its single envs, step by step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv


def single_envs(env_id: str, num_envs: int, wrap: Callable[[gym.Env], gym.Env] | None = None, **kwargs: Any):
    """The reference: ``num_envs`` single envs in Gymnasium's ``SyncVectorEnv``, same autoreset mode."""

    def make() -> gym.Env:
        env = gym.make(env_id, **kwargs)
        return env if wrap is None else wrap(env)

    return SyncVectorEnv([make] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)


def assert_same(native: Any, reference: Any, where: str = "") -> None:
    """Bit-identical: arrays (values and dtypes), dicts (keys), object arrays entry by entry."""
    if isinstance(reference, dict):
        assert isinstance(native, dict), where
        assert sorted(native) == sorted(reference), (where, sorted(native), sorted(reference))
        for key in reference:
            assert_same(native[key], reference[key], f"{where}/{key}")
    elif isinstance(reference, (tuple, list)):
        assert isinstance(native, (tuple, list)) and len(native) == len(reference), where
        for i, (a, b) in enumerate(zip(native, reference, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(reference, np.ndarray) and reference.dtype == object:
        assert native.shape == reference.shape, where
        for i, (a, b) in enumerate(zip(native, reference, strict=True)):
            if b is None:
                assert a is None, f"{where}[{i}]"
            else:
                assert_same(a, b, f"{where}[{i}]")
    else:
        native_array, reference_array = np.asarray(native), np.asarray(reference)
        assert native_array.dtype == reference_array.dtype, (where, native_array.dtype, reference_array.dtype)
        np.testing.assert_array_equal(native_array, reference_array, err_msg=where)


def compare_rollouts(
    native: gym.vector.VectorEnv,
    reference: gym.vector.VectorEnv,
    tasks: list[Any],
    seed: int,
    steps: int,
    set_task: Callable[[gym.vector.VectorEnv, gym.vector.VectorEnv, int, Any], None],
    action_scale: float = 1.5,
) -> int:
    """Give env ``i`` of both the task ``tasks[i]``, reset both with ``seed``, step with the same
    seeded random actions (some outside the bounds) and compare everything; returns the episodes ended."""
    for i, task in enumerate(tasks):
        set_task(native, reference, i, task)
    assert_same(native.reset(seed=seed), reference.reset(seed=seed), "reset")
    rng = np.random.default_rng(seed)
    ended = 0
    low = native.single_action_space.low
    high = native.single_action_space.high
    for t in range(steps):
        actions = rng.uniform(action_scale * low, action_scale * high, size=native.action_space.shape)
        actions = actions.astype(native.single_action_space.dtype)
        got, expected = native.step(actions), reference.step(actions)
        assert_same(got, expected, f"step {t}")
        ended += int(np.sum(expected[2] | expected[3]))
    return ended
