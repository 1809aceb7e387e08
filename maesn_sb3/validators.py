"""Argument checks shared by the package: one place for "what is a valid X", with clear errors.

The lowest layer: every layer may import it (the task families and ``wrappers/`` included); it imports
nothing from the package."""

from __future__ import annotations

import inspect
import json
import os
import pathlib
import zipfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = [
    "available_cores",
    "check_episodes",
    "check_float",
    "check_int",
    "check_model_file",
    "check_observation",
    "check_seed",
    "check_threads",
    "check_timesteps",
    "check_unit_interval",
]


def available_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_threads(name: str, value: Any) -> int:
    """A thread count: ``value`` as an int >= 1, or the cores this process may use for None."""
    return available_cores() if value is None else check_int(name, value)


def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None, note: str = "") -> int:
    """``value`` as an int, or a ``ValueError`` naming ``name`` unless it is an int in
    ``[minimum, maximum]`` (``maximum`` None: no upper bound); ``note`` follows the range in the message.

    Example:
        >>> check_int("n_workers", 3, maximum=2, note=" (the groups of sub-envs)")
        Traceback (most recent call last):
        ...
        ValueError: n_workers must be an int in [1, 2] (the groups of sub-envs), got 3
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an int {bound}{note}, got {value!r}")
    return int(value)


def check_optional_int(name: str, value: Any, minimum: int = 1) -> int | None:
    """``value`` as None or an int ``>= minimum``, else a ``ValueError`` naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be None or an int >= {minimum}, got {value!r}")
    return int(value)


def check_slot(slot: Any, n_slots: int) -> int:
    """``slot`` as an index into ``n_slots`` adapted task slots, or a ``ValueError`` naming the range."""
    if isinstance(slot, bool) or not isinstance(slot, (int, np.integer)) or not 0 <= slot < n_slots:
        raise ValueError(f"slot must be an int in [0, {n_slots}) (the adapted task slots), got {slot!r}")
    return int(slot)


def check_float(name: str, value: Any, minimum: float | None = None, strict: bool = False) -> float:
    """``value`` as a finite float ``>= minimum`` (``> minimum`` if ``strict``), else a ``ValueError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number) or (
        minimum is not None and (number <= minimum if strict else number < minimum)
    ):
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return number


def check_seed(name: str, value: Any) -> int | None:
    """``value`` as a seed: None or an int ``>= 0``, else a ``ValueError`` naming ``name``."""
    return None if value is None else check_int(name, value, minimum=0)


def check_timesteps(value: Any) -> int:
    """``total_timesteps`` as an int ``>= 0`` (a whole float such as ``1e6`` is accepted, as in SB3)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"total_timesteps must be an int (env steps), got {value!r}")
    if value < 0:
        raise ValueError(f"total_timesteps must be >= 0, got {value!r}")
    return int(value)


def _numeric(name: str, value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of numbers, got {value!r:.100}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        rows = np.atleast_1d(array)
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(rows))[0])
        feature = index[-1] if rows.ndim <= 2 else index[1:]
        where = f"feature {feature}" if rows.ndim == 1 else f"row {index[0]}, feature {feature}"
        raise ValueError(
            f"{name} is not finite at {where} (got {rows[index]}): the policy cannot act on NaN or "
            "infinite inputs; check the env (or the wrapper) that produced it"
        )
    return array


def check_observation(
    observation: Any, space: spaces.Space, n_features: Sequence[int] | None = None
) -> np.ndarray | dict[str, np.ndarray]:
    """One observation of ``space`` or a batch of them, as numeric arrays; else an error saying what
    came and what is expected. For a 1-D ``Box`` the accepted sizes are ``n_features`` (default: the
    space's)."""
    if isinstance(space, spaces.Dict):
        if not isinstance(observation, dict):
            raise TypeError(
                f"observation must be a dict with keys {sorted(space.spaces)} (the model's Dict space), "
                f"got {type(observation).__name__}"
            )
        return {key: _numeric(f"observation[{key!r}]", value) for key, value in observation.items()}
    array = _numeric("observation", observation)
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        sizes = tuple(n_features) if n_features else space.shape
        if array.ndim not in (1, 2) or array.shape[-1] not in sizes:
            expected = " or ".join(f"({n},) or (n_envs, {n})" for n in sizes)
            features = " or ".join(str(n) for n in sizes)
            raise ValueError(
                f"observation must have shape {expected} ({features} features), got shape {array.shape}"
            )
    return array


_GENERIC_ARGUMENTS = {
    "self", "policy", "env", "learning_rate", "policy_kwargs", "stats_window_size", "tensorboard_log",
    "verbose", "seed", "device", "_init_setup_model", "kwargs",
}  # fmt: skip


def check_model_file(path: str | os.PathLike[str], cls: type[BaseAlgorithm]) -> pathlib.Path:
    """The model zip at ``path`` (or ``path.zip``, as SB3 tries), checked to hold a ``cls`` model.

    Reads only the zip's JSON ``data`` (no pickle is run); raises ``FileNotFoundError`` for a missing
    file and ``ValueError`` for a file that is not a complete model zip or holds another algorithm.
    """
    file = pathlib.Path(path)
    if not file.is_file():
        zipped = file.with_name(file.name + ".zip")
        if file.suffix != ".zip" and zipped.is_file():
            file = zipped
        else:
            also = "" if file.suffix == ".zip" else f" (nor at {zipped})"
            raise FileNotFoundError(f"no model file at {os.fspath(path)}{also}")
    try:
        with zipfile.ZipFile(file) as archive:
            data = json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as error:
        raise ValueError(
            f"{file} is not a readable model zip ({type(error).__name__}: {error}): truncated, corrupt or "
            f"not saved by model.save(); save the model again"
        ) from None
    saved = data.get("_algorithm")
    if saved is not None and saved != cls.__name__:
        raise ValueError(f"{file} holds a {saved} model, not a {cls.__name__} one; load it with {saved}.load")
    if saved is None:  # saved by another library, or before the algorithm was recorded
        expected = [n for n in inspect.signature(cls.__init__).parameters if n not in _GENERIC_ARGUMENTS]
        missing = [name for name in expected if name not in data]
        if missing:
            module = data.get("policy_class", {}).get("__module__", "an unknown module")
            raise ValueError(
                f"{file} does not hold a {cls.__name__} model: it lacks {', '.join(missing)} (its policy "
                f"class comes from {module}); load it with the class that saved it, e.g. "
                "stable_baselines3.PPO.load for an SB3 PPO model"
            )
    return file


def check_unit_interval(name: str, value: Any, open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a float in [0, 1] (``open_low``/``open_high`` exclude the ends), else a ``ValueError``."""
    number = check_float(name, value, 0.0, strict=open_low)
    if number > 1 or (open_high and number == 1):
        low, high = "(" if open_low else "[", ")" if open_high else "]"
        raise ValueError(f"{name} must lie in {low}0, 1{high}, got {value!r}")
    return number


def check_episodes(name: str, episodes: Any, envs_per_task: int) -> int:
    """Rounds of ``envs_per_task`` episodes that make ``episodes`` per task (None: one round); a
    ``ValueError`` unless ``episodes`` is a positive multiple of ``envs_per_task``."""
    if episodes is None:
        return 1
    episodes = check_int(name, episodes)
    if episodes % envs_per_task:
        raise ValueError(f"{name} must be a multiple of env.envs_per_task = {envs_per_task}, got {episodes}")
    return episodes // envs_per_task


def check_latent_adaptation_episodes(episodes: int) -> None:
    """A ``ValueError`` unless every task has >= 2 episodes per latent adaptation step: MAESN's latent
    advantages are centred per task, so with one episode they are all 0 and the latent would not move."""
    if episodes < 2:
        raise ValueError(
            "a latent adaptation step needs >= 2 episodes per task (the advantages are centred per task: "
            f"with one they are all 0 and the latent would stay at the prior), got {episodes}: pass "
            "episodes_per_iteration >= 2 (or more envs_per_task); in Meta-World's evaluation, "
            "adaptation_episodes >= 2"
        )
