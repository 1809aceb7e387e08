"""Per-episode latent injection, and the one definition of where a latent sits in an observation.

A 1-D ``Box`` observation carries the latent in its last ``latent_dim`` entries; a ``Dict`` one under
the :data:`LATENT_KEY` key. Everything that builds or reads such observations (the wrappers, episode
batches, the algorithms' losses and ``predict``, the skill VecEnvs) goes through :func:`append_latent`,
:func:`inject_latent`, :func:`split_latent`, :func:`strip_latent`, :func:`replace_latent` and
:func:`strip_latent_space`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, SupportsFloat, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces

__all__ = [
    "LATENT_KEY",
    "LatentWrapper",
    "append_latent",
    "inject_latent",
    "replace_latent",
    "split_latent",
    "strip_latent",
    "strip_latent_space",
]

#: The key of the latent in a ``Dict`` observation.
LATENT_KEY = "latent"

Array = TypeVar("Array", np.ndarray, th.Tensor)


def append_latent(obs: Array | dict[str, Array], latent: Array) -> Array | dict[str, Array]:
    """``obs`` (one observation or a batch, numpy or torch) with ``latent`` added: appended on the last
    axis of an array, under :data:`LATENT_KEY` of a dict.

    Example:
        >>> append_latent(np.zeros((2, 3)), np.ones((2, 1))).tolist()
        [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]]
    """
    if isinstance(obs, dict):
        return {**obs, LATENT_KEY: latent}
    if isinstance(obs, th.Tensor):
        return th.cat([obs, latent], dim=-1)
    return np.concatenate([obs, latent], axis=-1)


def inject_latent(
    obs: np.ndarray | dict[str, np.ndarray],
    space: spaces.Space,
    latent_dim: int,
    latents: Callable[[int], np.ndarray],
) -> np.ndarray | dict[str, np.ndarray]:
    """``obs`` (one observation of ``space`` or a batch of them) with a latent where it comes without one.

    ``space`` is the observation space with the latent (a :class:`LatentWrapper`'s, or that of a model
    trained on one). An observation that carries its latent (a ``Dict`` one under :data:`LATENT_KEY`, a
    1-D ``Box`` one with the space's size) is returned as it is. One without it (a ``Box`` one
    ``latent_dim`` features shorter) gets ``latents(n)``, the ``(n, latent_dim)`` latents of its ``n``
    rows (1 for one observation), as float32 through :func:`append_latent` (a ``Box`` result is float32).
    Other sizes raise a ``ValueError``.

    Example:
        >>> space = spaces.Box(-1.0, 1.0, shape=(3,))  # 2 features and a 1-D latent
        >>> def ones(n):
        ...     return np.ones((n, 1))
        >>> inject_latent(np.zeros((2, 2)), space, 1, ones).tolist()
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
        >>> inject_latent(np.zeros(2), space, 1, ones).tolist()
        [0.0, 0.0, 1.0]
        >>> inject_latent(np.zeros(3), space, 1, ones).tolist()  # it has its latent
        [0.0, 0.0, 0.0]
    """
    if isinstance(obs, dict):
        if LATENT_KEY in obs:
            return obs
        key, value = next(iter(obs.items()))
        batched = np.ndim(value) > len(space[key].shape)
        n = len(value) if batched else 1
    else:
        obs = np.asarray(obs)
        n_with = space.shape[-1]
        if obs.shape[-1] == n_with:
            return obs
        if obs.shape[-1] != n_with - latent_dim:
            raise ValueError(
                f"observation must have {n_with} features (with the latent) or "
                f"{n_with - latent_dim} (without), got shape {obs.shape}"
            )
        batched = obs.ndim > 1
        n = int(np.prod(obs.shape[:-1])) if batched else 1
    rows = np.asarray(latents(n)).astype(np.float32)
    with_latent = append_latent(obs, rows if batched else rows[0])
    return with_latent if isinstance(with_latent, dict) else with_latent.astype(np.float32)


def split_latent(obs: Array | dict[str, Array], latent_dim: int) -> tuple[Array | dict[str, Array], Array]:
    """``(obs without its latent, the latent)`` of an observation or batch built by :func:`append_latent`."""
    latent = obs[LATENT_KEY] if isinstance(obs, dict) else obs[..., -latent_dim:]
    return strip_latent(obs, latent_dim), latent


def strip_latent(obs: Array | dict[str, Array], latent_dim: int) -> Array | dict[str, Array]:
    """The observation (or batch) without its latent (a dict without the key is returned as it is)."""
    if isinstance(obs, dict):
        return {k: v for k, v in obs.items() if k != LATENT_KEY}
    return obs[..., :-latent_dim]


def replace_latent(obs: Array | dict[str, Array], latent: Array) -> Array | dict[str, Array]:
    """The observation (or batch) with its latent replaced by ``latent`` (``(..., latent_dim)``)."""
    return append_latent(strip_latent(obs, latent.shape[-1]), latent)


def strip_latent_space(space: spaces.Space, latent_dim: int) -> spaces.Space:
    """The observation space without its latent part (the inverse of :func:`latent_observation_space`)."""
    if isinstance(space, spaces.Dict):
        return spaces.Dict({k: v for k, v in space.spaces.items() if k != LATENT_KEY})
    return spaces.Box(space.low[:-latent_dim], space.high[:-latent_dim], dtype=space.dtype)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _as_vector(value: Any, name: str, size: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}") from error
    if array.ndim == 0:
        array = np.full(size, float(array))
    if array.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},) (latent_dim), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array}")
    if np.any(np.abs(array) > _FLOAT32_MAX):
        raise ValueError(
            f"{name} must fit in float32 (|value| <= {_FLOAT32_MAX:.4g}, the dtype of observations), "
            f"got {array}"
        )
    return array


def latent_observation_space(
    space: spaces.Space, latent_dim: int, owner: str
) -> tuple[spaces.Space, int | None]:
    """Where a latent sits in an observation: the space with the latent and the size of the env's part.

    A 1-D ``Box`` gets the latent appended (a float32 ``Box``, unbounded on the latent part; the size
    returned is the env's part), a ``Dict`` gets a ``"latent"`` key (size None).
    """
    latent_space = spaces.Box(-np.inf, np.inf, shape=(latent_dim,), dtype=np.float32)
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        with_latent = spaces.Box(
            low=np.concatenate([space.low.astype(np.float32), latent_space.low]),
            high=np.concatenate([space.high.astype(np.float32), latent_space.high]),
            dtype=np.float32,
        )
        return with_latent, space.shape[0]
    if isinstance(space, spaces.Dict):
        if LATENT_KEY in space.spaces:
            raise ValueError(f"the Dict observation space of env already has a {LATENT_KEY!r} key")
        return spaces.Dict({**space.spaces, LATENT_KEY: latent_space}), None
    raise TypeError(
        f"{owner} needs a 1-D Box or a Dict observation space, got {space}; "
        "flatten other spaces first (gymnasium.wrappers.FlattenObservation)"
    )


class LatentWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Samples a latent ``z ~ N(mean, std)`` once per episode and shows it to the agent.

    ``z`` is drawn at every :meth:`reset` from the env's seeded generator (so ``reset(seed=s)``
    reproduces it), held fixed for the whole episode, and appended to a ``Box`` observation
    (the result is a float32 ``Box``, unbounded on the latent part) or added under the
    ``"latent"`` key of a ``Dict`` observation. ``info["latent"]`` carries it on reset and step.

    The distribution defaults to the prior N(0, I); change it with
    :meth:`set_latent_distribution` (also through ``VecEnv.env_method``), effective from the next
    reset. ``reset(options={"latent": z})`` forces ``z`` for one episode.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> from wrappers import LatentWrapper
        >>> env = LatentWrapper(gym.make("maesn_sb3/PointNav2D-v0"), latent_dim=2)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, info["latent"].shape
        ((4,), (2,))
        >>> env.set_latent_distribution(mean=[1.0, -1.0], std=[0.0, 0.0])
        >>> obs, info = env.reset()
        >>> info["latent"].tolist()
        [1.0, -1.0]

    :param env: the env to wrap; its observation space must be a ``Box`` or a ``Dict``.
    :param latent_dim: size of the latent (>= 1).
    :param mean: mean of the latent distribution (scalar or ``(latent_dim,)``), default 0.
    :param std: standard deviation (scalar or ``(latent_dim,)``, >= 0), default 1.
    """

    def __init__(
        self,
        env: gym.Env,
        latent_dim: int = 2,
        mean: float | np.ndarray | None = None,
        std: float | np.ndarray | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, latent_dim=latent_dim, mean=mean, std=std)
        gym.Wrapper.__init__(self, env)
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
            raise ValueError(f"latent_dim must be an int >= 1, got {latent_dim!r}")
        self.latent_dim = int(latent_dim)
        self.observation_space, self._obs_size = latent_observation_space(
            env.observation_space, self.latent_dim, "LatentWrapper"
        )
        self._mean = np.zeros(self.latent_dim)
        self._std = np.ones(self.latent_dim)
        self.set_latent_distribution(mean=0.0 if mean is None else mean, std=1.0 if std is None else std)
        self._latent = np.zeros(self.latent_dim, dtype=np.float32)
        self._latent.flags.writeable = False
        # Box observations: a template holding the episode's latent in its tail; each step copies it
        # and writes the env's observation into the head (one copy, one slice assignment).
        self._head: slice | None = None
        self._template: np.ndarray | None = None
        if self._obs_size is not None:
            self._head = slice(0, self._obs_size)
            self._template = np.zeros(self._obs_size + self.latent_dim, dtype=np.float32)

    @property
    def latent(self) -> np.ndarray:
        """A copy of the latent of the current episode."""
        return self._latent.copy()

    @property
    def latent_distribution(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the current ``(mean, std)``."""
        return self._mean.copy(), self._std.copy()

    def set_latent_distribution(self, mean: float | np.ndarray, std: float | np.ndarray) -> None:
        """Set N(mean, std) for the latents of the following episodes."""
        mean = _as_vector(mean, "mean", self.latent_dim)
        std = _as_vector(std, "std", self.latent_dim)
        if np.any(std < 0):
            raise ValueError(f"std must be >= 0, got {std}")
        self._mean, self._std = mean, std

    def _with_latent(self, obs: Any) -> Any:
        if self._template is None:
            return inject_latent(obs, self.observation_space, self.latent_dim, lambda n: self._latent[None])
        out = self._template.copy()
        out[self._head] = obs
        return out

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        forced = None
        if options is not None and "latent" in options:
            options = dict(options)
            forced = _as_vector(options.pop("latent"), "options['latent']", self.latent_dim)
        obs, info = self.env.reset(seed=seed, options=options)
        if forced is None:
            latent = self._mean + self._std * self.np_random.standard_normal(self.latent_dim)
        else:
            latent = forced
        if np.any(np.abs(latent) > _FLOAT32_MAX):
            raise ValueError(
                f"the latent drawn from N({self._mean}, {self._std}) does not fit in float32: {latent}; "
                "use a smaller mean or std"
            )
        self._latent = latent.astype(np.float32)
        self._latent.flags.writeable = False
        if self._template is not None:
            self._template[self._obs_size :] = self._latent
        info["latent"] = self._latent.copy()
        return self._with_latent(obs), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["latent"] = self._latent.copy()
        template = self._template
        if template is None:
            return self._with_latent(obs), reward, terminated, truncated, info
        out = template.copy()  # the hot path: one copy and one slice assignment
        out[self._head] = obs
        return out, reward, terminated, truncated, info
