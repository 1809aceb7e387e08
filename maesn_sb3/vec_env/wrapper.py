"""The picklable ``VecEnvWrapper`` base that the package's VecEnv wrappers build on."""

from __future__ import annotations

import inspect
from typing import Any

from stable_baselines3.common.vec_env import VecEnvWrapper

__all__ = ["PicklableVecEnvWrapper"]


class PicklableVecEnvWrapper(VecEnvWrapper):
    """A ``VecEnvWrapper`` that pickles: SB3's keeps a copy of its class's attributes, which holds
    unpicklable objects, so it is left out and rebuilt."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["class_attributes"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.class_attributes = dict(inspect.getmembers(self.__class__))
