"""``VecNormalize`` that leaves the skill's one-hot alone."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from wrappers.skills import SKILL_KEY

__all__ = ["SkillVecNormalize"]


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
