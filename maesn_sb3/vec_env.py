"""A VecEnv of ``n_tasks x envs_per_task`` sub-environments, each group on one task."""

from __future__ import annotations

import copy
import functools
import multiprocessing as mp
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import (
    CloudpickleWrapper,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)
from stable_baselines3.common.vec_env.patch_gym import _patch_env
from stable_baselines3.common.vec_env.subproc_vec_env import _stack_obs
from stable_baselines3.common.vec_env.subproc_vec_env import _worker as _sb3_worker
from threadpoolctl import threadpool_limits

from maesn_sb3.tasks import TASK_METHODS, TaskSet
from maesn_sb3.vector_adapter import PicklableVecEnvWrapper, make_native_vec_env
from wrappers.latent import LatentWrapper

__all__ = ["SUCCESS_MODES", "EnvWorkerError", "MetaTaskVecEnv", "ReportingSubprocVecEnv", "make_meta_vec_env"]

#: How :class:`MetaTaskVecEnv` turns an env's success flag into ``info["is_success"]``.
SUCCESS_MODES = ("any", "last", "env")


class EnvWorkerError(RuntimeError):
    """A sub-env of a :class:`ReportingSubprocVecEnv` failed in its worker process (or the process ended).

    ``env_index`` is the sub-env; ``error_type`` the name of the exception's type and
    ``worker_traceback`` its traceback in the worker (both None if the worker died).
    """

    def __init__(
        self,
        message: str,
        env_index: int,
        error_type: str | None = None,
        worker_traceback: str | None = None,
    ) -> None:
        super().__init__(message)
        self.env_index = env_index
        self.error_type = error_type
        self.worker_traceback = worker_traceback


@dataclass
class _WorkerFailure:
    """What a worker sends back instead of a result when its env raised."""

    error_type: str
    message: str
    traceback: str


def _reporting_worker(
    remote: Connection, parent_remote: Connection, env_fn_wrapper: CloudpickleWrapper
) -> None:
    """SB3's worker loop, re-entered after an exception once the exception is sent to the parent.

    The worker runs torch and numpy's BLAS at one thread (an env's maths is one sample's, and one
    process runs per env): what an env computes with them (a skill policy, a discriminator) is then the
    same on any machine, whatever its core count or ``OMP_NUM_THREADS``."""
    parent_remote.close()
    th.set_num_threads(1)
    threadpool_limits(1, user_api="blas")
    try:
        env = _patch_env(env_fn_wrapper.var())
    except BaseException as error:  # reported to the parent, which raises it
        remote.send(_WorkerFailure(type(error).__name__, str(error), traceback.format_exc()))
        return
    holder = SimpleNamespace(var=lambda: env)
    while True:
        try:
            _sb3_worker(remote, SimpleNamespace(close=lambda: None), holder)
            return  # "close" or the parent hung up
        except KeyboardInterrupt:
            return
        except BaseException as error:
            try:
                remote.send(_WorkerFailure(type(error).__name__, str(error), traceback.format_exc()))
            except (OSError, EOFError):
                return


class ReportingSubprocVecEnv(SubprocVecEnv):
    """SB3's ``SubprocVecEnv`` whose workers report what broke.

    An exception in a sub-env reaches the caller as an :class:`EnvWorkerError` naming the sub-env (and
    its task slot under a :class:`MetaTaskVecEnv`), the exception's type and message, with the worker's
    traceback; the worker stays usable. A worker that died (killed, out of memory) is named with its
    exit code instead of an ``EOFError``/``BrokenPipeError``. :meth:`close` after a failure is quiet and
    ends every worker. ``make_meta_vec_env(..., vec_env_cls=SubprocVecEnv)`` uses this class.
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], start_method: str | None = None) -> None:
        # SB3's __init__ with another worker function (it has no hook for one)
        self.waiting = False
        self.closed = False
        n_envs = len(env_fns)
        self.env_labels = [f"sub-env {i}" for i in range(n_envs)]
        self._sent: list[bool] | None = None  # which envs the last step_async reached
        if start_method is None:
            start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(start_method)
        self.remotes, self.work_remotes = zip(*[ctx.Pipe() for _ in range(n_envs)], strict=True)
        self.processes = []
        for work_remote, remote, env_fn in zip(self.work_remotes, self.remotes, env_fns, strict=True):
            args = (work_remote, remote, CloudpickleWrapper(env_fn))
            process = ctx.Process(target=_reporting_worker, args=args, daemon=True)
            process.start()
            self.processes.append(process)
            work_remote.close()
        self._send(0, ("get_spaces", None), "creating the env")
        observation_space, action_space = self._gather([0], "creating the env")[0]
        VecEnv.__init__(self, n_envs, observation_space, action_space)

    # -- messages ---------------------------------------------------------------------------------
    def _died(self, index: int, doing: str) -> EnvWorkerError:
        process = self.processes[index]
        process.join(timeout=1.0)
        code = process.exitcode
        how = "still running" if code is None else f"exit code {code}"
        if code is not None and code < 0:
            try:
                how += f", {signal.Signals(-code).name}"
            except ValueError:
                pass
        return EnvWorkerError(
            f"the worker process of {self.env_labels[index]} ended ({how}) while {doing}: killed, out of "
            "memory, or crashed in native code (the process's stderr may say which); close() this VecEnv "
            "and build a new one",
            index,
        )

    def _send(self, index: int, message: tuple[str, Any], doing: str) -> EnvWorkerError | None:
        try:
            self.remotes[index].send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return self._died(index, doing)
        return None

    def _gather(self, indices: Sequence[int], doing: str, sent: Sequence[bool] | None = None) -> list[Any]:
        """Receive one answer from each of ``indices`` (all of them, so the pipes stay in step), then
        raise the first failure."""
        results: list[Any] = []
        first: EnvWorkerError | None = None
        for k, index in enumerate(indices):
            if sent is not None and not sent[k]:
                results.append(None)
                first = first or self._died(index, doing)
                continue
            remote = self.remotes[index]
            # a dead worker's pipe may never report EOF (forked siblings hold its other end): wait for
            # the answer or the process's end, whichever comes first
            if not remote.poll() and remote not in wait([remote, self.processes[index].sentinel]):
                if not remote.poll():
                    first = first or self._died(index, doing)
                    results.append(None)
                    continue
            try:
                result = remote.recv()
            except (EOFError, ConnectionResetError, BrokenPipeError):
                first = first or self._died(index, doing)
                results.append(None)
                continue
            if isinstance(result, _WorkerFailure) and first is None:
                first = EnvWorkerError(
                    f"{self.env_labels[index]} raised {result.error_type}: {result.message} (while "
                    f"{doing}, in its worker process; its traceback follows)\n{result.traceback}",
                    index,
                    result.error_type,
                    result.traceback,
                )
            results.append(result)
        if first is not None:
            raise first
        return results

    def _call(self, message: tuple[str, Any], indices: VecEnvIndices, doing: str) -> list[Any]:
        return self._call_each([message] * len(self._get_indices(indices)), indices, doing)

    def _call_each(
        self, messages: Sequence[tuple[str, Any]], indices: VecEnvIndices, doing: str
    ) -> list[Any]:
        targets = list(self._get_indices(indices))
        sent: list[bool] = []
        for index, message in zip(targets, messages, strict=True):
            try:
                sent.append(self._send(index, message, doing) is None)
            except Exception as error:  # not picklable: collect the answers already due, then say so
                self._gather(targets[: len(sent)], doing, sent)
                raise TypeError(
                    f"cannot send the arguments for {doing} to {self.env_labels[index]}'s worker process "
                    f"(they must be picklable): {type(error).__name__}: {error}"
                ) from error
        return self._gather(targets, doing, sent)

    # -- VecEnv -------------------------------------------------------------------------------------
    def step_async(self, actions: np.ndarray) -> None:
        self._sent = [self._send(i, ("step", action), "stepping") is None for i, action in enumerate(actions)]
        self.waiting = True

    def step_wait(self) -> VecEnvStepReturn:
        try:
            results = self._gather(range(self.num_envs), "stepping", self._sent)
        finally:
            self.waiting = False  # every answer was read, failures included
        obs, rews, dones, infos, self.reset_infos = zip(*results, strict=True)
        return _stack_obs(obs, self.observation_space), np.stack(rews), np.stack(dones), infos

    def reset(self) -> VecEnvObs:
        messages = [("reset", (self._seeds[i], self._options[i])) for i in range(self.num_envs)]
        results = self._call_each(messages, None, "resetting")
        obs, self.reset_infos = zip(*results, strict=True)
        self._reset_seeds()
        self._reset_options()
        return _stack_obs(obs, self.observation_space)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        message = ("env_method", (method_name, method_args, method_kwargs))
        return self._call(message, indices, f"calling {method_name}()")

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        try:
            return self._call(("get_attr", attr_name), indices, f"reading {attr_name}")
        except EnvWorkerError as error:
            if error.error_type == "AttributeError":  # as DummyVecEnv raises it (SB3 catches it)
                raise AttributeError(str(error)) from error
            raise

    def has_attr(self, attr_name: str) -> bool:
        return all(self._call(("has_attr", attr_name), None, f"looking for {attr_name}"))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._call(("set_attr", (attr_name, value)), indices, f"setting {attr_name}")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._call(("is_wrapped", wrapper_class), indices, "checking its wrappers")

    def close(self) -> None:
        """End every worker, quietly, whatever state they are in."""
        if self.closed:
            return
        for remote in self.remotes:
            try:
                if self.waiting and remote.poll(5.0):
                    remote.recv()  # the answer to the last step
                remote.send(("close", None))
            except (OSError, EOFError):
                pass
        for process in self.processes:
            process.join(timeout=5.0)
            if process.is_alive():
                process.terminate()
                process.join(timeout=1.0)
        for remote in self.remotes:
            remote.close()
        self.waiting = False
        self.closed = True


def _make_registered(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make`` from a module that registers this package's envs, so that subprocess workers
    started with ``forkserver``/``spawn`` (which import nothing of the parent) find them too."""
    return gym.make(env_id, **kwargs)


class MetaTaskVecEnv(PicklableVecEnvWrapper):
    """Lays out a backend VecEnv as ``n_tasks`` groups of ``envs_per_task`` envs, one task per group.

    Env ``i`` belongs to task slot ``i // envs_per_task``. The wrapper adds ``info["task_index"]``
    (the slot) to every step and reset info, and copies an env's success signal
    ``info[success_key]`` to ``info["is_success"]`` by the rule ``success_mode`` (below), so SB3's success
    rate, :func:`~maesn_sb3.common.rollouts.collect_episodes`, ``adapt`` and the baselines, which all read
    ``is_success`` at an episode's last step, count success the same way. Tasks and per-task
    latent distributions reach the sub-envs only through ``env_method`` (``set_task`` and
    ``set_latent_distribution``), so any backend VecEnv that answers those calls works: SB3's
    ``DummyVecEnv`` and ``SubprocVecEnv`` today. Any SB3 algorithm can ``learn`` on it directly.

    Example:
        >>> from maesn_sb3 import make_meta_vec_env
        >>> venv = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=3, envs_per_task=2, seed=0,
        ...                          latent_dim=2)
        >>> venv.num_envs, venv.task_of(5) is venv.tasks[2]
        (6, True)

    :param venv: the backend VecEnv; its sub-envs implement the task API.
    :param n_tasks: number of task slots (>= 1).
    :param envs_per_task: sub-envs per task slot (>= 1); ``venv.num_envs`` must be their product.
    :param tasks: the initial tasks, one per slot; ``None`` keeps the sub-envs' current tasks.
    :param success_key: the info key of the env's own success flag.
    :param success_mode: how a step's flag (the env's own ``is_success`` when it reports one, else
        ``info[success_key]``) becomes ``is_success``: ``"any"`` (default): True from the first step
        the flag was set until the episode ends, so an episode counts as solved if the flag was ever
        set (Meta-World's rule; its flag is per step and not sticky); ``"last"``: the flag of that
        step, so an episode counts by its last step; ``"env"``: only the env's own ``is_success``,
        untouched (``success_key`` unused). An episode ends with ``done`` or, inside an
        :class:`~wrappers.RL2Wrapper` trial, with ``info["episode_done"]``.
    """

    def __init__(
        self,
        venv: VecEnv,
        n_tasks: int,
        envs_per_task: int = 1,
        tasks: Sequence[Any] | None = None,
        success_key: str = "success",
        success_mode: str = "any",
    ) -> None:
        if success_mode not in SUCCESS_MODES:
            raise ValueError(f"success_mode must be one of {SUCCESS_MODES}, got {success_mode!r}")
        if not isinstance(venv, VecEnv):
            raise TypeError(f"venv must be a stable_baselines3 VecEnv, got {type(venv).__name__}")
        for name, value in (("n_tasks", n_tasks), ("envs_per_task", envs_per_task)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if venv.num_envs != n_tasks * envs_per_task:
            raise ValueError(
                f"venv.num_envs must equal n_tasks * envs_per_task = {n_tasks * envs_per_task}, "
                f"got {venv.num_envs}"
            )
        missing = [name for name in TASK_METHODS if not venv.has_attr(name)]
        if missing:
            raise TypeError(
                f"the sub-envs of venv do not implement the task API (missing {', '.join(missing)}); "
                "they need sample_tasks(n), set_task(task) and get_task()"
            )
        if isinstance(venv, ReportingSubprocVecEnv):  # its errors name the task slot too
            venv.env_labels = [f"sub-env {i} (task slot {i // envs_per_task})" for i in range(venv.num_envs)]
        super().__init__(venv)
        self.n_tasks = int(n_tasks)
        self.envs_per_task = int(envs_per_task)
        self.success_key = success_key
        self.success_mode = success_mode
        self._solved = np.zeros(venv.num_envs, dtype=bool)  # "any": the flag was set in this episode
        self.task_indices = np.repeat(np.arange(self.n_tasks), self.envs_per_task)
        self._slot_of_env = self.task_indices.tolist()  # python ints for infos
        self.has_latent = all(venv.env_is_wrapped(LatentWrapper))
        self.latent_dim: int | None = venv.get_attr("latent_dim", [0])[0] if self.has_latent else None
        #: the last ``(means, stds)`` given to :meth:`set_latent_distributions` (None: none yet)
        self.latent_distributions: tuple[np.ndarray, np.ndarray] | None = None
        if tasks is None:
            self._tasks = [
                venv.env_method("get_task", indices=[i])[0]
                for i in self.env_indices_of(np.arange(self.n_tasks))[:, 0]
            ]
        else:
            self._tasks = []
            self.set_tasks(tasks)

    # -- task layout ----------------------------------------------------------------------------
    @property
    def tasks(self) -> list[Any]:
        """The current task of each slot."""
        return list(self._tasks)

    def env_indices_of(self, task_index: int | np.ndarray) -> np.ndarray:
        """Indices of the sub-envs of one slot (shape ``(envs_per_task,)``) or of several slots."""
        slots = np.asarray(task_index)
        if np.any((slots < 0) | (slots >= self.n_tasks)):
            raise IndexError(f"task_index must lie in [0, {self.n_tasks}), got {task_index}")
        return slots[..., None] * self.envs_per_task + np.arange(self.envs_per_task)

    def task_of(self, env_index: int) -> Any:
        """The task that sub-env ``env_index`` is running."""
        if not 0 <= env_index < self.num_envs:
            raise IndexError(f"env_index must lie in [0, {self.num_envs}), got {env_index}")
        return self._tasks[self._slot_of_env[env_index]]

    def set_tasks(self, tasks: Sequence[Any]) -> None:
        """Assign ``tasks[k]`` to every sub-env of slot ``k``; call ``reset()`` to start on them."""
        tasks = list(tasks)
        if len(tasks) != self.n_tasks:
            raise ValueError(f"tasks must hold n_tasks = {self.n_tasks} tasks, got {len(tasks)}")
        if not isinstance(self.venv, DummyVecEnv):  # tasks travel to worker processes: check them all first
            for slot, task in enumerate(tasks):
                try:
                    ForkingPickler.dumps(task)
                except Exception as error:
                    raise TypeError(
                        f"the task of slot {slot} (a {type(task).__name__}) cannot be pickled, so it cannot "
                        f"reach the sub-envs' worker processes: {type(error).__name__}: {error}; use tasks "
                        "made of plain data (dicts, arrays, numbers); no slot was changed"
                    ) from error
        previous = self._tasks
        for slot, task in enumerate(tasks):
            try:
                self.venv.env_method("set_task", task, indices=self.env_indices_of(slot).tolist())
            except Exception as error:
                note = self._roll_back(previous, slot)
                raise ValueError(
                    f"the task of slot {slot} ({type(task).__name__} {task!r:.200}) was refused by its "
                    f"sub-envs ({note}): {type(error).__name__}: {error}"
                ) from error
        self._tasks = tasks

    def _roll_back(self, previous: list[Any], failed_slot: int) -> str:
        """Give slots ``0..failed_slot`` their ``previous`` tasks again; a note on how that went."""
        if not previous:
            return "(no previous tasks to restore)"
        try:
            for slot in range(failed_slot + 1):
                self.venv.env_method("set_task", previous[slot], indices=self.env_indices_of(slot).tolist())
        except Exception as error:
            return f"restoring the previous tasks failed too ({type(error).__name__}: {error})"
        return "every slot keeps its previous task"

    def sample_tasks(self, n: int) -> list[Any]:
        """Draw ``n`` tasks from the task distribution of the first sub-env (its seeded generator)."""
        return self.venv.env_method("sample_tasks", n, indices=[0])[0]

    @property
    def horizon(self) -> int:
        """The most steps an episode of a sub-env lasts: its ``TimeLimit``'s ``max_episode_steps`` (or
        an env's own ``max_episode_steps`` attribute, for envs that end their episodes themselves).

        Collecting whole episodes needs it; a ``ValueError`` says how to add one when there is none.
        """
        if getattr(self, "_horizon", None) is None:
            self._horizon = self._find_horizon()
        return self._horizon

    def _find_horizon(self) -> int:
        # TimeLimit keeps it in _max_episode_steps; batched families and self-ending envs declare it
        for name in ("_max_episode_steps", "max_episode_steps"):
            if self.venv.has_attr(name):
                values = self.venv.get_attr(name)
                if all(value is not None for value in values):
                    return max(int(value) for value in values)
        raise ValueError(
            "the sub-envs have no horizon (no gymnasium.wrappers.TimeLimit and no max_episode_steps "
            "attribute), so an episode may never end and collecting whole episodes would never stop; "
            "wrap each env in gymnasium.wrappers.TimeLimit(env, max_episode_steps=N), register it with "
            "max_episode_steps, or pass env_kwargs={'max_episode_steps': N} to make_meta_vec_env"
        )

    # -- random state (exact resume) --------------------------------------------------------------
    def _generators(self) -> list[np.random.Generator]:
        """Each sub-env's generator (tasks, latents and resets draw from it): a batched family's
        ``env_np_random(i)``, else the env's ``np_random`` (copies under subprocess workers)."""
        if self.venv.has_attr("env_np_random"):
            return self.venv.env_method("env_np_random")
        return self.venv.get_attr("np_random")

    def get_random_state(self) -> list[dict[str, Any]]:
        """The state of every sub-env's generator (see :meth:`set_random_state`)."""
        if hasattr(type(self.venv), "get_random_state"):  # a backend whose envs live elsewhere (Ray)
            return self.venv.get_random_state()
        return [copy.deepcopy(generator.bit_generator.state) for generator in self._generators()]

    def set_random_state(self, states: Sequence[dict[str, Any]]) -> None:
        """Put the sub-envs' generators back in the states of :meth:`get_random_state` and drop pending
        ``seed()`` calls, so that the next episodes continue the saved random streams."""
        if len(states) != self.num_envs:
            raise ValueError(
                f"states must hold num_envs = {self.num_envs} generator states, got {len(states)}"
            )
        if hasattr(type(self.venv), "set_random_state"):  # a backend whose envs live elsewhere (Ray)
            self.venv.set_random_state(states)
            return
        generators = self._generators()
        for index, (generator, state) in enumerate(zip(generators, states, strict=True)):
            generator.bit_generator.state = state
            if isinstance(self.venv, SubprocVecEnv):  # the generators above are copies: send them back
                self.venv.set_attr("np_random", generator, indices=[index])
        venv: VecEnv = self.venv
        while True:  # SB3 keeps seed() for the next reset, on the innermost VecEnv: it would reseed
            venv._reset_seeds()
            if not isinstance(venv, VecEnvWrapper):
                break
            venv = venv.venv

    # -- latents --------------------------------------------------------------------------------
    def set_latent_distributions(self, means: np.ndarray, stds: np.ndarray) -> None:
        """Give slot ``k``'s envs the latent distribution N(means[k], stds[k]) from their next reset.

        :param means: shape ``(n_tasks, latent_dim)``.
        :param stds: shape ``(n_tasks, latent_dim)``, >= 0.
        """
        if not self.has_latent:
            raise RuntimeError("the sub-envs carry no LatentWrapper: build them with latent_dim set")
        expected = (self.n_tasks, self.latent_dim)
        try:
            means, stds = np.asarray(means, dtype=np.float64), np.asarray(stds, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"means and stds must be arrays of numbers, got {means!r} and {stds!r}"
            ) from error
        for name, value in (("means", means), ("stds", stds)):
            if value.shape != expected:
                raise ValueError(
                    f"{name} must have shape {expected} (n_tasks, latent_dim), got {value.shape}"
                )
            if not np.all(np.isfinite(value)):
                raise ValueError(
                    f"{name} must be finite, got {value} (after a latent update this means rewards or "
                    "advantages too large for float32: scale or clip the rewards)"
                )
        if np.any(stds < 0):
            raise ValueError(f"stds must be >= 0, got {stds}")
        for slot in range(self.n_tasks):
            self.venv.env_method(
                "set_latent_distribution", means[slot], stds[slot], indices=self.env_indices_of(slot).tolist()
            )
        self.latent_distributions = (means, stds)

    # -- VecEnv ---------------------------------------------------------------------------------
    def _annotate(
        self,
        infos: Sequence[dict[str, Any]],
        solved: np.ndarray | None = None,
        rows: Sequence[int] | None = None,
    ) -> None:
        """Add ``task_index`` and ``is_success`` to ``infos`` (those of envs ``rows``; None: every env);
        ``solved``: the "any" mode's flags of every env, updated in place."""
        envs = range(len(infos)) if rows is None else rows
        slots, key, flags = self._slot_of_env, self.success_key, []
        for i, info in zip(envs, infos, strict=True):
            info["task_index"] = slots[i]
            flags.append(info["is_success"] if "is_success" in info else info.get(key))
        if self.success_mode == "env":
            return
        if self.success_mode == "last" or solved is None:
            for info, flag in zip(infos, flags, strict=True):
                if flag is not None:
                    info["is_success"] = bool(flag)
            return
        known = [j for j, flag in enumerate(flags) if flag is not None]
        at = np.asarray(envs, dtype=np.intp)[known]
        solved[at] |= np.array([bool(flags[j]) for j in known], dtype=bool)
        for i, j, value in zip(at.tolist(), known, solved[at].tolist(), strict=True):
            infos[j]["is_success"] = value
            if infos[j].get("episode_done"):  # an inner episode of an RL2Wrapper trial ended
                solved[i] = False

    def reset(self) -> np.ndarray | dict[str, np.ndarray]:
        obs = self.venv.reset()
        self._solved[:] = False
        self.reset_infos = self.venv.reset_infos
        self._annotate(self.reset_infos)
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._annotate(infos, self._solved)
        self._solved[dones] = False  # the next episode starts unsolved
        if self.venv.reset_infos is self.reset_infos:  # in-process backends replace the new episodes'
            ended = np.flatnonzero(dones).tolist()
            self._annotate([self.reset_infos[i] for i in ended], rows=ended)
        else:  # subprocess and Ray backends send fresh reset infos every step: annotate them all
            self.reset_infos = self.venv.reset_infos
            self._annotate(self.reset_infos)
        return obs, rewards, dones, infos


def make_meta_vec_env(
    env_id: str | Callable[..., gym.Env],
    n_tasks: int,
    envs_per_task: int = 1,
    seed: int | None = None,
    tasks: Sequence[Any] | TaskSet | None = None,
    latent_dim: int | None = None,
    wrapper_class: Callable[[gym.Env], gym.Env] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vec_env_cls: type[DummyVecEnv | SubprocVecEnv] | None = None,
    vec_env_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | None = None,
    monitor_kwargs: dict[str, Any] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    success_key: str = "success",
    vectorization: str | None = None,
    success_mode: str = "any",
    ray_workers: int | None = None,
) -> MetaTaskVecEnv:
    """Create a monitored :class:`MetaTaskVecEnv`, in the style of SB3's ``make_vec_env``.

    Each sub-env is ``LatentWrapper(wrapper_class(Monitor(make_env())))`` (the latent wrapper only
    when ``latent_dim`` is set).

    :param env_id: an env id or a callable returning an env that implements the task API.
    :param n_tasks: number of task slots.
    :param envs_per_task: sub-envs per slot.
    :param seed: seeds the sub-envs (env ``i`` gets ``seed + i``) and, when ``tasks`` is None,
        the draw of the initial tasks.
    :param tasks: the initial tasks: a sequence of ``n_tasks`` tasks, a :class:`TaskSet` (its first
        ``n_tasks`` training tasks), or None to draw ``n_tasks`` tasks from the distribution.
    :param latent_dim: add a :class:`~wrappers.LatentWrapper` of this size to every sub-env.
    :param wrapper_class: an extra wrapper applied after the ``Monitor``, before the latent wrapper.
    :param env_kwargs: keyword arguments for the env constructor.
    :param vec_env_cls: the backend, ``DummyVecEnv`` (default) or ``SubprocVecEnv`` (then
        :class:`ReportingSubprocVecEnv`, whose errors name the sub-env and task slot that broke).
    :param vec_env_kwargs: keyword arguments for the backend's constructor (native: the batch's own,
        e.g. ``threads``, ``use_mujoco_batch``, ``render_index``).
    :param monitor_dir: folder for the Monitor files (None: none written).
    :param monitor_kwargs: keyword arguments for ``Monitor``.
    :param wrapper_kwargs: keyword arguments for ``wrapper_class``.
    :param success_key: the info key of the env's own success flag.
    :param success_mode: how that flag becomes ``is_success``: ``"any"``, ``"last"`` or ``"env"`` (see
        :class:`MetaTaskVecEnv`).
    :param vectorization: the backend: ``"native"``: the env id's batched family (its
        ``vector_entry_point``) behind a :class:`~maesn_sb3.vector_adapter.VectorEnvAdapter`, with a
        :class:`~wrappers.LatentVectorWrapper` when ``latent_dim`` is set and SB3's ``VecMonitor``
        (one file in ``monitor_dir``); ``"dummy"`` (SB3's ``DummyVecEnv`` of single envs) or
        ``"subproc"`` (``SubprocVecEnv``). None (default): native for an id with a batched family
        unless ``vec_env_cls``, ``wrapper_class``, ``wrapper_kwargs`` or ``monitor_kwargs`` is given
        (single envs then: ``vec_env_cls`` picks dummy or subproc), else dummy. ``"ray"``:
        the task slots split across ``ray_workers`` Ray actors (:class:`~maesn_sb3.ray_vec_env.RayVecEnv`,
        whose keyword arguments ``vec_env_kwargs`` holds, e.g. ``max_retries``), each running its
        slots natively batched where the family has a batch, else as a ``DummyVecEnv``; the
        meta-algorithms then collect whole episodes on the actors.
    :param ray_workers: the Ray actors of ``vectorization="ray"`` (None: one per free CPU, at most one
        per task slot).
    """
    # the family's batch serves an env id unless single envs are asked for
    spec = gym.registry.get(env_id) if isinstance(env_id, str) else None
    batched = not (wrapper_class or wrapper_kwargs or monitor_kwargs) and (
        spec is not None and spec.vector_entry_point is not None
    )
    vectorization = _check_vectorization(vectorization, vec_env_cls, batched)
    if success_mode not in SUCCESS_MODES:
        raise ValueError(f"success_mode must be one of {SUCCESS_MODES}, got {success_mode!r}")
    for name, value in (("n_tasks", n_tasks), ("envs_per_task", envs_per_task)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if latent_dim is not None and (
        isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1
    ):
        raise ValueError(f"latent_dim must be None or an int >= 1, got {latent_dim!r}")
    if ray_workers is not None and vectorization != "ray":
        raise ValueError(f"ray_workers={ray_workers!r} needs vectorization='ray', got {vectorization!r}")
    env_kwargs = dict(env_kwargs or {})
    if isinstance(tasks, TaskSet):
        if len(tasks.train) < n_tasks:
            raise ValueError(
                f"tasks (a TaskSet) has {len(tasks.train)} training tasks, fewer than n_tasks={n_tasks}"
            )
        tasks = tasks.train[:n_tasks]
    elif tasks is None:

        def make_one() -> gym.Env:
            return gym.make(env_id, **env_kwargs) if isinstance(env_id, str) else env_id(**env_kwargs)

        tasks = TaskSet.from_env(make_one, n_train=n_tasks, n_test=0, seed=seed).train

    if vectorization == "native":
        venv = make_native_vec_env(
            env_id,
            n_envs=n_tasks * envs_per_task,
            seed=seed,
            latent_dim=latent_dim,
            env_kwargs=env_kwargs,
            monitor_dir=monitor_dir,
            batch_kwargs=vec_env_kwargs,
            unsupported={
                "wrapper_class": wrapper_class,
                "wrapper_kwargs": wrapper_kwargs,
                "monitor_kwargs": monitor_kwargs,
            },
        )
        return MetaTaskVecEnv(venv, n_tasks, envs_per_task, tasks, success_key, success_mode)
    if vectorization == "ray":
        from maesn_sb3.ray_vec_env import RayVecEnv

        ray_kwargs = {"n_workers": ray_workers, "group_size": envs_per_task, **(vec_env_kwargs or {})}
        if batched:
            make_group = functools.partial(_native_group, env_id, seed, latent_dim, env_kwargs, monitor_dir)
            venv = RayVecEnv(None, make_group=make_group, n_envs=n_tasks * envs_per_task, **ray_kwargs)
            return MetaTaskVecEnv(venv, n_tasks, envs_per_task, tasks, success_key, success_mode)
        vec_env_cls, vec_env_kwargs = RayVecEnv, ray_kwargs
    if vectorization == "subproc":
        vec_env_cls = SubprocVecEnv

    def wrap(env: gym.Env) -> gym.Env:
        if wrapper_class is not None:
            env = wrapper_class(env, **(wrapper_kwargs or {}))
        if latent_dim is not None:
            env = LatentWrapper(env, latent_dim=latent_dim)
        return env

    if vec_env_cls is SubprocVecEnv:
        vec_env_cls = ReportingSubprocVecEnv  # the same, with errors that say which sub-env broke
    venv = make_vec_env(
        functools.partial(_make_registered, env_id) if isinstance(env_id, str) else env_id,
        n_envs=n_tasks * envs_per_task,
        seed=seed,
        monitor_dir=monitor_dir,
        wrapper_class=wrap,
        env_kwargs=env_kwargs,
        vec_env_cls=vec_env_cls,
        vec_env_kwargs=vec_env_kwargs,
        monitor_kwargs=monitor_kwargs,
    )
    return MetaTaskVecEnv(venv, n_tasks, envs_per_task, tasks, success_key, success_mode)


def _native_group(
    env_id: str,
    seed: int | None,
    latent_dim: int | None,
    env_kwargs: dict[str, Any],
    monitor_dir: str | None,
    start: int,
    stop: int,
) -> VecEnv:
    """Sub-envs ``start .. stop - 1`` as one native batch (on a Ray worker), seeded as in the whole batch."""
    return make_native_vec_env(
        env_id,
        n_envs=stop - start,
        seed=None if seed is None else seed + start,
        latent_dim=latent_dim,
        env_kwargs=env_kwargs,
        monitor_dir=None if monitor_dir is None else f"{monitor_dir}/envs_{start}-{stop - 1}",
    )


VECTORIZATIONS = ("dummy", "subproc", "native", "ray")


def _check_vectorization(vectorization: str | None, vec_env_cls: type | None, batched: bool) -> str:
    if vectorization is None:
        return "native" if batched and vec_env_cls is None else "dummy"
    if vectorization not in VECTORIZATIONS:
        raise ValueError(f"vectorization must be one of {VECTORIZATIONS}, got {vectorization!r}")
    expected = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}.get(vectorization)
    if vec_env_cls is not None and vec_env_cls is not expected:
        raise ValueError(
            f"vec_env_cls={getattr(vec_env_cls, '__name__', vec_env_cls)} contradicts "
            f"vectorization={vectorization!r}; give one of them"
        )
    return vectorization
