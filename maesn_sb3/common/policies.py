"""The policies the meta-RL algorithms share: SB3's actor-critic policies with the reference's defaults."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

__all__ = ["MAESN_POLICY_DEFAULTS", "MlpPolicy", "MultiInputPolicy", "RunningNormalization"]

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


class RunningNormalization(BaseFeaturesExtractor):
    """Flattened observations whose features are normalised by running statistics, as SB3's
    ``VecNormalize`` does it (``(x - mean) / sqrt(var + epsilon)`` clipped to ``+-clip``, statistics from
    SB3's ``RunningMeanStd``), except the last ``n_passed`` (a latent), which pass unchanged.

    The statistics are buffers of the policy: they are saved and loaded with it, so ``predict`` and
    ``adapt`` see what training saw. They change only through :meth:`update`, which the meta-algorithms
    call after each meta-iteration with its observations (``normalize_observations=True``).

    Example:
        >>> import numpy as np
        >>> from gymnasium import spaces
        >>> extractor = RunningNormalization(spaces.Box(-10, 10, (3,)), n_passed=1)
        >>> extractor.update(np.array([[1.0, 0.0, 5.0], [3.0, 4.0, 5.0]]))  # means 2, 2; stds 1, 2
        >>> extractor(th.tensor([[3.0, 6.0, 7.0]])).round(decimals=2).tolist()  # the latent 7 passes
        [[1.0, 2.0, 7.0]]
    """

    def __init__(
        self, observation_space: spaces.Box, n_passed: int = 0, clip: float = 10.0, epsilon: float = 1e-8
    ) -> None:
        super().__init__(observation_space, get_flattened_obs_dim(observation_space))
        n_normalized = self.features_dim - n_passed
        if not 0 <= n_passed < self.features_dim:
            raise ValueError(f"n_passed must lie in [0, {self.features_dim}) (the features), got {n_passed}")
        self.clip, self.epsilon = float(clip), float(epsilon)
        fresh = RunningMeanStd(shape=(n_normalized,))
        self.register_buffer("mean", th.as_tensor(fresh.mean))
        self.register_buffer("var", th.as_tensor(fresh.var))
        self.register_buffer("count", th.tensor(fresh.count, dtype=th.float64))

    def update(self, observations: np.ndarray) -> None:
        """Fold a batch of flattened observations ``(n, features)`` into the statistics."""
        statistics = RunningMeanStd(shape=tuple(self.mean.shape))
        statistics.mean, statistics.var = self.mean.cpu().numpy(), self.var.cpu().numpy()
        statistics.count = float(self.count)
        flat = np.asarray(observations, dtype=np.float64).reshape(len(observations), -1)
        statistics.update(flat[:, : len(self.mean)])
        with th.no_grad():
            self.mean.copy_(th.as_tensor(statistics.mean))
            self.var.copy_(th.as_tensor(statistics.var))
            self.count.fill_(statistics.count)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        flat = observations.flatten(1)
        n = len(self.mean)
        scale = th.sqrt(self.var + self.epsilon).to(flat.dtype)
        normalized = ((flat[:, :n] - self.mean.to(flat.dtype)) / scale).clamp(-self.clip, self.clip)
        return th.cat([normalized, flat[:, n:]], dim=1)
