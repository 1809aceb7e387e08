"""The DIAYN reward shared by the relabelling buffers and the skill VecEnvs: the mix of the env's and
the discriminator's rewards, and the buffers' common relabelling state."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces

from wrappers.discriminator import SkillDiscriminator

__all__ = ["mix_rewards"]


def mix_rewards(
    extrinsic: np.ndarray, intrinsic: np.ndarray, extrinsic_coef: float, intrinsic_coef: float
) -> np.ndarray:
    """``extrinsic_coef * extrinsic + intrinsic_coef * intrinsic`` as float32."""
    return (extrinsic_coef * np.asarray(extrinsic) + intrinsic_coef * np.asarray(intrinsic)).astype(
        np.float32
    )


def _check_coef(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating, np.integer))
        or not np.isfinite(value)
    ):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


class _DIAYNBuffer:
    """Shared set-up of the DIAYN buffers."""

    discriminator: SkillDiscriminator
    observation_space: spaces.Space
    device: th.device

    def _setup_diayn(
        self,
        discriminator: SkillDiscriminator | None,
        extrinsic_coef: float,
        intrinsic_coef: float,
        include_prior: bool,
        train_discriminator: bool,
    ) -> None:
        if not isinstance(discriminator, SkillDiscriminator):
            raise TypeError(
                f"discriminator must be a SkillDiscriminator (pass it in the buffer kwargs), "
                f"got {type(discriminator).__name__}"
            )
        if discriminator.observation_space != self.observation_space:
            raise ValueError(
                f"discriminator.observation_space {discriminator.observation_space} differs from the "
                f"model's observation space {self.observation_space}"
            )
        self.discriminator = discriminator.to_device(self.device)
        self.extrinsic_coef = _check_coef("extrinsic_coef", extrinsic_coef)
        self.intrinsic_coef = _check_coef("intrinsic_coef", intrinsic_coef)
        self.include_prior = bool(include_prior)
        self.train_discriminator = bool(train_discriminator)
        self._stats: dict[str, list[float]] = {}  # key -> [sum, count] since the last pop_stats

    def relabel(self, next_obs: np.ndarray | dict[str, np.ndarray], env_rewards: np.ndarray) -> np.ndarray:
        """Mixed rewards of a flat batch of transitions from their raw next observations."""
        intrinsic = self.discriminator.intrinsic_reward(next_obs, self.include_prior)
        self._add_stat("intrinsic_reward", float(intrinsic.mean()))
        return mix_rewards(env_rewards.reshape(-1), intrinsic, self.extrinsic_coef, self.intrinsic_coef)

    def _train_on(self, obs: np.ndarray | dict[str, np.ndarray]) -> None:
        stats = self.discriminator.update(obs)
        self._add_stat("loss", stats["loss"])
        self._add_stat("accuracy", stats["accuracy"])

    def _add_stat(self, key: str, value: float) -> None:
        total = self._stats.setdefault(key, [0.0, 0.0])
        total[0] += value
        total[1] += 1

    def pop_stats(self) -> dict[str, float]:
        """Means of the discriminator loss, accuracy and intrinsic reward since the last call."""
        out = {key: total / count for key, (total, count) in self._stats.items()}
        self._stats.clear()
        return out
