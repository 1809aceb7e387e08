"""Per-episode skills (DIAYN): a categorical skill shown to the agent as a one-hot."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["SKILL_KEY", "SkillWrapper", "add_skill", "check_skill", "skill_observation_space"]

#: The key of the one-hot skill in ``Dict`` observations.
SKILL_KEY = "skill"


def check_skill(skill: Any, n_skills: int, name: str = "skill") -> int:
    """Return ``skill`` as a python int, or raise if it is not an int in ``[0, n_skills)``."""
    if isinstance(skill, np.ndarray) and skill.shape == ():
        skill = skill.item()
    if isinstance(skill, bool) or not isinstance(skill, (int, np.integer)) or not 0 <= skill < n_skills:
        raise ValueError(f"{name} must be an int in [0, {n_skills}) (n_skills), got {skill!r}")
    return int(skill)


def skill_observation_space(space: spaces.Space, n_skills: int) -> spaces.Box | spaces.Dict:
    """The observation space of ``space`` with a one-hot of ``n_skills`` skills added.

    A 1-D ``Box`` gets the one-hot appended (float32, bounds [0, 1] on the one-hot part); a ``Dict``
    gets it under the ``"skill"`` key. Other spaces raise ``TypeError``.
    """
    onehot = spaces.Box(0.0, 1.0, shape=(n_skills,), dtype=np.float32)
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return spaces.Box(
            low=np.concatenate([space.low.astype(np.float32), onehot.low]),
            high=np.concatenate([space.high.astype(np.float32), onehot.high]),
            dtype=np.float32,
        )
    if isinstance(space, spaces.Dict):
        if SKILL_KEY in space.spaces:
            raise ValueError(f"the Dict observation space already has a {SKILL_KEY!r} key: {space}")
        return spaces.Dict({**space.spaces, SKILL_KEY: onehot})
    raise TypeError(
        f"skills need a 1-D Box or a Dict observation space, got {space}; "
        "flatten other spaces first (gymnasium.wrappers.FlattenObservation)"
    )


def add_skill(obs: Any, skill: int, n_skills: int) -> Any:
    """Add the one-hot of ``skill`` to one observation (appended to an array, or a ``"skill"`` key)."""
    if isinstance(obs, dict):
        onehot = np.zeros(n_skills, dtype=np.float32)
        onehot[skill] = 1.0
        return {**obs, SKILL_KEY: onehot}
    obs = np.asarray(obs)
    out = np.zeros(obs.shape[0] + n_skills, dtype=np.float32)
    out[: obs.shape[0]] = obs
    out[obs.shape[0] + skill] = 1.0
    return out


class SkillWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Samples a skill ``z`` from a uniform categorical prior once per episode and shows it as a one-hot.

    ``z`` is drawn at every :meth:`reset` from the env's seeded generator (so ``reset(seed=s)``
    reproduces it and every auto-reset of a VecEnv resamples it), held for the whole episode, and
    appended as a one-hot to a 1-D ``Box`` observation (the last ``n_skills`` entries of the float32
    result) or added under the ``"skill"`` key of a ``Dict`` observation. ``info["skill"]`` carries it
    on reset and step. ``reset(options={"skill": k})`` forces skill ``k`` for one episode.

    The wrapper does not change rewards: the DIAYN reward needs the discriminator, which lives with
    the learner (see :class:`wrappers.SkillDiscriminator` and :mod:`maesn_sb3.skills`).

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> from wrappers import SkillWrapper
        >>> env = SkillWrapper(gym.make("maesn_sb3/PointNav2D-v0"), n_skills=4)
        >>> obs, info = env.reset(seed=0, options={"skill": 2})
        >>> obs.tolist(), info["skill"]
        ([0.0, 0.0, 0.0, 0.0, 1.0, 0.0], 2)

    :param env: the env to wrap; its observation space must be a 1-D ``Box`` or a ``Dict``.
    :param n_skills: number of skills (>= 2).
    """

    def __init__(self, env: gym.Env, n_skills: int = 10) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, n_skills=n_skills)
        gym.Wrapper.__init__(self, env)
        if isinstance(n_skills, bool) or not isinstance(n_skills, (int, np.integer)) or n_skills < 2:
            raise ValueError(f"n_skills must be an int >= 2, got {n_skills!r}")
        self.n_skills = int(n_skills)
        self.observation_space = skill_observation_space(env.observation_space, self.n_skills)
        self._skill = 0

    @property
    def skill(self) -> int:
        """The skill of the current episode."""
        return self._skill

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        forced = None
        if options is not None and SKILL_KEY in options:
            options = dict(options)
            forced = check_skill(options.pop(SKILL_KEY), self.n_skills, "options['skill']")
        obs, info = self.env.reset(seed=seed, options=options)
        self._skill = int(self.np_random.integers(self.n_skills)) if forced is None else forced
        info["skill"] = self._skill
        return add_skill(obs, self._skill, self.n_skills), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["skill"] = self._skill
        return add_skill(obs, self._skill, self.n_skills), reward, terminated, truncated, info
