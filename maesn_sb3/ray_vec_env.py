"""Moved to :mod:`maesn_sb3.vec_env.ray_backend`; re-exported for old imports."""

from maesn_sb3.vec_env.ray_backend import INSTALL_HINT, RayVecEnv, RayWorkerError, import_ray

__all__ = ["INSTALL_HINT", "RayVecEnv", "RayWorkerError", "import_ray"]
