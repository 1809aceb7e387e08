"""Exact resume: the random streams (torch's generators, the sub-envs') saved with a model and restored
by its first ``learn`` after ``load``, and the check for parameters that are not finite before saving."""

from __future__ import annotations

import warnings
from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm

from maesn_sb3.common.utils import user_stacklevel

__all__ = ["RandomStateMixin"]


class RandomStateMixin(BaseAlgorithm):
    """The random-state plumbing of :class:`~maesn_sb3.common.base.MetaAlgorithm`'s ``save``, ``load``
    and ``learn``."""

    def _random_state(self) -> dict[str, Any]:
        """torch's generators and the states of the sub-envs' generators (the model's own generators,
        ``_task_rng`` and ``_predict_rng``, are saved with its other attributes)."""
        pending = self.__dict__.get("_saved_random_state")
        if pending is not None:  # loaded and not trained since: keep what was loaded
            return pending
        state: dict[str, Any] = {"torch": th.get_rng_state()}
        if th.cuda.is_available():
            state["torch_cuda"] = th.cuda.get_rng_state_all()
        if self.env is not None and hasattr(self.env, "get_random_state"):
            state["env"] = self.env.get_random_state()
        return state

    def _restore_random_state(self, state: dict[str, Any]) -> None:
        th.set_rng_state(state["torch"])
        if "torch_cuda" in state and th.cuda.is_available():
            th.cuda.set_rng_state_all(state["torch_cuda"])
        env_states = state.get("env")
        if env_states is None or self.env is None or not hasattr(self.env, "set_random_state"):
            return
        if len(env_states) != self.env.num_envs:
            warnings.warn(
                f"the model was saved with {len(env_states)} sub-envs and now has {self.env.num_envs}: "
                "their random streams start from the env's seeds, so training does not continue exactly",
                stacklevel=user_stacklevel(),
            )
            return
        self.env.set_random_state(env_states)

    def _non_finite_parameters(self) -> list[str]:
        """Names of the saved modules' parameters that hold NaN or inf."""
        names = []
        for module_name in self._get_torch_save_params()[0]:
            module = getattr(self, module_name, None)
            if isinstance(module, th.nn.Module):
                names += [
                    f"{module_name}.{name}"
                    for name, parameter in module.named_parameters()
                    if not bool(th.isfinite(parameter).all())
                ]
        return names
