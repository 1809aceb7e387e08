"""Per-episode latent injection for a whole vector env at once."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from wrappers.latent import (
    _FLOAT32_MAX,
    LatentWrapper,
    _as_vector,
    append_latent,
    latent_observation_space,
)

__all__ = ["LatentVectorWrapper"]


class LatentVectorWrapper(gym.vector.VectorWrapper, gym.utils.RecordConstructorArgs):
    """:class:`~wrappers.LatentWrapper` for every env of a vector env, as arrays.

    Env ``i`` gets a latent ``z_i ~ N(mean_i, std_i)`` drawn at each of its resets (auto-resets
    included) and held for its episode, appended to a ``Box`` observation (float32) or added under
    the ``"latent"`` key of a ``Dict`` one; ``info["latent"]`` carries it (and ``final_info["latent"]``
    the finished episode's). ``z_i`` comes from env ``i``'s own generator, right after that env's
    reset draws, as ``LatentWrapper`` draws it: a batched family's ``env_np_random(i)``, a
    ``SyncVectorEnv``'s ``envs[i].np_random``, else a generator per env seeded at ``reset(seed=...)``.
    So over a batched family it gives what a vector of ``LatentWrapper``s gives, bit for bit.

    Each env has its own distribution (default N(0, I)): :meth:`set_latent_distribution` for some
    envs, :meth:`set_latent_distributions` for all, effective from each env's next reset.
    ``reset(options={"latent": z})`` forces ``z`` (shape ``(latent_dim,)`` or
    ``(num_envs, latent_dim)``) for the episodes that reset starts.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> from wrappers import LatentVectorWrapper
        >>> envs = LatentVectorWrapper(gym.make_vec("maesn_sb3/PointNav2D-v0", num_envs=3), latent_dim=2)
        >>> envs.set_latent_distribution(mean=[1.0, -1.0], std=0.0, indices=[2])
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape, info["latent"][2].tolist()
        ((3, 4), [1.0, -1.0])

    :param env: the vector env to wrap; its single observation space must be a 1-D ``Box`` or a ``Dict``.
    :param latent_dim: size of the latent (>= 1).
    :param mean: mean of every env's latent distribution (scalar or ``(latent_dim,)``), default 0.
    :param std: standard deviation (scalar or ``(latent_dim,)``, >= 0), default 1.
    """

    #: what an env of the batch is wrapped in, seen from SB3's ``env_is_wrapped``
    single_env_equivalents: tuple[type, ...] = (LatentWrapper,)

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        latent_dim: int = 2,
        mean: float | np.ndarray | None = None,
        std: float | np.ndarray | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, latent_dim=latent_dim, mean=mean, std=std)
        gym.vector.VectorWrapper.__init__(self, env)
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
            raise ValueError(f"latent_dim must be an int >= 1, got {latent_dim!r}")
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        self._autoreset_mode = AutoresetMode(mode.value if isinstance(mode, AutoresetMode) else mode)
        self.latent_dim = int(latent_dim)
        n = self.num_envs
        self.single_observation_space, self._obs_size = latent_observation_space(
            env.single_observation_space, self.latent_dim, "LatentVectorWrapper"
        )
        self.observation_space = batch_space(self.single_observation_space, n)
        self._means = np.zeros((n, self.latent_dim))
        self._stds = np.ones((n, self.latent_dim))
        self.set_latent_distribution(mean=0.0 if mean is None else mean, std=1.0 if std is None else std)
        self._latents = np.zeros((n, self.latent_dim), dtype=np.float32)
        self._own_generators: list[np.random.Generator | None] = [None] * n
        self._pending = np.zeros(n, dtype=np.bool_)  # NEXT_STEP mode: envs that reset at the next step

    # -- latent distributions -------------------------------------------------------------------
    @property
    def latents(self) -> np.ndarray:
        """A copy of the current episodes' latents, shape ``(num_envs, latent_dim)``."""
        return self._latents.copy()

    @property
    def latent_distributions(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the ``(means, stds)`` of every env, each of shape ``(num_envs, latent_dim)``."""
        return self._means.copy(), self._stds.copy()

    def set_latent_distribution(
        self, mean: float | np.ndarray, std: float | np.ndarray, indices: Any = None
    ) -> None:
        """Set N(mean, std) for the next latents of the envs ``indices`` (None: all)."""
        mean = _as_vector(mean, "mean", self.latent_dim)
        std = _as_vector(std, "std", self.latent_dim)
        if np.any(std < 0):
            raise ValueError(f"std must be >= 0, got {std}")
        rows = self._check_indices(indices)
        self._means[rows] = mean
        self._stds[rows] = std

    def set_latent_distributions(self, means: np.ndarray, stds: np.ndarray) -> None:
        """Give env ``i`` the distribution N(means[i], stds[i]); both of shape ``(num_envs, latent_dim)``."""
        expected = (self.num_envs, self.latent_dim)
        means, stds = np.asarray(means, dtype=np.float64), np.asarray(stds, dtype=np.float64)
        for name, value in (("means", means), ("stds", stds)):
            if value.shape != expected:
                raise ValueError(
                    f"{name} must have shape {expected} (num_envs, latent_dim), got {value.shape}"
                )
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name} must be finite, got {value}")
            if np.any(np.abs(value) > _FLOAT32_MAX):
                raise ValueError(
                    f"{name} must fit in float32 (|value| <= {_FLOAT32_MAX:.4g}, the dtype of observations), "
                    f"got {value}"
                )
        if np.any(stds < 0):
            raise ValueError(f"stds must be >= 0, got {stds}")
        self._means, self._stds = means.copy(), stds.copy()

    def env_attr(self, name: str, index: int) -> Any:
        """The per-env attributes of :class:`~wrappers.LatentWrapper` for env ``index`` (for VecEnvs)."""
        if name == "latent_distribution":
            return self._means[index].copy(), self._stds[index].copy()
        if name == "latent":
            return self._latents[index].copy()
        raise AttributeError(name)

    def _check_indices(self, indices: Any) -> np.ndarray:
        if indices is None:
            return np.arange(self.num_envs)
        if isinstance(indices, (int, np.integer)) and not isinstance(indices, bool):
            indices = [indices]
        rows = np.asarray(indices)
        if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
            raise IndexError(f"indices must be None, an int or a 1-D sequence of ints, got {indices!r}")
        if np.any((rows < 0) | (rows >= self.num_envs)):
            raise IndexError(f"indices must lie in [0, {self.num_envs}), got {indices!r}")
        return rows

    # -- drawing --------------------------------------------------------------------------------
    def _generator(self, index: int) -> np.random.Generator:
        unwrapped = self.env.unwrapped
        if hasattr(unwrapped, "env_np_random"):
            return unwrapped.env_np_random(index)
        if isinstance(unwrapped, gym.vector.SyncVectorEnv):
            return unwrapped.envs[index].np_random
        rng = self._own_generators[index]
        if rng is None:
            rng, _ = seeding.np_random()
            self._own_generators[index] = rng
        return rng

    def _draw(self, rows: np.ndarray, forced: np.ndarray | None = None) -> None:
        if forced is not None:
            self._latents[rows] = forced[rows].astype(np.float32)
            return
        rows = rows.tolist()
        noise = np.array([self._generator(i).standard_normal(self.latent_dim) for i in rows])
        latents = self._means[rows] + self._stds[rows] * noise.reshape(len(rows), self.latent_dim)
        too_large = np.flatnonzero(np.any(np.abs(latents) > _FLOAT32_MAX, axis=1))
        if too_large.size:
            k, i = too_large[0], rows[too_large[0]]
            raise ValueError(
                f"the latent of env {i} drawn from N({self._means[i]}, {self._stds[i]}) does not fit "
                f"in float32: {latents[k]}; use a smaller mean or std"
            )
        self._latents[rows] = latents.astype(np.float32)

    def _with_latents(self, obs: Any) -> Any:
        if self._obs_size is None:
            return append_latent(obs, self._latents.copy())
        out = np.empty((self.num_envs, self._obs_size + self.latent_dim), dtype=np.float32)
        out[:, : self._obs_size] = obs
        out[:, self._obs_size :] = self._latents
        return out

    def _one_with_latent(self, obs: Any, latent: np.ndarray) -> Any:
        if self._obs_size is None:
            return append_latent(obs, latent.copy())
        out = np.empty(self._obs_size + self.latent_dim, dtype=np.float32)
        out[: self._obs_size] = obs
        out[self._obs_size :] = latent
        return out

    def _info_with_latents(self, info: dict[str, Any]) -> dict[str, Any]:
        info["latent"] = self._latents.copy()
        info["_latent"] = np.ones(self.num_envs, dtype=np.bool_)
        return info

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        forced = None
        if options is not None and "latent" in options:
            options = dict(options)
            value = np.asarray(options.pop("latent"), dtype=np.float64)
            if value.shape == (self.latent_dim,):
                value = np.tile(value, (self.num_envs, 1))
            forced = _as_vector(value.ravel(), "options['latent']", self.num_envs * self.latent_dim)
            forced = forced.reshape(self.num_envs, self.latent_dim)
        obs, info = self.env.reset(seed=seed, options=options)
        mask = None if options is None else options.get("reset_mask")
        rows = np.arange(self.num_envs) if mask is None else np.flatnonzero(mask)
        if seed is not None and not hasattr(self.env.unwrapped, "env_np_random"):
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            for i in rows.tolist():
                if seeds[i] is not None:
                    self._own_generators[i], _ = seeding.np_random(seeds[i])
        self._draw(rows, forced)
        self._pending[rows] = False
        return self._with_latents(obs), self._info_with_latents(info)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        done = np.asarray(terminated) | np.asarray(truncated)
        if self._autoreset_mode == AutoresetMode.NEXT_STEP:
            if self._pending.any():  # these envs were reset by this step
                self._draw(np.flatnonzero(self._pending))
            self._pending = done.copy()
        elif self._autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            ended = np.flatnonzero(done)
            final_obs = np.array(info["final_obs"], dtype=object, copy=True)
            final_info = dict(info.get("final_info", {}))
            finished = np.zeros_like(self._latents)
            for i in ended.tolist():
                final_obs[i] = self._one_with_latent(final_obs[i], self._latents[i])
                finished[i] = self._latents[i]
            final_info["latent"], final_info["_latent"] = finished, done.copy()
            info = {**info, "final_obs": final_obs, "final_info": final_info}
            self._draw(ended)
        return self._with_latents(obs), rewards, terminated, truncated, self._info_with_latents(info)
