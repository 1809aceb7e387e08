"""What the meta-learning algorithms share: argument checks, the adaptation curve, the learn loop."""

from __future__ import annotations

import inspect
import io
import json
import os
import pathlib
import time
import warnings
import zipfile
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback

SelfMetaAlgorithm = TypeVar("SelfMetaAlgorithm", bound="MetaAlgorithm")


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int, or a ``ValueError`` naming ``name`` unless it is an int ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


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


def steps_per_task(total_steps: int | np.ndarray, n_tasks: int) -> int | np.ndarray:
    """Env steps per task slot from the steps of ``n_tasks`` slots together (the adaptation curves' unit)."""
    return np.rint(np.asarray(total_steps) / n_tasks).astype(np.int64)


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


@dataclass
class AdaptationCurve:
    """Per-iteration adaptation curve on each task slot, what every method's ``adapt`` returns.

    ``returns[k, i]`` and ``success[k, i]`` are the means over the episodes that task slot ``i`` ran in
    adaptation iteration ``k`` (row 0: before any update); ``env_steps[k]`` counts the exploration
    steps taken **per task slot** (the mean over slots, see :func:`steps_per_task`) up to and including
    iteration ``k``, the same for every method. ``eval_*`` hold deterministic evaluations when run.
    """

    returns: np.ndarray
    success: np.ndarray
    env_steps: np.ndarray
    eval_returns: np.ndarray | None = None
    eval_success: np.ndarray | None = None

    @property
    def mean_return(self) -> np.ndarray:
        """Mean return per iteration, over tasks."""
        return self.returns.mean(axis=1)

    @property
    def mean_success(self) -> np.ndarray:
        """Mean success rate per iteration, over tasks."""
        return self.success.mean(axis=1)


class MetaAlgorithm(BaseAlgorithm):
    """An SB3 algorithm that learns in whole meta-iterations (``_meta_iteration``), as MAESN and MAML."""

    @abstractmethod
    def _meta_iteration(self, callback: BaseCallback) -> bool:
        """Run one meta-iteration; False when a callback stopped it."""

    def learn(
        self: SelfMetaAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMetaAlgorithm:
        """Meta-train for ``total_timesteps`` environment steps (whole meta-iterations)."""
        total_timesteps = check_timesteps(total_timesteps)
        if self.env is None:
            raise ValueError("learn() needs an env: pass one to the constructor, set_env() or load()")
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        saved = self.__dict__.pop("_saved_random_state", None)
        if saved is not None:  # the first learn after load: continue the saved random streams
            self._restore_random_state(saved)
        callback.on_training_start(locals(), globals())
        iteration = 0
        while self.num_timesteps < total_timesteps:
            if not self._meta_iteration(callback):
                break
            iteration += 1
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            if log_interval and iteration % log_interval == 0:
                self.logger.record("time/iterations", iteration, exclude="tensorboard")
                self._dump_logs()
        callback.on_training_end()
        return self

    # -- checks at the boundary -------------------------------------------------------------------------
    @staticmethod
    def _check_seed(seed: Any) -> int | None:
        return check_seed("seed", seed)

    def _check_observation(
        self, observation: Any, n_features: Sequence[int] | None = None
    ) -> np.ndarray | dict[str, np.ndarray]:
        return check_observation(observation, self.observation_space, n_features)

    # -- exact resume: the random streams travel with the model ----------------------------------------
    def _random_state(self) -> dict[str, Any]:
        """torch's generators and the states of the sub-envs' generators (the model's own generators,
        ``_task_rng`` and ``_predict_rng``, are saved with its other attributes)."""
        pending = self.__dict__.get("_saved_random_state")
        if pending is not None:  # loaded and not trained since: keep what was loaded
            return pending
        state: dict[str, Any] = {"torch": th.get_rng_state()}
        if th.cuda.is_available():
            state["torch_cuda"] = th.cuda.get_rng_state_all()
        if self.env is not None and hasattr(self.env, "get_random_state"):
            state["env"] = self.env.get_random_state()
        return state

    def _restore_random_state(self, state: dict[str, Any]) -> None:
        th.set_rng_state(state["torch"])
        if "torch_cuda" in state and th.cuda.is_available():
            th.cuda.set_rng_state_all(state["torch_cuda"])
        env_states = state.get("env")
        if env_states is None or self.env is None or not hasattr(self.env, "set_random_state"):
            return
        if len(env_states) != self.env.num_envs:
            warnings.warn(
                f"the model was saved with {len(env_states)} sub-envs and now has {self.env.num_envs}: "
                "their random streams start from the env's seeds, so training does not continue exactly",
                stacklevel=3,
            )
            return
        self.env.set_random_state(env_states)

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """SB3's ``save``, plus the random states (torch's and the env's generators) so that
        ``load`` then ``learn(..., reset_num_timesteps=False)`` continues exactly as if never stopped."""
        broken = self._non_finite_parameters()
        if broken:
            warnings.warn(
                f"saving a model whose parameters are not finite ({', '.join(broken[:3])}): it cannot act "
                "sensibly; the training that produced it met numbers that were not finite",
                stacklevel=2,
            )
        pending = self.__dict__.get("_saved_random_state")  # loaded, not yet trained: keep it for learn
        self._saved_random_state = self._random_state()
        self._algorithm = type(self).__name__  # lets load() tell a wrong file from a right one
        try:
            super().save(path, exclude, include)
        finally:
            del self._algorithm
            if pending is None:
                del self._saved_random_state

    def _non_finite_parameters(self) -> list[str]:
        """Names of the saved modules' parameters that hold NaN or inf."""
        names = []
        for module_name in self._get_torch_save_params()[0]:
            module = getattr(self, module_name, None)
            if isinstance(module, th.nn.Module):
                names += [
                    f"{module_name}.{name}"
                    for name, parameter in module.named_parameters()
                    if not bool(th.isfinite(parameter).all())
                ]
        return names

    @classmethod
    def load(
        cls: type[SelfMetaAlgorithm],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfMetaAlgorithm:
        """SB3's ``load``, after checking (without unpickling) that ``path`` holds a model of this class.

        A model zip holds pickled Python objects (SB3's format, plus the task set): loading one runs
        code from the file, so load only files you trust.
        """
        if isinstance(path, (str, os.PathLike)):
            path = check_model_file(path, cls)
        model = super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)
        model.__dict__.pop("_algorithm", None)
        return model

    def _dump_logs(self) -> None:
        elapsed = max((time.time_ns() - self.start_time) / 1e9, 1e-9)
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_mean", float(np.mean([ep["r"] for ep in self.ep_info_buffer])))
            self.logger.record("rollout/ep_len_mean", float(np.mean([ep["l"] for ep in self.ep_info_buffer])))
        if self.ep_success_buffer:
            self.logger.record("rollout/success_rate", float(np.mean(self.ep_success_buffer)))
        self.logger.record("time/fps", int((self.num_timesteps - self._num_timesteps_at_start) / elapsed))
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)
