"""``maesn-sb3 benchmark``: the adaptation benchmark, in a child process."""

from __future__ import annotations

import argparse
import subprocess
import sys


def cmd_benchmark(args: argparse.Namespace) -> int:
    # a child process: the benchmark runs its own worker processes and reads its own argv
    return subprocess.call([sys.executable, "-m", "maesn_sb3.benchmark", *args.benchmark_args])
