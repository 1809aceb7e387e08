"""The policies the meta-RL algorithms share: SB3's actor-critic policies with the reference's defaults."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.policies import ActorCriticPolicy, MultiInputActorCriticPolicy
from torch import nn

__all__ = ["MAESN_POLICY_DEFAULTS", "MlpPolicy", "MultiInputPolicy"]

#: The reference implementation's network: two hidden layers of 100 ReLU units, action std 1 at start.
#: PyTorch's default initialisation instead of SB3's orthogonal one, whose 0.01 gain on the action layer
#: leaves the latent almost without effect early in meta-training (measured in benchmarks/maesn_learning.py).
MAESN_POLICY_DEFAULTS: dict[str, Any] = {
    "net_arch": [100, 100],
    "activation_fn": nn.ReLU,
    "log_std_init": 0.0,
    "ortho_init": False,
}


class MlpPolicy(ActorCriticPolicy):
    """SB3's actor-critic MLP policy with the reference's defaults; a latent comes inside the observation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**MAESN_POLICY_DEFAULTS, **kwargs})


class MultiInputPolicy(MultiInputActorCriticPolicy):
    """The same for Dict observations (a latent under the ``"latent"`` key)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**MAESN_POLICY_DEFAULTS, **kwargs})
