"""On-policy DIAYN: rollout buffers that rewrite a rollout's rewards before advantages are computed."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer

from maesn_sb3.skills.diayn import _DIAYNBuffer
from maesn_sb3.validators import check_int
from wrappers.discriminator import SkillDiscriminator

__all__ = ["DIAYNDictRolloutBuffer", "DIAYNRolloutBuffer"]


class _DIAYNRolloutMixin(_DIAYNBuffer):
    buffer_size: int
    n_envs: int
    rewards: np.ndarray
    observations: Any

    def _setup_rollout(self, batch_size: int, epochs: int) -> None:
        self.discriminator_batch_size = check_int("discriminator_batch_size", batch_size)
        self.discriminator_epochs = check_int("discriminator_epochs", epochs)

    def _reset_next(self) -> None:
        space = self.observation_space
        if isinstance(space, spaces.Dict):
            self.next_observations: Any = {
                key: np.zeros((self.buffer_size, self.n_envs, *sub.shape), dtype=sub.dtype)
                for key, sub in space.spaces.items()
            }
        else:
            self.next_observations = np.zeros(
                (self.buffer_size, self.n_envs, *space.shape), dtype=space.dtype
            )
        self.env_rewards = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)
        self._recorded = np.zeros(self.buffer_size, dtype=bool)
        self._record_pos = 0

    def record_step(self, next_obs: np.ndarray | dict[str, np.ndarray], env_rewards: np.ndarray) -> None:
        """Store one VecEnv step's raw next observations and env rewards (by DIAYNCallback)."""
        pos = self._record_pos
        if pos >= self.buffer_size:
            raise RuntimeError("record_step called more often than the rollout has steps")
        if isinstance(self.next_observations, dict):
            for key, value in self.next_observations.items():
                value[pos] = next_obs[key]  # type: ignore[index]
        else:
            self.next_observations[pos] = next_obs
        self.env_rewards[pos] = env_rewards
        self._recorded[pos] = True
        self._record_pos += 1

    def _flat_next(self) -> np.ndarray | dict[str, np.ndarray]:
        def flat(array: np.ndarray) -> np.ndarray:
            return array.reshape(self.buffer_size * self.n_envs, *array.shape[2:])

        if isinstance(self.next_observations, dict):
            return {key: flat(value) for key, value in self.next_observations.items()}
        return flat(self.next_observations)

    def compute_returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        """Rewrite the rollout's rewards with the current discriminator, train it, then compute advantages."""
        if not self._recorded.all():
            raise RuntimeError(
                f"the DIAYN rollout buffer got next observations for {int(self._recorded.sum())} of "
                f"{self.buffer_size} steps: pass callback=DIAYNCallback() to learn()"
            )
        next_obs = self._flat_next()
        # relabel with zero env rewards gives intrinsic_coef * r_skill
        skill_term = self.relabel(next_obs, np.zeros(self.buffer_size * self.n_envs)).reshape(
            self.rewards.shape
        )
        # the stored rewards are env reward + SB3's timeout bootstrap gamma * V(s_T): keep the bootstrap
        self.rewards += (self.extrinsic_coef - 1.0) * self.env_rewards + skill_term
        if self.train_discriminator:
            n = self.buffer_size * self.n_envs
            for _ in range(self.discriminator_epochs):
                order = np.random.permutation(n)  # noqa: NPY002 (SB3 seeds it)
                for start in range(0, n, self.discriminator_batch_size):
                    idx = order[start : start + self.discriminator_batch_size]
                    if isinstance(next_obs, dict):
                        self._train_on({key: value[idx] for key, value in next_obs.items()})
                    else:
                        self._train_on(next_obs[idx])
        super().compute_returns_and_advantage(last_values, dones)  # type: ignore[misc]


class DIAYNRolloutBuffer(_DIAYNRolloutMixin, RolloutBuffer):
    """A rollout buffer whose rewards are rewritten with DIAYN rewards before advantages (Box observations).

    Needs ``callback=DIAYNCallback()`` in ``learn`` to receive next observations.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> from stable_baselines3 import PPO
        >>> from maesn_sb3.skills import DIAYNCallback, DIAYNRolloutBuffer
        >>> from wrappers import SkillDiscriminator, SkillWrapper
        >>> env = SkillWrapper(gym.make("maesn_sb3/PointNav2D-v0"), n_skills=4)
        >>> disc = SkillDiscriminator(env.observation_space, n_skills=4)
        >>> model = PPO("MlpPolicy", env, n_steps=256, rollout_buffer_class=DIAYNRolloutBuffer,
        ...             rollout_buffer_kwargs=dict(discriminator=disc))
        >>> model = model.learn(512, callback=DIAYNCallback())

    :param discriminator: the :class:`SkillDiscriminator` (moved to the buffer's device).
    :param extrinsic_coef: weight of the env reward.
    :param intrinsic_coef: weight of the skill reward (``intrinsic_coef * r_skill`` with
        ``r_skill = log q(z | s') - log p(z)``).
    :param include_prior: add ``-log p(z) = log n_skills`` to the skill reward (it makes the reward
        positive, which rewards long episodes: drop it for envs that terminate at a goal).
    :param train_discriminator: train the discriminator on each rollout after its rewards are computed.
    :param discriminator_batch_size: minibatch size of those discriminator steps.
    :param discriminator_epochs: passes over the rollout per training.
    Other parameters are those of SB3's ``RolloutBuffer``.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gae_lambda: float = 1,
        gamma: float = 0.99,
        n_envs: int = 1,
        discriminator: SkillDiscriminator | None = None,
        extrinsic_coef: float = 0.0,
        intrinsic_coef: float = 1.0,
        include_prior: bool = True,
        train_discriminator: bool = True,
        discriminator_batch_size: int = 256,
        discriminator_epochs: int = 1,
    ) -> None:
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda, gamma, n_envs)
        self._setup_diayn(discriminator, extrinsic_coef, intrinsic_coef, include_prior, train_discriminator)
        self._setup_rollout(discriminator_batch_size, discriminator_epochs)

    def reset(self) -> None:
        super().reset()
        self._reset_next()


class DIAYNDictRolloutBuffer(_DIAYNRolloutMixin, DictRolloutBuffer):
    """:class:`DIAYNRolloutBuffer` for ``Dict`` observations (the skill under the ``"skill"`` key)."""

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gae_lambda: float = 1,
        gamma: float = 0.99,
        n_envs: int = 1,
        discriminator: SkillDiscriminator | None = None,
        extrinsic_coef: float = 0.0,
        intrinsic_coef: float = 1.0,
        include_prior: bool = True,
        train_discriminator: bool = True,
        discriminator_batch_size: int = 256,
        discriminator_epochs: int = 1,
    ) -> None:
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda, gamma, n_envs)
        self._setup_diayn(discriminator, extrinsic_coef, intrinsic_coef, include_prior, train_discriminator)
        self._setup_rollout(discriminator_batch_size, discriminator_epochs)

    def reset(self) -> None:
        super().reset()
        self._reset_next()
