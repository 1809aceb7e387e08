"""Small helpers of the meta-algorithms: warnings that point at the user's code, torch's thread count."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import torch as th
from threadpoolctl import threadpool_limits

__all__ = ["in_model_torch_threads", "torch_threads", "user_stacklevel"]


def user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` that points at the first caller outside this package."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Any:
    """Run the block with torch at ``n_threads`` intra-op threads and the BLAS libraries numpy loaded
    (OpenBLAS, MKL; through ``threadpoolctl``) at as many, restoring both after (None: leave them).
    The meta-algorithms' ``learn`` and ``adapt`` use 1: their networks and baseline fits are small,
    and the libraries' defaults (one thread per core) fight the envs for the cores. On a loaded 2-core
    machine torch's default made MAESN 9x slower (PointNav2D, 40k steps: 16.3 s against 1.8 s), and
    OpenBLAS's spinning threads made the linear baseline's 4,000 x 70 fit 8x slower (33 ms against 4)."""
    if n_threads is None:
        yield
        return
    before = th.get_num_threads()
    th.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads, user_api="blas"):
            yield
    finally:
        th.set_num_threads(before)


def in_model_torch_threads(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a model's method with torch at the model's ``n_torch_threads`` (see :func:`torch_threads`)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with torch_threads(self.n_torch_threads):
            return method(self, *args, **kwargs)

    return wrapper
