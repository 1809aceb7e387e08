"""``make_meta_vec_env``: a :class:`MetaTaskVecEnv` over the backend asked for, as SB3's ``make_vec_env``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from maesn_sb3.tasks import TaskSet
from maesn_sb3.validators import check_int, check_optional_int
from maesn_sb3.vec_env.meta import SUCCESS_MODES, MetaTaskVecEnv
from maesn_sb3.vec_env.native import make_native_vec_env
from maesn_sb3.vec_env.subproc import ReportingSubprocVecEnv
from wrappers.latent import LatentWrapper

__all__ = ["VECTORIZATIONS", "make_meta_vec_env"]


def _make_registered(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make`` from a module that registers this package's envs, so that subprocess workers
    started with ``forkserver``/``spawn`` (which import nothing of the parent) find them too."""
    return gym.make(env_id, **kwargs)


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
    check_int("n_tasks", n_tasks)
    check_int("envs_per_task", envs_per_task)
    check_optional_int("latent_dim", latent_dim)
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
        from maesn_sb3.vec_env.ray_backend import RayVecEnv

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
