"""Off-policy DIAYN: replay buffers that recompute the skill reward when a batch is sampled."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from maesn_sb3.skills.diayn import _DIAYNBuffer
from wrappers.discriminator import SkillDiscriminator

__all__ = ["DIAYNDictReplayBuffer", "DIAYNReplayBuffer"]


class _DIAYNReplayMixin(_DIAYNBuffer):
    def _check_replay(self) -> None:
        if getattr(self, "optimize_memory_usage", False):
            raise ValueError(
                "DIAYN replay buffers need optimize_memory_usage=False: the memory-saving layout "
                "loses the skill of episode-ending transitions"
            )

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> Any:
        """SB3's own sampling, raw (``env=None``), then normalised as SB3 does (``env.normalize_obs``,
        ``env.normalize_reward``) and relabelled. SB3 has no public hook between drawing a batch and
        returning it, so this overrides the private ``_get_samples`` (it calls SB3's rather than copying
        it); the discriminator needs the raw next observations, which SB3's normalised samples no longer
        hold."""
        raw = super()._get_samples(batch_inds, env=None)  # type: ignore[misc]

        def numpy(value: Any) -> Any:
            if isinstance(value, dict):
                return {key: part.cpu().numpy() for key, part in value.items()}
            return value.cpu().numpy()

        def normalized(obs: Any) -> Any:
            if env is None:
                return obs
            values = env.normalize_obs(numpy(obs))
            if isinstance(values, dict):
                return {key: self.to_torch(part) for key, part in values.items()}  # type: ignore[attr-defined]
            return self.to_torch(values)  # type: ignore[attr-defined]

        next_raw = numpy(raw.next_observations)
        env_rewards = raw.rewards.cpu().numpy()
        if env is not None:  # as SB3's buffers normalise a reward
            env_rewards = env.normalize_reward(env_rewards).astype(np.float32)
        rewards = self.relabel(next_raw, env_rewards)
        if self.train_discriminator:
            self._train_on(next_raw)
        return raw._replace(
            observations=normalized(raw.observations),
            next_observations=normalized(raw.next_observations),
            rewards=self.to_torch(rewards.reshape(-1, 1)),  # type: ignore[attr-defined]
        )


class DIAYNReplayBuffer(_DIAYNReplayMixin, ReplayBuffer):
    """A replay buffer that recomputes DIAYN rewards at every sample (Box observations).

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> from stable_baselines3 import SAC
        >>> from maesn_sb3.skills import DIAYNCallback, DIAYNReplayBuffer
        >>> from wrappers import SkillDiscriminator, SkillWrapper
        >>> env = SkillWrapper(gym.make("maesn_sb3/PointNav2D-v0"), n_skills=4)
        >>> disc = SkillDiscriminator(env.observation_space, n_skills=4)
        >>> model = SAC("MlpPolicy", env, replay_buffer_class=DIAYNReplayBuffer,
        ...             replay_buffer_kwargs=dict(discriminator=disc, extrinsic_coef=0.0))
        >>> model = model.learn(200, callback=DIAYNCallback())

    :param discriminator: the :class:`SkillDiscriminator` (moved to the buffer's device).
    :param extrinsic_coef: weight of the env reward.
    :param intrinsic_coef: weight of the skill reward.
    :param include_prior: add ``-log p(z) = log n_skills`` to the skill reward (it makes the reward
        positive, which rewards long episodes: drop it for envs that terminate at a goal).
    :param train_discriminator: take one discriminator step on every sampled batch.
    Other parameters are those of SB3's ``ReplayBuffer``.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        discriminator: SkillDiscriminator | None = None,
        extrinsic_coef: float = 0.0,
        intrinsic_coef: float = 1.0,
        include_prior: bool = True,
        train_discriminator: bool = True,
    ) -> None:
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device,
            n_envs,
            optimize_memory_usage,
            handle_timeout_termination,
        )
        self._check_replay()
        self._setup_diayn(discriminator, extrinsic_coef, intrinsic_coef, include_prior, train_discriminator)


class DIAYNDictReplayBuffer(_DIAYNReplayMixin, DictReplayBuffer):
    """:class:`DIAYNReplayBuffer` for ``Dict`` observations (the skill under the ``"skill"`` key)."""

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        discriminator: SkillDiscriminator | None = None,
        extrinsic_coef: float = 0.0,
        intrinsic_coef: float = 1.0,
        include_prior: bool = True,
        train_discriminator: bool = True,
    ) -> None:
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device,
            n_envs,
            optimize_memory_usage,
            handle_timeout_termination,
        )
        self._check_replay()
        self._setup_diayn(discriminator, extrinsic_coef, intrinsic_coef, include_prior, train_discriminator)
