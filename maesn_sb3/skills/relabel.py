"""DIAYN rewards for any SB3 algorithm, recomputed with the current discriminator so they never go stale.

* Off-policy (SAC, TD3, ...): pass ``replay_buffer_class=DIAYNReplayBuffer`` (``DIAYNDictReplayBuffer``
  for ``Dict`` observations) and ``replay_buffer_kwargs=dict(discriminator=..., ...)``. Rewards are
  recomputed whenever a batch is sampled (as SB3's HER relabels goals), then the discriminator takes
  one step on that same batch.
* On-policy (PPO, A2C, ...): pass ``rollout_buffer_class=DIAYNRolloutBuffer`` (``DIAYNDictRolloutBuffer``)
  with ``rollout_buffer_kwargs=dict(discriminator=..., ...)`` and ``callback=DIAYNCallback()`` to
  ``learn``. The callback hands the buffer each step's next observation; before advantages are
  computed the buffer rewrites the whole rollout's rewards with the current discriminator, then trains
  the discriminator on the rollout.

Rewards are ``extrinsic_coef * r_env + intrinsic_coef * (log q_phi(z | s') - log p(z))``; the prior
term is dropped with ``include_prior=False``; ``extrinsic_coef=0, intrinsic_coef=1`` is pure DIAYN.
``r_env`` is the reward as the algorithm sees it (normalised when ``VecNormalize`` normalises rewards);
the intrinsic term is never normalised. The discriminator always sees raw (unnormalised) observations,
as SB3 stores them in its replay buffers.

Persistence: the discriminator sits in the model's ``replay_buffer_kwargs`` / ``rollout_buffer_kwargs``,
which SB3 saves with the model, so ``model.save`` / ``Algo.load`` keep its weights and optimizer state
(``load`` hands the restored discriminator to the new buffer: read it back as
``model.replay_buffer.discriminator`` or ``model.rollout_buffer.discriminator``).

``VecNormalize`` must leave the one-hot alone: use :class:`SkillVecNormalize` (both ``Box`` and ``Dict``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, DictRolloutBuffer, ReplayBuffer, RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from wrappers.discriminator import SkillDiscriminator
from wrappers.skills import SKILL_KEY

__all__ = [
    "DIAYNCallback",
    "DIAYNDictReplayBuffer",
    "DIAYNDictRolloutBuffer",
    "DIAYNReplayBuffer",
    "DIAYNRolloutBuffer",
    "SkillVecNormalize",
    "mix_rewards",
]


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


class _DIAYNReplayMixin(_DIAYNBuffer):
    def _check_replay(self) -> None:
        if getattr(self, "optimize_memory_usage", False):
            raise ValueError(
                "DIAYN replay buffers need optimize_memory_usage=False: the memory-saving layout "
                "loses the skill of episode-ending transitions"
            )

    def _diayn_samples(self, samples: Any, next_raw: Any, env_rewards: np.ndarray) -> Any:
        rewards = self.relabel(next_raw, env_rewards)
        if self.train_discriminator:
            self._train_on(next_raw)
        return samples._replace(rewards=self.to_torch(rewards.reshape(-1, 1)))  # type: ignore[attr-defined]


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

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002 (as SB3)
        next_raw = self.next_observations[batch_inds, env_indices, :]
        env_rewards = self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)
        data = (
            self._normalize_obs(self.observations[batch_inds, env_indices, :], env),
            self.actions[batch_inds, env_indices, :],
            self._normalize_obs(next_raw, env),
            (self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])).reshape(
                -1, 1
            ),
            env_rewards,
        )
        samples = ReplayBufferSamples(*tuple(map(self.to_torch, data)))
        return self._diayn_samples(samples, next_raw, env_rewards)


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

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002 (as SB3)
        obs_raw = {key: obs[batch_inds, env_indices, :] for key, obs in self.observations.items()}
        next_raw = {key: obs[batch_inds, env_indices, :] for key, obs in self.next_observations.items()}
        obs_ = self._normalize_obs(obs_raw, env)
        next_ = self._normalize_obs(next_raw, env)
        env_rewards = self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)
        samples = DictReplayBufferSamples(
            observations={key: self.to_torch(value) for key, value in obs_.items()},  # type: ignore[union-attr]
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations={key: self.to_torch(value) for key, value in next_.items()},  # type: ignore[union-attr]
            dones=self.to_torch(
                self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
            ).reshape(-1, 1),
            rewards=self.to_torch(env_rewards),
        )
        return self._diayn_samples(samples, next_raw, env_rewards)


class _DIAYNRolloutMixin(_DIAYNBuffer):
    buffer_size: int
    n_envs: int
    rewards: np.ndarray
    observations: Any

    def _setup_rollout(self, batch_size: int, epochs: int) -> None:
        for name, value in (("discriminator_batch_size", batch_size), ("discriminator_epochs", epochs)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.discriminator_batch_size = int(batch_size)
        self.discriminator_epochs = int(epochs)

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


class DIAYNCallback(BaseCallback):
    """Connects a DIAYN buffer to ``learn`` and logs the discriminator through SB3's logger.

    With an on-policy model it hands the rollout buffer every step's raw next observations (the
    ``terminal_observation`` at episode ends, un-normalised when ``VecNormalize`` is used) and env
    rewards; with an off-policy model it only logs. Logged keys: ``diayn/discriminator_loss``,
    ``diayn/discriminator_accuracy`` (on the training batches), ``diayn/intrinsic_reward``.

    Example: see :class:`DIAYNRolloutBuffer` and :class:`DIAYNReplayBuffer`.
    """

    def _init_callback(self) -> None:
        rollout = getattr(self.model, "rollout_buffer", None)
        replay = getattr(self.model, "replay_buffer", None)
        if isinstance(rollout, _DIAYNRolloutMixin):
            self.buffer: _DIAYNBuffer = rollout
            self.on_policy = True
        elif isinstance(replay, _DIAYNReplayMixin):
            self.buffer = replay
            self.on_policy = False
        else:
            raise TypeError(
                "DIAYNCallback needs a model built with a DIAYN buffer (rollout_buffer_class="
                "DIAYNRolloutBuffer / DIAYNDictRolloutBuffer or replay_buffer_class=DIAYNReplayBuffer / "
                f"DIAYNDictReplayBuffer), got buffers {type(rollout).__name__} and {type(replay).__name__}"
            )

    def _log(self) -> None:
        for key, value in self.buffer.pop_stats().items():
            name = "intrinsic_reward" if key == "intrinsic_reward" else f"discriminator_{key}"
            self.logger.record(f"diayn/{name}", value)

    def _on_step(self) -> bool:
        if not self.on_policy:
            self._log()
            return True
        normalizer = self.model.get_vec_normalize_env()
        new_obs = self.locals["new_obs"]
        if normalizer is not None:
            new_obs = normalizer.get_original_obs()
        if isinstance(new_obs, dict):
            next_obs: Any = {key: np.array(value, copy=True) for key, value in new_obs.items()}
        else:
            next_obs = np.array(new_obs, copy=True)
        for idx, done in enumerate(self.locals["dones"]):
            if not done:
                continue
            terminal = self.locals["infos"][idx].get("terminal_observation")
            if terminal is None:
                raise RuntimeError("an episode ended without info['terminal_observation']: use an SB3 VecEnv")
            if normalizer is not None:
                terminal = normalizer.unnormalize_obs(terminal)
            if isinstance(next_obs, dict):
                for key in next_obs:
                    next_obs[key][idx] = terminal[key]
            else:
                next_obs[idx] = terminal
        # copy: SB3 adds the timeout bootstrap to this array in place after the callback
        self.buffer.record_step(next_obs, np.array(self.locals["rewards"], dtype=np.float32))  # type: ignore[attr-defined]
        return True

    def _on_rollout_end(self) -> None:
        if self.on_policy:
            self._log()


class SkillVecNormalize(VecNormalize):
    """SB3's ``VecNormalize`` that leaves the skill one-hot as it is.

    For ``Box`` observations the last ``n_skills`` entries (the one-hot of :class:`SkillWrapper`) pass
    through ``normalize_obs`` / ``unnormalize_obs`` untouched (their running statistics are kept but not
    used); for ``Dict`` observations every ``Box`` key but ``"skill"`` is normalised (``norm_obs_keys``).
    ``n_skills`` defaults to the sub-envs' ``n_skills`` attribute. Saves and loads as ``VecNormalize``.

    Example:
        >>> from stable_baselines3.common.env_util import make_vec_env
        >>> import maesn_sb3
        >>> from maesn_sb3.skills import SkillVecNormalize
        >>> from wrappers import SkillWrapper
        >>> venv = SkillVecNormalize(make_vec_env("maesn_sb3/PointNav2D-v0", n_envs=2,
        ...                          wrapper_class=SkillWrapper, wrapper_kwargs=dict(n_skills=4)))
        >>> venv.reset()[:, 2:].sum(axis=1).tolist()
        [1.0, 1.0]

    :param venv: the VecEnv of skill-wrapped envs.
    :param n_skills: size of the one-hot (Box observations only); ``None``: read from the sub-envs.
    Other parameters are those of ``VecNormalize``.
    """

    def __init__(
        self,
        venv: VecEnv,
        training: bool = True,
        norm_obs: bool = True,
        norm_reward: bool = True,
        clip_obs: float = 10.0,
        clip_reward: float = 10.0,
        gamma: float = 0.99,
        epsilon: float = 1e-8,
        norm_obs_keys: list[str] | None = None,
        n_skills: int | None = None,
    ) -> None:
        space = venv.observation_space
        self.skill_dims = 0
        if isinstance(space, spaces.Dict):
            if n_skills is not None:
                raise ValueError(f"n_skills applies to Box observations only, got n_skills={n_skills!r}")
            if norm_obs_keys is None:
                norm_obs_keys = [
                    k for k, sub in space.spaces.items() if k != SKILL_KEY and isinstance(sub, spaces.Box)
                ]
            elif SKILL_KEY in norm_obs_keys:
                raise ValueError(f"norm_obs_keys must not contain {SKILL_KEY!r}, got {norm_obs_keys}")
        elif isinstance(space, spaces.Box) and len(space.shape) == 1:
            if n_skills is None:
                try:
                    n_skills = venv.get_attr("n_skills", [0])[0]
                except AttributeError:
                    raise ValueError(
                        "n_skills is None and the sub-envs have no n_skills attribute (no SkillWrapper): "
                        "pass n_skills, the size of the one-hot at the end of the observation"
                    ) from None
            if (
                isinstance(n_skills, bool)
                or not isinstance(n_skills, (int, np.integer))
                or not (2 <= n_skills < space.shape[0])
            ):
                raise ValueError(
                    f"n_skills must be an int in [2, {space.shape[0]}) (obs size), got {n_skills!r}"
                )
            self.skill_dims = int(n_skills)
        else:
            raise TypeError(f"SkillVecNormalize needs a 1-D Box or a Dict observation space, got {space}")
        super().__init__(
            venv, training, norm_obs, norm_reward, clip_obs, clip_reward, gamma, epsilon, norm_obs_keys
        )

    def normalize_obs(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        out = super().normalize_obs(obs)
        if self.skill_dims and self.norm_obs and not isinstance(obs, dict):
            out[..., -self.skill_dims :] = obs[..., -self.skill_dims :]  # type: ignore[index]
        return out

    def unnormalize_obs(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        out = super().unnormalize_obs(obs)
        if self.skill_dims and self.norm_obs and not isinstance(obs, dict):
            out[..., -self.skill_dims :] = obs[..., -self.skill_dims :]  # type: ignore[index]
        return out
