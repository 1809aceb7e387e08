"""An SB3 ``VecEnv`` over a Gymnasium ``VectorEnv``: the native backend of :class:`MetaTaskVecEnv`."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from maesn_sb3.vec_env.wrapper import PicklableVecEnvWrapper
from wrappers.latent_vector import LatentVectorWrapper

__all__ = [
    "MonitoredVectorEnvAdapter",
    "VectorEnvAdapter",
    "infos_per_env",
    "make_native_vec_env",
]

_FINAL_KEYS = ("final_obs", "final_info")


def infos_per_env(infos: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's vector infos (arrays with ``_key`` masks) as one dict per env, in the types a single
    env reports (1-D numeric arrays become Python floats, ints and bools; rows stay arrays)."""
    out: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, value in infos.items():
        if key in _FINAL_KEYS or (key.startswith("_") and key[1:] in infos):
            continue
        mask = infos.get(f"_{key}")
        if isinstance(value, dict):
            rows: Sequence[Any] = infos_per_env(value, num_envs)
        elif isinstance(value, np.ndarray) and value.shape[:1] == (num_envs,):
            rows = value.tolist() if value.ndim == 1 and value.dtype != object else list(value)
        else:
            rows = [value] * num_envs
        if mask is None or mask.all():
            for info, row in zip(out, rows, strict=True):
                info[key] = row
        else:
            for i in np.flatnonzero(mask).tolist():
                out[i][key] = rows[i]
    return out


class VectorEnvAdapter(VecEnv):
    """Lets SB3 (and :class:`~maesn_sb3.MetaTaskVecEnv`) use a Gymnasium ``VectorEnv``.

    SB3's contract: auto-reset inside ``step`` with ``info["terminal_observation"]`` and
    ``info["TimeLimit.truncated"]``, the new episodes' infos in ``reset_infos``, seeds and options
    consumed at the next ``reset``. The vector env must auto-reset in ``SAME_STEP`` mode (the batched
    task families do) or not at all (``DISABLED``: the adapter resets finished envs through
    ``options["reset_mask"]``).

    ``env_method``, ``get_attr`` and ``set_attr`` look the name up through the vector wrappers, outermost
    first, and route ``indices`` to the batch:

    - a method with an ``indices`` parameter (``set_task(task, indices)``) is called once with them;
      one with an ``index`` parameter (``get_task(index)``, ``sample_tasks(n, index)``) once per index;
      any other method acts on the whole batch, so it is called once and only for every env;
    - ``get_attr`` asks a layer's ``env_attr(name, index)`` for per-env values (a latent wrapper's
      ``latent_distribution``) before the layer's own attribute, which every env shares;
    - ``set_attr`` sets a shared attribute for every env only; names no layer has are kept per env;
    - names no layer has go to the single envs of a Gymnasium ``SyncVectorEnv``, one by one.

    ``env_is_wrapped(cls)`` answers True when a layer is a ``cls`` or declares a single-env equivalent
    of it in ``single_env_equivalents`` (the batched families: ``TimeLimit``; ``LatentVectorWrapper``:
    ``LatentWrapper``), so code written for a ``DummyVecEnv`` of wrapped envs asks the same question.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> from maesn_sb3.vector_adapter import VectorEnvAdapter
        >>> venv = VectorEnvAdapter(gym.make_vec("maesn_sb3/PointNav2D-v0", num_envs=4))
        >>> venv.env_method("set_task", {"goal": [1.0, 0.0]}, indices=[0, 1])
        [None, None]
        >>> venv.reset().shape
        (4, 2)

    :param env: the Gymnasium vector env (a batched task family, possibly wrapped).
    """

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        if not isinstance(env, gym.vector.VectorEnv):
            raise TypeError(f"env must be a gymnasium.vector.VectorEnv, got {type(env).__name__}")
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        mode = AutoresetMode(mode.value if isinstance(mode, AutoresetMode) else mode)
        if mode == AutoresetMode.NEXT_STEP:
            raise ValueError(
                "env must auto-reset in AutoresetMode.SAME_STEP or DISABLED (metadata['autoreset_mode']), "
                "got NEXT_STEP; make a SyncVectorEnv with autoreset_mode=AutoresetMode.SAME_STEP"
            )
        self.env = env
        self._autoreset_mode = mode
        self._per_env_attrs: list[dict[str, Any]] = [{} for _ in range(env.num_envs)]
        self._pending_actions: np.ndarray | None = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    # -- the wrapper chain ----------------------------------------------------------------------
    def _layers(self) -> list[Any]:
        layers, env = [], self.env
        while True:
            layers.append(env)
            if not isinstance(env, gym.vector.VectorWrapper):
                return layers
            env = env.env

    def _owner(self, name: str) -> Any | None:
        """The outermost layer that has ``name`` itself (vector wrappers do not forward attributes)."""
        for layer in self._layers():
            if hasattr(layer, name):
                return layer
        return None

    def _sub_envs(self) -> list[gym.Env] | None:
        """The single envs of a Gymnasium ``SyncVectorEnv`` at the bottom, else None."""
        unwrapped = self.env.unwrapped
        return list(unwrapped.envs) if isinstance(unwrapped, gym.vector.SyncVectorEnv) else None

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, (int, np.integer)) and not isinstance(indices, bool):
            indices = [indices]
        out = []
        for index in indices:
            is_int = isinstance(index, (int, np.integer)) and not isinstance(index, bool)
            if not is_int or not 0 <= index < self.num_envs:
                raise IndexError(
                    f"indices must be None, an int or ints in [0, {self.num_envs}), got {indices!r}"
                )
            out.append(int(index))
        return out

    # -- VecEnv ---------------------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        seeds = None if all(seed is None for seed in self._seeds) else list(self._seeds)
        options = None
        if any(self._options):
            if any(option != self._options[0] for option in self._options):
                raise ValueError(
                    "a vector env takes one options dict for all its envs: set_options(dict), "
                    f"got different options per env {self._options!r}"
                )
            options = dict(self._options[0])
        obs, infos = self.env.reset(seed=seeds, options=options)
        self.reset_infos = infos_per_env(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._pending_actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, infos = self.env.step(self._pending_actions)
        terminated, truncated = np.asarray(terminated, dtype=bool), np.asarray(truncated, dtype=bool)
        dones = terminated | truncated
        step_infos = infos_per_env(infos, self.num_envs)
        limit = (truncated & ~terminated).tolist()
        if dones.any():
            ended = np.flatnonzero(dones).tolist()
            if self._autoreset_mode == AutoresetMode.SAME_STEP:
                finals = infos_per_env(infos.get("final_info", {}), self.num_envs)
                final_obs = infos["final_obs"]
            else:  # DISABLED: the finished envs' rows are their last observations; reset them now
                finals, final_obs = step_infos, [_row(obs, i) for i in range(self.num_envs)]
                new_obs, reset = self.env.reset(options={"reset_mask": dones})
                step_infos = [dict(info) for info in step_infos]
                reset_rows = infos_per_env(reset, self.num_envs)
                obs = _merge_rows(obs, new_obs, dones)
                for i in ended:
                    step_infos[i] = reset_rows[i]
            for i in ended:
                self.reset_infos[i] = step_infos[i]
                step_infos[i] = finals[i]
                step_infos[i]["terminal_observation"] = final_obs[i]
        for info, limited in zip(step_infos, limit, strict=True):
            info["TimeLimit.truncated"] = limited
        return obs, np.asarray(rewards, dtype=np.float32), dones, step_infos

    def close(self) -> None:
        self.env.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.env.render()
        return [] if frames is None else list(frames)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Per-env values where a layer gives them (``env_attr``), else the batch's shared value."""
        targets = self._indices(indices)
        for layer in self._layers():
            per_env = getattr(layer, "env_attr", None)
            if per_env is not None:
                try:
                    return [per_env(attr_name, i) for i in targets]
                except AttributeError:
                    pass
        if all(attr_name in self._per_env_attrs[i] for i in targets):
            return [self._per_env_attrs[i][attr_name] for i in targets]
        owner = self._owner(attr_name)
        if owner is None:
            sub_envs = self._sub_envs()
            if sub_envs is not None:  # Gymnasium's SyncVectorEnv: ask its envs
                return [sub_envs[i].get_wrapper_attr(attr_name) for i in targets]
            raise AttributeError(f"no layer of the vector env {self.env} has an attribute {attr_name!r}")
        value = getattr(owner, attr_name)
        return [value for _ in targets]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set a shared attribute of the batch (every env only), or keep a new name per env."""
        targets = self._indices(indices)
        owner = self._owner(attr_name)
        sub_envs = self._sub_envs()
        if owner is None and sub_envs is not None:
            for i in targets:
                setattr(sub_envs[i], attr_name, value)
            return
        if owner is None:
            for i in targets:
                self._per_env_attrs[i][attr_name] = value
            return
        if len(set(targets)) != self.num_envs:
            raise ValueError(
                f"{attr_name!r} is one attribute of the whole batch ({type(owner).__name__}): set it with "
                f"indices=None, got indices={indices!r}"
            )
        setattr(owner, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the batch, routing ``indices`` (see the class docstring)."""
        targets = self._indices(indices)
        owner = self._owner(method_name)
        sub_envs = self._sub_envs()
        if owner is None and sub_envs is not None:
            methods = [sub_envs[i].get_wrapper_attr(method_name) for i in targets]
            return [method(*method_args, **method_kwargs) for method in methods]
        if owner is None:
            raise AttributeError(f"no layer of the vector env {self.env} has a method {method_name!r}")
        method = getattr(owner, method_name)
        try:
            parameters = inspect.signature(method).parameters
        except (TypeError, ValueError):
            parameters = {}
        if "indices" in parameters:
            result = method(*method_args, indices=targets, **method_kwargs)
            return list(result) if isinstance(result, (list, tuple)) else [result for _ in targets]
        if "index" in parameters:
            return [method(*method_args, index=i, **method_kwargs) for i in targets]
        if len(set(targets)) != self.num_envs:
            raise ValueError(
                f"{method_name!r} acts on the whole batch (it takes no 'indices' or 'index' argument): "
                f"call it with indices=None, got indices={indices!r}"
            )
        result = method(*method_args, **method_kwargs)
        return [result for _ in targets]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """True where a layer is a ``wrapper_class`` or stands for one (``single_env_equivalents``)."""
        targets = self._indices(indices)
        wrapped = False
        for layer in self._layers():
            equivalents = (type(layer), *getattr(layer, "single_env_equivalents", ()))
            if any(isinstance(cls, type) and issubclass(cls, wrapper_class) for cls in equivalents):
                wrapped = True
        return [wrapped for _ in targets]


class MonitoredVectorEnvAdapter(PicklableVecEnvWrapper, VecMonitor):
    """SB3's ``VecMonitor`` (``info["episode"]``) that passes the backend's ``reset_infos`` through."""

    def reset(self) -> VecEnvObs:
        obs = super().reset()
        self.reset_infos = self.venv.reset_infos
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        out = super().step_wait()
        self.reset_infos = self.venv.reset_infos
        return out


def make_native_vec_env(
    env_id: str | Callable[..., gym.Env],
    n_envs: int,
    seed: int | None = None,
    latent_dim: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | None = None,
    batch_kwargs: dict[str, Any] | None = None,
    unsupported: dict[str, Any] | None = None,
) -> VecEnv:
    """The native backend of ``make_meta_vec_env(..., vectorization="native")``: the id's batched
    family, a :class:`~wrappers.LatentVectorWrapper` when ``latent_dim`` is set, the adapter, SB3's
    ``VecMonitor``; env ``i`` is seeded with ``seed + i`` at the first reset (as ``make_vec_env``).
    ``env_kwargs`` go to the batch as to a single env, ``batch_kwargs`` are the batch's own
    (``threads``, ``use_mujoco_batch``, ``render_index``)."""
    if not isinstance(env_id, str):
        raise TypeError(
            "vectorization='native' needs a registered env id with a vector_entry_point, "
            f"got {type(env_id).__name__} {env_id!r}"
        )
    spec = gym.spec(env_id)
    if spec.vector_entry_point is None:
        raise ValueError(
            f"vectorization='native' needs an env id with a vector_entry_point; {env_id!r} has none: "
            "use vectorization='dummy' or 'subproc'"
        )
    given = sorted(name for name, value in (unsupported or {}).items() if value)
    if given:
        raise ValueError(f"vectorization='native' does not take {', '.join(given)}; got {given}")
    kwargs = {**(env_kwargs or {}), **(batch_kwargs or {})}
    envs = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point", **kwargs)
    if latent_dim is not None:
        envs = LatentVectorWrapper(envs, latent_dim=latent_dim)
    filename = None
    if monitor_dir is not None:
        os.makedirs(monitor_dir, exist_ok=True)
        filename = os.path.join(monitor_dir, "native")
    venv = MonitoredVectorEnvAdapter(VectorEnvAdapter(envs), filename=filename)
    if seed is not None:
        venv.seed(seed)
        venv.action_space.seed(seed)
    return venv


def _row(obs: Any, i: int) -> Any:
    if isinstance(obs, dict):
        return {key: value[i].copy() for key, value in obs.items()}
    return obs[i].copy()


def _merge_rows(obs: Any, new: Any, mask: np.ndarray) -> Any:
    if isinstance(obs, dict):
        return {key: np.where(_column(mask, value), new[key], value) for key, value in obs.items()}
    return np.where(_column(mask, obs), new, obs)


def _column(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    return mask.reshape(-1, *([1] * (np.ndim(like) - 1)))
