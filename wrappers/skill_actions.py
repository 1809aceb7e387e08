"""Skills as actions: a frozen skill-conditioned policy becomes a ``Discrete`` action space of skills."""

from __future__ import annotations

from typing import Any, Protocol, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from wrappers.skills import SKILL_KEY, add_skill, check_skill, skill_observation_space

__all__ = ["SkillActionWrapper"]


class SkillPolicy(Protocol):
    """What the wrapper needs of the low-level model (any SB3 model has it)."""

    observation_space: spaces.Space
    action_space: spaces.Space

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]: ...


class SkillActionWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Turns a trained skill-conditioned model into an action space of skills.

    Action ``k`` (``Discrete(n_skills)``) runs the frozen low-level ``model`` with skill ``k`` shown as
    a one-hot (the layout of :class:`wrappers.SkillWrapper`) for ``skill_steps`` env steps, or fewer if
    the episode terminates or is truncated first. The step returns the last observation (without the
    one-hot), the sum of the env rewards, and the last info with ``info["skill"] = k`` and
    ``info["skill_steps"]`` (the env steps taken). Any algorithm can then act over skills.

    If the low-level model was trained on normalised observations, pass its ``VecNormalize`` as
    ``obs_normalizer``: its ``normalize_obs`` is applied (its statistics are not updated).

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> from stable_baselines3 import SAC
        >>> from wrappers import SkillActionWrapper, SkillWrapper
        >>> low = SAC("MlpPolicy", SkillWrapper(gym.make("maesn_sb3/PointNav2D-v0"), n_skills=4))
        >>> env = SkillActionWrapper(gym.make("maesn_sb3/PointNav2D-v0"), low, skill_steps=10)
        >>> env.action_space
        Discrete(4)
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(3)
        >>> info["skill"], info["skill_steps"]
        (3, 10)

    :param env: the env without skills (the one the low-level model's ``SkillWrapper`` wrapped).
    :param model: the low-level model; its observation space must be ``env``'s with the one-hot, its
        action space ``env``'s.
    :param skill_steps: env steps per skill action (>= 1).
    :param deterministic: run the low-level policy deterministically.
    :param obs_normalizer: the ``VecNormalize`` (or any object with ``normalize_obs``) the low-level
        model was trained with, or ``None``.
    """

    def __init__(
        self,
        env: gym.Env,
        model: SkillPolicy,
        skill_steps: int = 10,
        deterministic: bool = True,
        obs_normalizer: Any = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            model=model,
            skill_steps=skill_steps,
            deterministic=deterministic,
            obs_normalizer=obs_normalizer,
        )
        gym.Wrapper.__init__(self, env)
        if isinstance(skill_steps, bool) or not isinstance(skill_steps, (int, np.integer)) or skill_steps < 1:
            raise ValueError(f"skill_steps must be an int >= 1, got {skill_steps!r}")
        if not hasattr(model, "predict") or not hasattr(model, "observation_space"):
            raise TypeError(f"model must be a trained SB3 model (with predict), got {type(model).__name__}")
        if obs_normalizer is not None and not hasattr(obs_normalizer, "normalize_obs"):
            raise TypeError(
                f"obs_normalizer must have normalize_obs (a VecNormalize), got {obs_normalizer!r}"
            )
        space = env.observation_space
        model_space = model.observation_space
        if isinstance(space, spaces.Dict):
            skill_space = model_space.spaces.get(SKILL_KEY) if isinstance(model_space, spaces.Dict) else None
            n_skills = (
                skill_space.shape[0] if isinstance(skill_space, spaces.Box) and skill_space.shape else 0
            )
        elif isinstance(space, spaces.Box) and len(space.shape) == 1 and isinstance(model_space, spaces.Box):
            n_skills = model_space.shape[0] - space.shape[0] if len(model_space.shape) == 1 else 0
        else:
            n_skills = 0
        if n_skills < 2 or skill_observation_space(space, n_skills) != model_space:
            raise ValueError(
                f"model.observation_space must be env's observation space {space} with a skill one-hot "
                f"(as SkillWrapper makes it), got {model_space}"
            )
        if model.action_space != env.action_space:
            raise ValueError(
                f"model.action_space must be env's action space {env.action_space}, got {model.action_space}"
            )
        self.model = model
        self.n_skills = int(n_skills)
        self.skill_steps = int(skill_steps)
        self.deterministic = bool(deterministic)
        self.obs_normalizer = obs_normalizer
        self.action_space = spaces.Discrete(self.n_skills)
        self._obs: Any = None

    def _low_level_action(self, skill: int) -> np.ndarray:
        obs = add_skill(self._obs, skill, self.n_skills)
        if self.obs_normalizer is not None:
            batch = {k: v[None] for k, v in obs.items()} if isinstance(obs, dict) else obs[None]
            batch = self.obs_normalizer.normalize_obs(batch)
            obs = {k: v[0] for k, v in batch.items()} if isinstance(batch, dict) else batch[0]
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return action

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._obs is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        skill = check_skill(action, self.n_skills, "action")
        total = 0.0
        terminated = truncated = False
        info: dict[str, Any] = {}
        steps = 0
        while steps < self.skill_steps and not (terminated or truncated):
            obs, reward, terminated, truncated, info = self.env.step(self._low_level_action(skill))
            self._obs = obs
            total += float(reward)
            steps += 1
        info["skill"] = skill
        info["skill_steps"] = steps
        return self._obs, total, bool(terminated), bool(truncated), info
