"""The Ray backend: a VecEnv whose sub-envs live in Ray actors.

``make_meta_vec_env(..., vectorization="ray", ray_workers=N)`` puts the task slots on ``N`` actors, each
owning a group of whole slots as one local VecEnv (the family's native batch where it has one, else a
``DummyVecEnv`` of single envs). Used as a plain SB3 ``VecEnv`` (PPO, SAC, RecurrentPPO...), a step is
one remote call per actor carrying all of its envs' actions. :meth:`RayVecEnv.run_on_workers` runs a
function on every actor's own envs at once; the meta-algorithms' remote episode collector
(:mod:`maesn_sb3.common.remote`) is built on it. The backend steps envs; it knows no algorithm.

Ray is an optional dependency: ``pip install "maesn-sb3[ray]"``.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from maesn_sb3.validators import check_int
from maesn_sb3.vec_env.meta import MetaTaskVecEnv, RemoteEnvsBackend
from maesn_sb3.vec_env.subproc import env_indices

__all__ = ["RayVecEnv", "RayWorkerError", "import_ray"]

INSTALL_HINT = 'pip install "maesn-sb3[ray]"'


def import_ray() -> Any:
    """The ``ray`` module, or an ``ImportError`` that says how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ImportError(f"the Ray backend needs the ray package: {INSTALL_HINT}") from error
    return ray


class RayWorkerError(RuntimeError):
    """A Ray worker (actor) of a :class:`RayVecEnv` died or became unreachable.

    ``worker`` is its number and ``env_indices`` the sub-envs it held.
    """

    def __init__(self, message: str, worker: int, env_indices: range) -> None:
        super().__init__(message)
        self.worker = worker
        self.env_indices = env_indices


def _dummy_vec_env(env_fns: Sequence[Callable[[], gym.Env]]) -> VecEnv:
    return DummyVecEnv(list(env_fns))


class _EnvWorker:
    """The actor: one local VecEnv (a group of sub-envs) stepped, queried and sampled on request."""

    def __init__(self, make_venv: Callable[[], VecEnv]) -> None:
        th.set_num_threads(1)  # small networks; the node's other workers need the cores
        self.venv = make_venv()
        self.meta: Any = None
        #: what the functions run on this worker (:meth:`run`) keep between calls
        self.cache: dict[str, Any] = {}

    def where(self) -> tuple[str, int]:
        """The Ray node id and the process id of this worker."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()

    def spaces(self) -> tuple[gym.Space, gym.Space, int]:
        return self.venv.observation_space, self.venv.action_space, self.venv.num_envs

    def seed(self, seed: int | None) -> None:
        self.venv.seed(seed)

    def set_options(self, options: list[dict] | None) -> None:
        self.venv.set_options(options)

    def reset(self) -> tuple[VecEnvObs, list[dict]]:
        obs = self.venv.reset()
        return obs, list(self.venv.reset_infos)

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        obs, rewards, dones, infos = self.venv.step(actions)
        return obs, rewards, dones, infos, list(self.venv.reset_infos)

    def env_method(self, name: str, args: tuple, kwargs: dict, indices: list[int]) -> list[Any]:
        return self.venv.env_method(name, *args, indices=indices, **kwargs)

    def get_attr(self, name: str, indices: list[int]) -> list[Any]:
        return self.venv.get_attr(name, indices)

    def set_attr(self, name: str, value: Any, indices: list[int]) -> None:
        self.venv.set_attr(name, value, indices)

    def has_attr(self, name: str) -> bool:
        return self.venv.has_attr(name)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: list[int]) -> list[bool]:
        return self.venv.env_is_wrapped(wrapper_class, indices)

    def get_images(self) -> list[np.ndarray | None]:
        return list(self.venv.get_images())

    def random_state(self, states: list[dict] | None = None) -> list[dict] | None:
        """The sub-envs' generator states, or (``states`` given) set them."""
        meta = self.meta or MetaTaskVecEnv(self.venv, self.venv.num_envs)
        if states is None:
            return meta.get_random_state()
        meta.set_random_state(states)
        return None

    def meta_view(self, n_slots: int, envs_per_task: int, success_key: str) -> MetaTaskVecEnv:
        """This worker's envs laid out as ``n_slots`` task slots (kept while the layout is the same)."""
        if self.meta is None or self.meta.envs_per_task != envs_per_task:
            self.meta = MetaTaskVecEnv(self.venv, n_slots, envs_per_task, success_key=success_key)
        return self.meta

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(self, *args)`` on this worker (``fn`` must be importable where the worker runs)."""
        return fn(self, *args)

    def close(self) -> None:
        self.venv.close()


@dataclass(frozen=True)
class _Group:
    """What one worker owns: sub-envs ``envs`` (whole task slots ``slots`` when laid out by slots)."""

    envs: range
    slots: range


class RayVecEnv(VecEnv, RemoteEnvsBackend):
    """A VecEnv whose sub-envs run in ``n_workers`` Ray actors, each holding a contiguous group of them.

    Use it as SB3's ``SubprocVecEnv``: ``RayVecEnv(env_fns, n_workers=4)``, or
    ``make_vec_env(env_id, n_envs, vec_env_cls=RayVecEnv, vec_env_kwargs={"n_workers": 4})``; a step is
    one remote call per worker with all of its envs' actions. Under a
    :class:`~maesn_sb3.MetaTaskVecEnv` (``make_meta_vec_env(..., vectorization="ray")``) the meta-algorithms
    collect whole episodes on the workers (:mod:`maesn_sb3.common.remote`, over :meth:`run_on_workers`).

    Faults: a worker that dies raises a :class:`RayWorkerError` naming it and its sub-envs (Ray notices a
    dead actor's process within seconds, so nothing hangs); with ``max_retries`` > 0 a collection round
    whose worker died is run again on a fresh worker instead (its envs start again from their seeds, so
    the run is no longer equal to a local one). A cluster without ``n_workers * num_cpus_per_worker``
    free CPUs raises a ``ValueError`` before any worker starts. :meth:`close` ends every worker (and the
    local Ray instance when this env started it).

    :param env_fns: functions that make the sub-envs (as for ``SubprocVecEnv``); or None with ``make_group``.
    :param n_workers: Ray actors (None: one per CPU of the cluster, at most one per group).
    :param address: the Ray cluster to join when Ray is not initialised yet (``"auto"``: the one started
        with ``ray start``; None: a local Ray instance on this machine).
    :param group_size: sub-envs that must stay on one worker (a task slot's ``envs_per_task``).
    :param max_retries: times a collection round is run again when a worker died (0: raise).
    :param num_cpus_per_worker: CPUs Ray reserves for each actor.
    :param make_group: ``make_group(start, stop)`` makes sub-envs ``start .. stop - 1`` as one VecEnv on
        the worker (e.g. a natively batched family), instead of a ``DummyVecEnv`` of ``env_fns``.
    :param n_envs: the number of sub-envs, with ``make_group``.
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]] | None,
        n_workers: int | None = None,
        address: str | None = None,
        group_size: int = 1,
        max_retries: int = 0,
        num_cpus_per_worker: float = 1,
        make_group: Callable[[int, int], VecEnv] | None = None,
        n_envs: int | None = None,
    ) -> None:
        ray = import_ray()
        if (env_fns is None) == (make_group is None):
            raise ValueError("give exactly one of env_fns and make_group")
        n_envs = len(env_fns) if env_fns is not None else n_envs
        check_int("n_envs", n_envs, note=" (with make_group)")
        check_int("group_size", group_size)
        check_int("max_retries", max_retries, minimum=0)
        if n_envs % group_size:
            raise ValueError(f"the {n_envs} sub-envs do not split into groups of group_size={group_size}")
        if not num_cpus_per_worker > 0:
            raise ValueError(f"num_cpus_per_worker must be > 0, got {num_cpus_per_worker!r}")
        self._started_ray = not ray.is_initialized()
        if self._started_ray:
            ray.init(address=address, include_dashboard=False, logging_level="warning", log_to_driver=False)
        n_groups = n_envs // group_size
        if n_workers is None:
            n_workers = max(
                1, min(n_groups, int(ray.available_resources().get("CPU", 1) // num_cpus_per_worker))
            )
        try:
            check_int(
                "n_workers", n_workers, maximum=n_groups, note=f" (the groups of {group_size} sub-envs)"
            )
        except ValueError:
            self._shutdown_ray()
            raise
        self._check_cpus(ray, n_workers, num_cpus_per_worker, address)
        self.n_workers, self.group_size, self.max_retries = n_workers, group_size, max_retries
        self.groups = [
            _Group(range(part[0] * group_size, (part[-1] + 1) * group_size), range(part[0], part[-1] + 1))
            for part in np.array_split(np.arange(n_groups), n_workers)
        ]
        self._builders = [  # each worker receives its own envs' makers only
            functools.partial(_dummy_vec_env, list(env_fns[g.envs.start : g.envs.stop]))
            if env_fns is not None
            else functools.partial(make_group, g.envs.start, g.envs.stop)
            for g in self.groups
        ]
        self._actor_class = ray.remote(num_cpus=num_cpus_per_worker)(_EnvWorker)
        self._seed: int | None = None
        #: sums over remote episode collections (:mod:`maesn_sb3.common.remote`; reset it at will):
        #: ``calls``; seconds to send the policy and requests (``broadcast_s``), until every worker
        #: finished (``remote_s``), of the
        #: slowest worker's own collection (``worker_s``), to fetch the episodes (``return_s``) and
        #: lay them out (``assemble_s``); ``policy_bytes`` and ``episode_bytes`` (the arrays) moved;
        #: ``control_s``: seconds of ``env_method``/``get_attr``/``set_attr`` calls (tasks, latents)
        self.collection_stats: dict[str, float] = {}
        self.closed = False
        self.actors: list[Any] = []
        try:
            self.actors = [self._actor_class.remote(builder) for builder in self._builders]
            spaces = self._get([actor.spaces.remote() for actor in self.actors], "creating the envs")
        except BaseException:
            self.close()
            raise
        observation_space, action_space, _ = spaces[0]
        self._pending: list[Any] | None = None
        super().__init__(n_envs, observation_space, action_space)

    # -- cluster ------------------------------------------------------------------------------------
    def _check_cpus(self, ray: Any, n_workers: int, cpus: float, address: str | None) -> None:
        total = ray.cluster_resources().get("CPU", 0.0)
        deadline = time.monotonic() + (10.0 if total >= n_workers * cpus else 0.0)
        # the CPUs of workers closed a moment ago come back within seconds
        while (available := ray.available_resources().get("CPU", 0.0)) < n_workers * cpus:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if available < n_workers * cpus:
            self._shutdown_ray()
            raise ValueError(
                f"{n_workers} Ray workers need {n_workers * cpus:g} CPUs ({cpus:g} each), but the cluster "
                f"({address or 'local'}) has {available:g} free of {total:g}: add nodes (ray start "
                "--address=HEAD:6379 on more machines) or ask for fewer workers"
            )

    def _shutdown_ray(self) -> None:
        if self._started_ray:
            import_ray().shutdown()
            self._started_ray = False

    def _worker_error(self, worker: int, doing: str, error: BaseException) -> RayWorkerError:
        group = self.groups[worker]
        return RayWorkerError(
            f"Ray worker {worker} (sub-envs {group.envs.start}..{group.envs.stop - 1}) died while {doing}: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}; its node may have "
            "run out of memory or been stopped; close() this VecEnv",
            worker,
            group.envs,
        )

    def _get(self, refs: list[Any], doing: str, workers: Sequence[int] | None = None) -> list[Any]:
        """``ray.get`` of one reference per worker, as they finish: the first worker that died raises
        a :class:`RayWorkerError` at once; an exception in a worker's env is raised as it is."""
        ray = import_ray()
        workers = list(range(len(refs))) if workers is None else list(workers)
        index = {ref: k for k, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            k = index[ready[0]]
            try:
                results[k] = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as error:
                raise self._worker_error(workers[k], doing, error) from error
        return results

    def _targets(self, indices: VecEnvIndices) -> list[tuple[int, list[int], list[int]]]:
        """``(worker, positions in the answer, local indices)`` for each worker that holds ``indices``."""
        targets = env_indices(indices, self.num_envs)
        out: dict[int, tuple[list[int], list[int]]] = {}
        for position, index in enumerate(targets):
            index = int(index)
            if not 0 <= index < self.num_envs:
                raise IndexError(f"indices must lie in [0, {self.num_envs}), got {index}")
            worker = next(w for w, g in enumerate(self.groups) if index in g.envs)
            positions, local = out.setdefault(worker, ([], []))
            positions.append(position)
            local.append(index - self.groups[worker].envs.start)
        return [(worker, *out[worker]) for worker in sorted(out)]

    def _call(self, method: str, indices: VecEnvIndices, doing: str, *args: Any) -> list[Any]:
        start = time.perf_counter()
        targets = self._targets(indices)
        refs = [getattr(self.actors[w], method).remote(*args, local) for w, _, local in targets]
        answers = self._get(refs, doing, [w for w, _, _ in targets])
        self.collection_stats["control_s"] = (
            self.collection_stats.get("control_s", 0) + time.perf_counter() - start
        )
        out: list[Any] = [None] * sum(len(p) for _, p, _ in targets)
        for (_, positions, _), answer in zip(targets, answers, strict=True):
            for position, value in zip(positions, answer, strict=True):
                out[position] = value
        return out

    def worker_locations(self) -> list[tuple[str, int]]:
        """Each worker's Ray node id and process id."""
        return self._get([actor.where.remote() for actor in self.actors], "reading its location")

    def worker_pids(self) -> list[int]:
        """The process id of every worker (to watch or, in tests, to kill them)."""
        return [pid for _, pid in self.worker_locations()]

    # -- VecEnv -------------------------------------------------------------------------------------
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed sub-env ``i`` with ``seed + i`` at the next reset (as SB3's VecEnvs)."""
        self._seed = seed
        if seed is None:
            return [None] * self.num_envs
        self._get(
            [a.seed.remote(seed + g.envs.start) for a, g in zip(self.actors, self.groups, strict=True)],
            "seeding",
        )
        return [seed + i for i in range(self.num_envs)]

    def set_options(self, options: list[dict] | dict | None = None) -> None:
        options = options if isinstance(options, list) else [options] * self.num_envs
        self._get(
            [
                a.set_options.remote(options[g.envs.start : g.envs.stop])
                for a, g in zip(self.actors, self.groups, strict=True)
            ],
            "setting options",
        )

    def _reset_seeds(self) -> None:
        super()._reset_seeds()
        self._get([a.seed.remote(None) for a in self.actors], "dropping its seeds")

    def reset(self) -> VecEnvObs:
        answers = self._get([actor.reset.remote() for actor in self.actors], "resetting")
        self.reset_infos = [info for answer in answers for info in answer[1]]
        return _concat_obs([answer[0] for answer in answers])

    def step_async(self, actions: np.ndarray) -> None:
        self._pending = [
            actor.step.remote(actions[g.envs.start : g.envs.stop])
            for actor, g in zip(self.actors, self.groups, strict=True)
        ]

    def step_wait(self) -> VecEnvStepReturn:
        pending, self._pending = self._pending, None
        answers = self._get(pending, "stepping")
        obs = _concat_obs([answer[0] for answer in answers])
        rewards = np.concatenate([answer[1] for answer in answers])
        dones = np.concatenate([answer[2] for answer in answers])
        infos = [info for answer in answers for info in answer[3]]
        self.reset_infos = [info for answer in answers for info in answer[4]]
        return obs, rewards, dones, infos

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        return self._call(
            "env_method", indices, f"calling {method_name}()", method_name, method_args, method_kwargs
        )

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._call("get_attr", indices, f"reading {attr_name}", attr_name)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._call("set_attr", indices, f"setting {attr_name}", attr_name, value)

    def has_attr(self, attr_name: str) -> bool:
        return all(self._get([a.has_attr.remote(attr_name) for a in self.actors], f"looking for {attr_name}"))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._call("env_is_wrapped", indices, "checking its wrappers", wrapper_class)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [
            image
            for images in self._get([a.get_images.remote() for a in self.actors], "rendering")
            for image in images
        ]

    def get_random_state(self) -> list[dict[str, Any]]:
        """The state of every sub-env's generator (what :meth:`MetaTaskVecEnv.get_random_state` returns)."""
        answers = self._get([a.random_state.remote() for a in self.actors], "reading its random state")
        return [state for states in answers for state in states]

    def set_random_state(self, states: Sequence[dict[str, Any]]) -> None:
        """Put the sub-envs' generators in ``states`` (see :meth:`get_random_state`)."""
        refs = [
            a.random_state.remote(list(states[g.envs.start : g.envs.stop]))
            for a, g in zip(self.actors, self.groups, strict=True)
        ]
        self._get(refs, "setting its random state")
        super()._reset_seeds()

    def close(self) -> None:
        """End every worker (and the local Ray instance when this env started it)."""
        if self.closed:
            return
        self.closed = True
        ray = import_ray()
        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:  # already dead
                pass
        self.actors = []
        self._shutdown_ray()

    # -- whole episodes -------------------------------------------------------------------------------
    # -- running a function on every worker ---------------------------------------------------------
    def run_on_workers(
        self,
        fn: Callable[..., Any],
        args: Sequence[tuple[Any, ...]],
        doing: str,
        timings: dict[str, float] | None = None,
    ) -> list[Any]:
        """``fn(worker, *args[i])`` on every worker ``i`` at once (``worker`` the actor: its ``venv`` and
        :meth:`_EnvWorker.meta_view`); the answers in worker order, or a :class:`RayWorkerError`.
        ``timings`` receives the seconds to send (``broadcast_s``), until every worker finished
        (``remote_s``) and to fetch the answers (``return_s``)."""
        ray = import_ray()
        timings = {} if timings is None else timings
        start = time.perf_counter()
        refs = [actor.run.remote(fn, *part) for actor, part in zip(self.actors, args, strict=True)]
        timings["broadcast_s"] = time.perf_counter() - start
        ray.wait(refs, num_returns=len(refs))
        timings["remote_s"] = time.perf_counter() - start - timings["broadcast_s"]
        start = time.perf_counter()
        answers = self._get(refs, doing)
        timings["return_s"] = time.perf_counter() - start
        return answers

    def restart_worker(self, worker: int) -> None:
        """A fresh actor for ``worker``, seeded as the first one (its tasks and latents are the caller's
        to set again)."""
        ray = import_ray()
        try:
            ray.kill(self.actors[worker])
        except Exception:
            pass
        self.actors[worker] = self._actor_class.remote(self._builders[worker])
        if self._seed is not None:
            self._get(
                [self.actors[worker].seed.remote(self._seed + self.groups[worker].envs.start)],
                "seeding",
                [worker],
            )


def _concat_obs(parts: list[VecEnvObs]) -> VecEnvObs:
    """The workers' observations, one after the other."""
    if isinstance(parts[0], dict):
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)
