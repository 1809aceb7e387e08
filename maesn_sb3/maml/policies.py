"""MAML's functional policy: the actor's output under per-slot (adapted) parameters, and the policy
that samples with one set of parameters per task slot."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution, make_proba_distribution
from stable_baselines3.common.policies import BasePolicy
from torch import nn

from maesn_sb3.common.rollouts import map_obs

if TYPE_CHECKING:
    from maesn_sb3.common.base import MetaAlgorithm

Params = dict[str, th.Tensor]


class _ActorHead(nn.Module):
    """The actor's output (mean actions or logits) of an SB3 actor-critic policy, for ``functional_call``."""

    def __init__(self, policy: BasePolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
        features = self.policy.extract_features(obs, self.policy.pi_features_extractor)
        return self.policy.action_net(self.policy.mlp_extractor.forward_actor(features))


def _slot_distribution(
    head: _ActorHead, action_space: spaces.Space, params: Params, obs: th.Tensor | dict[str, th.Tensor]
) -> Distribution:
    """Action distributions with per-slot parameters ``params[name]: (n_slots, *shape)`` on
    observations grouped by slot ``(n_slots, n, ...)``, flattened to ``n_slots * n`` rows (SB3's
    distributions sum log-probabilities over axis 1)."""
    names = {f"policy.{name}": value for name, value in params.items()}

    def call(slot_params: Params, slot_obs: Any) -> th.Tensor:
        return th.func.functional_call(head, slot_params, (slot_obs,))

    output = th.func.vmap(call)(names, obs)
    distribution = make_proba_distribution(action_space)
    if isinstance(action_space, spaces.Box):
        log_std = params["log_std"][:, None, :].expand_as(output)
        return distribution.proba_distribution(output.flatten(0, 1), log_std.flatten(0, 1))
    return distribution.proba_distribution(output.flatten(0, 1))


class _SlotPolicy:
    """Acts with one set of (adapted) actor parameters per task slot: what ``collect_episodes`` needs.
    Picklable; a remote collector sends each Ray worker its slots' part (:meth:`for_slots`)."""

    def __init__(self, model: MetaAlgorithm, params: Params, envs_per_task: int) -> None:
        self.head, self.params, self.envs_per_task = model._head, params, envs_per_task
        self.action_space, self.device = model.action_space, model.device

    def get_distribution(self, obs: th.Tensor | dict[str, th.Tensor]) -> Distribution:
        grouped = map_obs(lambda x: x.reshape(-1, self.envs_per_task, *x.shape[1:]), obs)
        return _slot_distribution(self.head, self.action_space, self.params, grouped)

    def for_slots(self, start: int, stop: int) -> _SlotPolicy:
        """The policy of slots ``start .. stop - 1`` only."""
        part = copy.copy(self)
        part.params = {name: value[start:stop] for name, value in self.params.items()}
        return part
