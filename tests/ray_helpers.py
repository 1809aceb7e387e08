"""What the Ray tests share: import Ray or skip (locally) / fail (in CI), and wait for processes to end."""

from __future__ import annotations

import os
import signal
import sys
import time
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import maesn_sb3  # noqa: F401  (registers the task families)


def require_ray() -> ModuleType:
    """The ``ray`` module; without it, a visible skip locally and an ImportError in CI (env CI=true)."""
    if os.environ.get("CI", "").lower() == "true":
        import ray  # CI installs the ray extra: missing must fail, not skip

        return ray
    return pytest.importorskip("ray", reason='Ray is not installed: pip install "maesn-sb3[ray]"')


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_ended(pids: list[int], timeout: float = 20.0) -> list[int]:
    """The processes of ``pids`` still running after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


class DiesOnce(gym.Wrapper):
    """Kills its own process (SIGKILL) at step ``at_step`` of an episode when its task's goal is ``goal``
    and the file ``flag`` does not exist yet (it creates it): one Ray worker dies mid-round, once."""

    def __init__(self, env: gym.Env, flag: str, goal: tuple[float, float], at_step: int) -> None:
        super().__init__(env)
        self.flag, self.goal, self.at_step, self.steps = flag, np.asarray(goal), at_step, 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.steps = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, ...]:
        self.steps += 1
        if self.steps == self.at_step and np.allclose(self.env.unwrapped.get_task()["goal"], self.goal):
            try:
                os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.env.step(action)


def dying_point_nav(flag: str, goal: tuple[float, float], at_step: int, **env_kwargs: Any) -> gym.Env:
    """PointNav2D in :class:`DiesOnce`."""
    return DiesOnce(gym.make("maesn_sb3/PointNav2D-v0", **env_kwargs), flag, goal, at_step)


def ship_by_value() -> None:
    """Let Ray workers unpickle this module's envs without importing ``tests`` (not on their path)."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
