"""Skills at the VecEnv level, for learners that collect whole episodes themselves (MAESN, ...).

* :class:`SkillActionVecEnv` is the batched form of :class:`wrappers.SkillActionWrapper`: a
  ``DummyVecEnv`` whose actions are skills of a frozen skill-conditioned model; the low-level model
  runs once per env step for all sub-envs together, instead of once per sub-env.
* :class:`VecSkillReward` mixes the DIAYN reward into a VecEnv's rewards with the current
  discriminator and trains the discriminator online on the observed transitions.
* :class:`SkillRewardCallback` logs that discriminator through SB3's logger.

Both VecEnvs accept sub-envs wrapped in a :class:`wrappers.LatentWrapper` (as outermost wrapper): its
latent is shown to the learner but stripped before the low-level model and the discriminator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import deepcopy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import unwrap_wrapper
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, unwrap_vec_wrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from stable_baselines3.common.vec_env.util import dict_to_obs

from maesn_sb3.skills.diayn import _check_coef, mix_rewards
from maesn_sb3.validators import check_int, check_seed
from maesn_sb3.vec_env.wrapper import PicklableVecEnvWrapper
from wrappers.discriminator import SkillDiscriminator
from wrappers.latent import LatentWrapper, strip_latent, strip_latent_space
from wrappers.skill_actions import SkillPolicy
from wrappers.skills import SKILL_KEY, skill_observation_space

__all__ = ["SkillActionVecEnv", "SkillRewardCallback", "VecSkillReward"]

Obs = np.ndarray | dict[str, np.ndarray]


def _outer_latent_wrapper(env: gym.Env) -> LatentWrapper | None:
    """The outermost LatentWrapper in the wrapper chain of ``env``, or None."""
    return unwrap_wrapper(env, LatentWrapper)


class SkillActionVecEnv(DummyVecEnv):
    """A ``DummyVecEnv`` whose actions are skills run by a frozen skill-conditioned model, batched.

    Action ``k`` of sub-env ``i`` (``Discrete(n_skills)``) runs the low-level ``model`` with skill
    ``k`` shown as a one-hot (the layout of :class:`wrappers.SkillWrapper`) for ``skill_steps`` env
    steps, or fewer if the episode ends first; each sub-env stops at its own episode end and is reset
    (the VecEnv contract: ``info["terminal_observation"]``, ``info["TimeLimit.truncated"]``). At each
    env step one ``model.predict`` call serves every sub-env still running its skill. The reward is the
    sum of the env rewards; ``info["skill"]`` and ``info["skill_steps"]`` (env steps taken) are added.
    A ``Monitor`` inside the sub-envs counts env steps, not skill steps.

    Sub-envs may carry a :class:`wrappers.LatentWrapper` as outermost wrapper (e.g. the envs of
    ``maesn_sb3.make_meta_vec_env(..., latent_dim=2)``): the latent stays in the observations this
    VecEnv returns (for a latent-conditioned high level such as MAESN) and is stripped before the
    low-level model, which saw no latent in training. It plugs into ``make_vec_env`` /
    ``make_meta_vec_env`` as ``vec_env_cls`` with ``vec_env_kwargs=dict(model=..., skill_steps=...)``.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> from stable_baselines3 import SAC
        >>> from stable_baselines3.common.env_util import make_vec_env
        >>> from maesn_sb3.skills import SkillActionVecEnv
        >>> from wrappers import SkillWrapper
        >>> low = SAC("MlpPolicy", SkillWrapper(gym.make("maesn_sb3/PointNav2D-v0"), n_skills=4))
        >>> venv = make_vec_env("maesn_sb3/PointNav2D-v0", n_envs=3, vec_env_cls=SkillActionVecEnv,
        ...                     vec_env_kwargs=dict(model=low, skill_steps=10))
        >>> venv.action_space, venv.reset().shape
        (Discrete(4), (3, 2))
        >>> obs, rewards, dones, infos = venv.step([0, 1, 3])
        >>> info = infos[2]
        >>> info["skill"], info["skill_steps"]
        (3, 10)

    :param env_fns: functions that create the sub-envs (as for ``DummyVecEnv``).
    :param model: the low-level model (any object with ``predict``, ``observation_space`` and
        ``action_space``, e.g. an SB3 model); its observation space is the sub-envs' (without the
        latent) with a skill one-hot, its action space the sub-envs'.
    :param skill_steps: env steps per skill action (>= 1).
    :param deterministic: run the low-level policy deterministically.
    :param obs_normalizer: the ``VecNormalize`` (anything with ``normalize_obs``) the low-level model
        was trained with, or ``None``; its statistics are not updated.
    :param sum_info_keys: info keys that are per-step rewards too, summed over the skill's env steps
        like the reward (e.g. ``("sparse_reward",)`` for MAESN's ``inner_reward_key``); other info
        entries are those of the last env step.
    """

    def __init__(
        self,
        env_fns: list[Callable[[], gym.Env]],
        model: SkillPolicy,
        skill_steps: int = 10,
        deterministic: bool = True,
        obs_normalizer: Any = None,
        sum_info_keys: Sequence[str] = (),
    ) -> None:
        self.skill_steps = check_int("skill_steps", skill_steps)
        if isinstance(sum_info_keys, str) or not all(isinstance(k, str) for k in sum_info_keys):
            raise TypeError(f"sum_info_keys must be a sequence of str, got {sum_info_keys!r}")
        self.sum_info_keys = tuple(sum_info_keys)
        if not hasattr(model, "predict") or not hasattr(model, "observation_space"):
            raise TypeError(f"model must be a trained SB3 model (with predict), got {type(model).__name__}")
        if obs_normalizer is not None and not hasattr(obs_normalizer, "normalize_obs"):
            raise TypeError(
                f"obs_normalizer must have normalize_obs (a VecNormalize), got {obs_normalizer!r}"
            )
        super().__init__(env_fns)
        latent = _outer_latent_wrapper(self.envs[0])
        if latent is not None and latent.observation_space != self.observation_space:
            raise ValueError(
                "the sub-envs' LatentWrapper must be the outermost wrapper that changes observations: "
                f"it gives {latent.observation_space}, the sub-envs give {self.observation_space}"
            )
        self.latent_dim = 0 if latent is None else latent.latent_dim
        low_space = self.observation_space if latent is None else latent.env.observation_space
        self.n_skills = _n_skills_of(low_space, model.observation_space)
        if model.action_space != self.action_space:
            raise ValueError(
                f"model.action_space must be the sub-envs' action space {self.action_space}, "
                f"got {model.action_space}"
            )
        self.model = model
        self.deterministic = bool(deterministic)
        self.obs_normalizer = obs_normalizer
        self.env_action_space = self.action_space
        self.action_space = spaces.Discrete(self.n_skills)
        self._eye = np.eye(self.n_skills, dtype=np.float32)

    def step_async(self, actions: np.ndarray) -> None:
        skills = np.asarray(actions)
        if skills.shape not in ((self.num_envs,), (self.num_envs, 1)) or not np.issubdtype(
            skills.dtype, np.integer
        ):
            raise ValueError(
                f"actions must be {self.num_envs} skill indices (ints, shape ({self.num_envs},)), "
                f"got {actions!r}"
            )
        skills = skills.reshape(-1)
        if np.any((skills < 0) | (skills >= self.n_skills)):
            raise ValueError(f"actions must be skills in [0, {self.n_skills}) (n_skills), got {skills}")
        self.actions = skills

    def _low_level_actions(self, indices: np.ndarray, skills: np.ndarray) -> np.ndarray:
        obs: Obs = {k: v[indices] for k, v in self.buf_obs.items()}
        obs = obs[None] if None in obs else obs  # Box observations sit under the key None
        if self.latent_dim:
            obs = strip_latent(obs, self.latent_dim)
        onehot = self._eye[skills]
        if isinstance(obs, dict):
            obs = {**obs, SKILL_KEY: onehot}
        else:
            obs = np.concatenate([obs.astype(np.float32), onehot], axis=1)
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer.normalize_obs(obs)
        actions, _ = self.model.predict(obs, deterministic=self.deterministic)
        return actions

    def step_wait(self) -> VecEnvStepReturn:
        skills = self.actions
        rewards = np.zeros(self.num_envs)
        sums = {key: np.zeros(self.num_envs) for key in self.sum_info_keys}
        steps = np.zeros(self.num_envs, dtype=int)
        active = np.ones(self.num_envs, dtype=bool)
        self.buf_dones[:] = False
        for _ in range(self.skill_steps):
            indices = np.flatnonzero(active)
            if indices.size == 0:
                break
            actions = self._low_level_actions(indices, skills[indices])
            for action, i in zip(actions, indices, strict=True):
                obs, reward, terminated, truncated, info = self.envs[i].step(action)
                rewards[i] += float(reward)
                for key, total in sums.items():
                    if key not in info:
                        raise KeyError(f"sum_info_keys names {key!r}, missing from the info of sub-env {i}")
                    total[i] += float(info[key])
                steps[i] += 1
                info["TimeLimit.truncated"] = truncated and not terminated
                if terminated or truncated:
                    info["terminal_observation"] = obs
                    obs, self.reset_infos[i] = self.envs[i].reset()
                    self.buf_dones[i] = True
                    active[i] = False
                self.buf_infos[i] = info
                for key in self.keys:  # what DummyVecEnv's private _save_obs does
                    self.buf_obs[key][i] = obs if key is None else obs[key]
        for i, info in enumerate(self.buf_infos):
            info["skill"] = int(skills[i])
            info["skill_steps"] = int(steps[i])
            for key, total in sums.items():
                info[key] = float(total[i])
        self.buf_rews[:] = rewards
        obs = dict_to_obs(self.observation_space, deepcopy(self.buf_obs))
        return obs, np.copy(self.buf_rews), np.copy(self.buf_dones), deepcopy(self.buf_infos)


def _n_skills_of(space: spaces.Space, model_space: spaces.Space) -> int:
    """The number of skills of a model whose observation space is ``space`` with a skill one-hot."""
    if isinstance(space, spaces.Dict):
        skill_space = model_space.spaces.get(SKILL_KEY) if isinstance(model_space, spaces.Dict) else None
        n_skills = skill_space.shape[0] if isinstance(skill_space, spaces.Box) and skill_space.shape else 0
    elif isinstance(space, spaces.Box) and len(space.shape) == 1 and isinstance(model_space, spaces.Box):
        n_skills = model_space.shape[0] - space.shape[0] if len(model_space.shape) == 1 else 0
    else:
        n_skills = 0
    if n_skills < 2 or skill_observation_space(space, n_skills) != model_space:
        raise ValueError(
            f"model.observation_space must be the sub-envs' observation space {space} (without a latent) "
            f"with a skill one-hot (as SkillWrapper makes it), got {model_space}"
        )
    return int(n_skills)


class VecSkillReward(PicklableVecEnvWrapper):
    """Mixes the DIAYN reward into the rewards of a VecEnv of skill-wrapped envs and trains the discriminator.

    Every step returns ``extrinsic_coef * r_env + intrinsic_coef * (log q_phi(z | s') - log p(z))``
    (the prior term only with ``include_prior``), where ``s'`` is the raw next observation (the
    ``terminal_observation`` at episode ends) and ``q_phi`` the discriminator as it is at that step.
    ``info["extrinsic_reward"]`` and ``info["intrinsic_reward"]`` carry the two parts.

    The discriminator trains on the next observations seen since its last update
    (``discriminator_epochs`` passes of shuffled minibatches), at :meth:`reset` by default: learners
    that collect whole episodes from a fresh reset and use them at once (MAESN's
    ``collect_episodes``) then see rewards of a batch all computed with one discriminator, the current
    one. For learners that never reset (SB3's on-policy loop), set ``train_freq`` to their rollout length
    in steps. At most ``buffer_size`` transitions wait; when more arrive it trains early.

    Sub-envs carry a :class:`wrappers.SkillWrapper` and, optionally, a :class:`wrappers.LatentWrapper`
    outside it: the latent is stripped before the discriminator. The discriminator's observation space
    is then the skill-augmented space without the latent.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> from stable_baselines3.common.env_util import make_vec_env
        >>> from maesn_sb3.skills import VecSkillReward
        >>> from wrappers import SkillDiscriminator, SkillWrapper
        >>> venv = make_vec_env("maesn_sb3/PointNav2D-v0", n_envs=2, wrapper_class=SkillWrapper,
        ...                     wrapper_kwargs=dict(n_skills=4))
        >>> disc = SkillDiscriminator(venv.observation_space, n_skills=4, net_arch=(32, 32), seed=0)
        >>> venv = VecSkillReward(venv, disc, extrinsic_coef=1.0, intrinsic_coef=0.1)
        >>> obs = venv.reset()
        >>> obs, rewards, dones, infos = venv.step([[1.0, 0.0], [0.0, 1.0]])
        >>> info = infos[0]
        >>> r_env, r_skill = info["extrinsic_reward"], info["intrinsic_reward"]
        >>> bool(abs(rewards[0] - (r_env + 0.1 * r_skill)) < 1e-6)
        True

    :param venv: the VecEnv of skill-wrapped envs.
    :param discriminator: the :class:`wrappers.SkillDiscriminator`.
    :param extrinsic_coef: weight of the env reward.
    :param intrinsic_coef: weight of the skill reward.
    :param include_prior: add ``-log p(z) = log n_skills`` to the skill reward (drop it for envs that
        terminate at a goal: the positive constant rewards long episodes).
    :param train_discriminator: train the discriminator online.
    :param train_freq: train every ``train_freq`` steps; ``None``: at every :meth:`reset`.
    :param discriminator_batch_size: minibatch size of the discriminator updates.
    :param discriminator_epochs: passes over the waiting transitions per training.
    :param buffer_size: most transitions kept waiting for a training.
    :param seed: seed of the minibatch shuffling.
    """

    def __init__(
        self,
        venv: VecEnv,
        discriminator: SkillDiscriminator,
        extrinsic_coef: float = 1.0,
        intrinsic_coef: float = 1.0,
        include_prior: bool = True,
        train_discriminator: bool = True,
        train_freq: int | None = None,
        discriminator_batch_size: int = 256,
        discriminator_epochs: int = 1,
        buffer_size: int = 200_000,
        seed: int | None = None,
    ) -> None:
        if not isinstance(venv, VecEnv):
            raise TypeError(f"venv must be a stable_baselines3 VecEnv, got {type(venv).__name__}")
        if not isinstance(discriminator, SkillDiscriminator):
            raise TypeError(f"discriminator must be a SkillDiscriminator, got {type(discriminator).__name__}")
        super().__init__(venv)
        space = venv.observation_space
        self.latent_dim = 0
        if discriminator.observation_space != space:
            if all(venv.env_is_wrapped(LatentWrapper)):
                self.latent_dim = int(venv.get_attr("latent_dim", [0])[0])
            if (
                not self.latent_dim
                or strip_latent_space(space, self.latent_dim) != discriminator.observation_space
            ):
                raise ValueError(
                    f"discriminator.observation_space must be venv's observation space {space} (without a "
                    f"LatentWrapper's latent), got {discriminator.observation_space}"
                )
        self.discriminator = discriminator
        self.extrinsic_coef = _check_coef("extrinsic_coef", extrinsic_coef)
        self.intrinsic_coef = _check_coef("intrinsic_coef", intrinsic_coef)
        self.include_prior = bool(include_prior)
        self.train_discriminator = bool(train_discriminator)
        self.train_freq = None if train_freq is None else check_int("train_freq", train_freq)
        self.discriminator_batch_size = check_int("discriminator_batch_size", discriminator_batch_size)
        self.discriminator_epochs = check_int("discriminator_epochs", discriminator_epochs)
        self.buffer_size = check_int("buffer_size", buffer_size)
        self._rng = np.random.default_rng(check_seed("seed", seed))
        self._waiting: list[Obs] = []
        self._n_waiting = 0
        self._n_steps = 0
        self._stats: dict[str, list[float]] = {}

    # -- rewards ----------------------------------------------------------------------------------
    def _next_observations(self, obs: Obs, dones: np.ndarray, infos: Sequence[dict[str, Any]]) -> Obs:
        if isinstance(obs, dict):
            next_obs: Obs = {k: np.array(v, copy=True) for k, v in obs.items()}
        else:
            next_obs = np.array(obs, copy=True)
        for i in np.flatnonzero(dones):
            terminal = infos[i].get("terminal_observation")
            if terminal is None:
                raise RuntimeError("an episode ended without info['terminal_observation']: use an SB3 VecEnv")
            if isinstance(next_obs, dict):
                for key in next_obs:
                    next_obs[key][i] = terminal[key]
            else:
                next_obs[i] = terminal
        return strip_latent(next_obs, self.latent_dim) if self.latent_dim else next_obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.reset_infos = self.venv.reset_infos
        next_obs = self._next_observations(obs, dones, infos)
        intrinsic = self.discriminator.intrinsic_reward(next_obs, self.include_prior)
        for info, extrinsic, skill_reward in zip(infos, rewards, intrinsic, strict=True):
            info["extrinsic_reward"] = float(extrinsic)
            info["intrinsic_reward"] = float(skill_reward)
        self._add_stat("intrinsic_reward", float(intrinsic.mean()))
        mixed = mix_rewards(rewards, intrinsic, self.extrinsic_coef, self.intrinsic_coef)
        if self.train_discriminator:
            self._waiting.append(next_obs)
            self._n_waiting += len(intrinsic)
            self._n_steps += 1
            if self._n_waiting >= self.buffer_size or (
                self.train_freq is not None and self._n_steps % self.train_freq == 0
            ):
                self.train()
        return obs, mixed, dones, infos

    def reset(self) -> VecEnvObs:
        if self.train_discriminator and self.train_freq is None:
            self.train()
        obs = self.venv.reset()
        self.reset_infos = self.venv.reset_infos
        return obs

    # -- discriminator ------------------------------------------------------------------------------
    def train(self) -> dict[str, float]:
        """Train the discriminator on the waiting transitions now; returns the mean loss and accuracy."""
        if not self._waiting:
            return {}
        if isinstance(self._waiting[0], dict):
            data: Obs = {k: np.concatenate([w[k] for w in self._waiting]) for k in self._waiting[0]}
            n = len(next(iter(data.values())))
        else:
            data = np.concatenate(self._waiting)
            n = len(data)
        self._waiting, self._n_waiting = [], 0
        totals = {"loss": 0.0, "accuracy": 0.0}
        count = 0
        for _ in range(self.discriminator_epochs):
            order = self._rng.permutation(n)
            for start in range(0, n, self.discriminator_batch_size):
                rows = order[start : start + self.discriminator_batch_size]
                batch = {k: v[rows] for k, v in data.items()} if isinstance(data, dict) else data[rows]
                stats = self.discriminator.update(batch)
                for key in totals:
                    totals[key] += stats[key]
                count += 1
        means = {key: value / count for key, value in totals.items()}
        for key, value in means.items():
            self._add_stat(key, value)
        return means

    def _add_stat(self, key: str, value: float) -> None:
        total = self._stats.setdefault(key, [0.0, 0.0])
        total[0] += value
        total[1] += 1

    def pop_stats(self) -> dict[str, float]:
        """Means of the discriminator loss, accuracy (on its training minibatches) and intrinsic reward
        since the last call."""
        out = {key: total / count for key, (total, count) in self._stats.items()}
        self._stats.clear()
        return out


class SkillRewardCallback(BaseCallback):
    """Logs the discriminator of a :class:`VecSkillReward` in the model's env through SB3's logger.

    At the end of every rollout it records ``diayn/discriminator_loss``, ``diayn/discriminator_accuracy``
    (means over the discriminator's training minibatches since the last record) and
    ``diayn/intrinsic_reward`` (the same keys as :class:`maesn_sb3.skills.DIAYNCallback`). Works with any SB3
    algorithm and with MAESN, whose env may be a wrapper around the :class:`VecSkillReward`.
    """

    def _init_callback(self) -> None:
        env = unwrap_vec_wrapper(self.model.get_env(), VecSkillReward)
        if env is None:
            raise TypeError(
                f"SkillRewardCallback needs a model whose env holds a VecSkillReward, got "
                f"{type(self.model.get_env()).__name__}"
            )
        self.skill_reward = env

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        for key, value in self.skill_reward.pop_stats().items():
            name = "intrinsic_reward" if key == "intrinsic_reward" else f"discriminator_{key}"
            self.logger.record(f"diayn/{name}", value)
