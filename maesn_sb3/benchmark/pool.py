"""A process pool for the benchmark's cells whose workers end with the benchmark's process, stop at a
SIGTERM after checkpointing, and can run at the lowest CPU priority."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from maesn_sb3.benchmark.checkpoints import request_stop

#: the nice value of a low-priority worker and of its autogroup (19: the lowest priority)
_LOWEST = 19


def lower_priority() -> str:
    """Give this process the lowest CPU priority, also against other sessions; what was done, in words.

    Where the kernel groups processes by session for scheduling (``CONFIG_SCHED_AUTOGROUP``, on by
    default on desktop and many server kernels), each session's group gets an equal share of the CPU
    whatever the nice values inside it: ``nice`` alone only ranks a process against its own session's.
    So the process starts a session of its own (``setsid``: a new group) and writes its nice value to
    ``/proc/self/autogroup``, which ranks the whole group against the others.
    """
    done = []
    try:
        os.setsid()
        done.append("a session of its own")
    except OSError:  # already a session or group leader
        pass
    os.nice(max(_LOWEST - os.nice(0), 0))
    done.append(f"nice {os.nice(0)}")
    autogroup = Path("/proc/self/autogroup")
    if autogroup.exists():
        try:
            autogroup.write_text(str(_LOWEST))
            done.append(f"autogroup {autogroup.read_text().strip()}")
        except OSError as error:
            warnings.warn(f"could not lower the autogroup's priority: {error}", stacklevel=2)
    return ", ".join(done)


def _init_worker(parent: int, low_priority: bool = False) -> None:
    """Pool initializer: a SIGTERM asks the cell to stop (see
    :func:`~maesn_sb3.benchmark.checkpoints.request_stop`); with ``low_priority``, :func:`lower_priority`;
    and end this worker when the benchmark's process ends (even by SIGKILL).

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); everywhere a daemon
    thread also checks once a second that the parent still lives.
    """
    signal.signal(signal.SIGTERM, request_stop)
    if low_priority:
        lower_priority()
    if sys.platform.startswith("linux"):
        import ctypes

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


def make_pool(workers: int, low_priority: bool = False) -> ProcessPoolExecutor:
    """A process pool whose workers end with this process (at the lowest CPU priority with
    ``low_priority``, see :func:`lower_priority`). Its workers are spawned, not forked: a fork
    copies the parent's threads' state but not the threads, and a MuJoCo batch's thread pool left in
    the parent (by the speed measurement) aborted every forked worker ("thread::join failed")."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(), low_priority),
    )
