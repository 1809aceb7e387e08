"""The ``maesn-sb3`` command line (also ``python -m maesn_sb3``).

Commands: ``train``, ``adapt``, ``evaluate``, ``plot``, ``benchmark``, ``envs``. Run
``maesn-sb3 <command> --help`` for every option. Exit codes: 0 success, 1 a failure while running,
2 a usage error (bad option, missing file, unknown env id, model/env mismatch).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from maesn_sb3 import runs
from maesn_sb3.cli._common import CLIError
from maesn_sb3.cli.parser import HelpFormatter, build_parser
from maesn_sb3.runs import ALGOS, load_adaptation, save_adaptation

__all__ = ["ALGOS", "CLIError", "HelpFormatter", "build_parser", "load_adaptation", "main", "save_adaptation"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["benchmark"] and argv[1:2] not in (["-h"], ["--help"]):
        # everything after `benchmark` belongs to the benchmark script (argparse's REMAINDER drops options)
        args = parser.parse_args(["benchmark"])
        args.benchmark_args = argv[1:]
    else:
        args = parser.parse_args(argv)
    for name in ("iterations", "episodes", "envs_per_task", "n_tasks", "n_latents", "threads", "dpi"):
        value = getattr(args, name, None)
        minimum = 0 if name == "iterations" else 1
        if value is not None and (args.command != "train" or name == "threads") and value < minimum:
            parser.error(f"--{name.replace('_', '-')} must be >= {minimum}, got {value}")
    if args.command == "benchmark" and args.benchmark_args[:1] == ["--"]:
        args.benchmark_args = args.benchmark_args[1:]
    try:
        runs.import_modules(getattr(args, "imports", []))
        return args.func(args)
    except CLIError as error:
        print(f"maesn-sb3 {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
