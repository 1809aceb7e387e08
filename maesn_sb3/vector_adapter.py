"""Moved to :mod:`maesn_sb3.vec_env.native` and :mod:`maesn_sb3.vec_env.wrapper`; re-exported here."""

from maesn_sb3.vec_env.native import (
    MonitoredVectorEnvAdapter,
    VectorEnvAdapter,
    infos_per_env,
    make_native_vec_env,
)
from maesn_sb3.vec_env.wrapper import PicklableVecEnvWrapper

__all__ = [
    "MonitoredVectorEnvAdapter",
    "PicklableVecEnvWrapper",
    "VectorEnvAdapter",
    "infos_per_env",
    "make_native_vec_env",
]
