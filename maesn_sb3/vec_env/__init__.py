"""The VecEnv layer, one module per concern.

- :mod:`~maesn_sb3.vec_env.meta`: :class:`MetaTaskVecEnv`, task slots over any backend, and
  :class:`RemoteEnvsBackend`, the contract of a backend whose sub-envs live out of reach (Ray);
- :mod:`~maesn_sb3.vec_env.factory`: :func:`make_meta_vec_env`, which picks the backend;
- :mod:`~maesn_sb3.vec_env.subproc`: :class:`ReportingSubprocVecEnv`, SB3's subprocess backend with
  errors that name the sub-env;
- :mod:`~maesn_sb3.vec_env.native`: :class:`VectorEnvAdapter`, a Gymnasium ``VectorEnv`` (a family's
  native batch) as an SB3 ``VecEnv``;
- :mod:`~maesn_sb3.vec_env.ray_backend`: :class:`RayVecEnv`, sub-envs in Ray actors (Ray imported lazily);
- :mod:`~maesn_sb3.vec_env.wrapper`: :class:`PicklableVecEnvWrapper`, the base of the package's wrappers.

A backend steps envs; it does not collect episodes for an algorithm (that is ``maesn_sb3.common``).
"""

from maesn_sb3.vec_env.factory import VECTORIZATIONS, make_meta_vec_env
from maesn_sb3.vec_env.meta import SUCCESS_MODES, MetaTaskVecEnv, RemoteEnvsBackend
from maesn_sb3.vec_env.native import (
    MonitoredVectorEnvAdapter,
    VectorEnvAdapter,
    infos_per_env,
    make_native_vec_env,
)
from maesn_sb3.vec_env.ray_backend import RayVecEnv, RayWorkerError, import_ray
from maesn_sb3.vec_env.subproc import EnvWorkerError, ReportingSubprocVecEnv
from maesn_sb3.vec_env.wrapper import PicklableVecEnvWrapper

__all__ = [
    "SUCCESS_MODES",
    "VECTORIZATIONS",
    "EnvWorkerError",
    "MetaTaskVecEnv",
    "MonitoredVectorEnvAdapter",
    "PicklableVecEnvWrapper",
    "RayVecEnv",
    "RayWorkerError",
    "RemoteEnvsBackend",
    "ReportingSubprocVecEnv",
    "VectorEnvAdapter",
    "import_ray",
    "infos_per_env",
    "make_meta_vec_env",
    "make_native_vec_env",
]
