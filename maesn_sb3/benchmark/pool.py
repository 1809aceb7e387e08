"""A process pool for the benchmark's cells whose workers end with the benchmark's process."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def _die_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when the benchmark's process ends (even by SIGKILL).

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); everywhere a daemon
    thread also checks once a second that the parent still lives.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (AttributeError, OSError):
            pass
    if os.getppid() != parent:  # the parent ended before the prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def make_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers end with this process. Its workers are spawned, not forked: a fork
    copies the parent's threads' state but not the threads, and a MuJoCo batch's thread pool left in
    the parent (by the speed measurement) aborted every forked worker ("thread::join failed")."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )
