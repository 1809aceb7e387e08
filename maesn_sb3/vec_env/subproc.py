"""SB3's subprocess backend whose errors name the sub-env and task slot that broke."""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import (
    CloudpickleWrapper,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)
from stable_baselines3.common.vec_env.patch_gym import _patch_env
from stable_baselines3.common.vec_env.subproc_vec_env import _worker as _sb3_worker
from threadpoolctl import threadpool_limits

__all__ = ["EnvWorkerError", "ReportingSubprocVecEnv"]


def env_indices(indices: VecEnvIndices, num_envs: int) -> Sequence[int]:
    """The sub-envs that ``indices`` names (None: all), as SB3's ``VecEnv`` reads it."""
    if indices is None:
        return range(num_envs)
    if isinstance(indices, int):
        return [indices]
    return indices


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


def _stack(obs: Sequence[Any], space: gym.Space) -> VecEnvObs:
    """The sub-envs' observations as one batch, as ``SubprocVecEnv`` stacks them (per key of a ``Dict``
    space, per entry of a ``Tuple`` space, else one array)."""
    if isinstance(space, gym.spaces.Dict):
        return {key: np.stack([single[key] for single in obs]) for key in space.spaces}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(np.stack([single[i] for single in obs]) for i in range(len(space.spaces)))
    return np.stack(obs)


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
        return self._call_each([message] * len(env_indices(indices, self.num_envs)), indices, doing)

    def _call_each(
        self, messages: Sequence[tuple[str, Any]], indices: VecEnvIndices, doing: str
    ) -> list[Any]:
        targets = list(env_indices(indices, self.num_envs))
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
        return _stack(obs, self.observation_space), np.stack(rews), np.stack(dones), infos

    def reset(self) -> VecEnvObs:
        messages = [("reset", (self._seeds[i], self._options[i])) for i in range(self.num_envs)]
        results = self._call_each(messages, None, "resetting")
        obs, self.reset_infos = zip(*results, strict=True)
        self._reset_seeds()
        self._reset_options()
        return _stack(obs, self.observation_space)

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
