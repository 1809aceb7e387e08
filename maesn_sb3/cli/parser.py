"""The ``maesn-sb3`` argument parser: one sub-command per module of :mod:`maesn_sb3.cli`."""

from __future__ import annotations

import argparse

import maesn_sb3
from maesn_sb3.cli._common import (
    ADAPT_TASKS,
    EPILOG,
    cmd_envs,
)
from maesn_sb3.cli.adapt import cmd_adapt
from maesn_sb3.cli.benchmark import cmd_benchmark
from maesn_sb3.cli.evaluate import cmd_evaluate
from maesn_sb3.cli.plot import cmd_plot
from maesn_sb3.cli.train import cmd_train
from maesn_sb3.runs import (
    ADAPT_FILE,
    ALGOS,
    CONFIG_FILE,
    DEFAULTS,
    MODEL_FILE,
    RUN_KEYS,
)


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default once: not when its help already says it, nor for None and flags."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if (
            "(default" in help_text
            or action.default in (None, False, [])
            or action.default is argparse.SUPPRESS
        ):
            return help_text
        return super()._get_help_string(action)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, _DefaultsFormatter):
    """For scripts (the examples): the description as written, every option's default shown once."""


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_import(parser)


def _add_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first, e.g. one that registers your task family with gymnasium.register "
        "(repeatable; the working folder is searched too; `--env module:EnvId` does the same)",
    )


def _add_run(parser: argparse.ArgumentParser, what: str, n_tasks: str = "all") -> None:
    parser.add_argument(
        "run",
        help=f"a run folder written by `maesn-sb3 train`, or a model .zip, to {what} (a model zip holds "
        "pickled objects: loading it runs code from the file, so open only runs you trust)",
    )
    parser.add_argument("--env", help="env id (default: the one in the run's config.yaml)")
    parser.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="the model's held-out (test) or training tasks",
    )
    parser.add_argument(
        "--n-tasks",
        type=int,
        help=f"use the first N tasks of the split (default: {n_tasks})",
    )
    parser.add_argument(
        "--reward-type",
        choices=("sparse", "dense", "none"),
        help="the env's reward (default: sparse, the paper's meta-test, when the env takes a reward_type; "
        "none: the env's default)",
    )
    parser.add_argument(
        "--env-kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra env argument (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maesn-sb3",
        description="MAESN (meta-learned structured exploration) for Stable-Baselines3: "
        "meta-train, adapt to held-out tasks, evaluate and plot.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"maesn-sb3 {maesn_sb3.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fmt = _DefaultsFormatter

    envs = commands.add_parser("envs", help="list the registered task families")
    envs.set_defaults(func=cmd_envs)

    train = commands.add_parser(
        "train",
        help="meta-train MAESN on a task family",
        description="Meta-train on a task family's training tasks (dense reward by default) and write "
        f"OUTPUT/{MODEL_FILE}, OUTPUT/{CONFIG_FILE} and OUTPUT/logs/progress.csv. Options override a "
        f"--config YAML file, which overrides the defaults: {DEFAULTS}.",
    )
    train.add_argument("--config", help=f"a YAML file with any of the keys {list(RUN_KEYS)}")
    train.add_argument("--algo", help=f"algorithm: {' or '.join(ALGOS)} (default: maesn)")
    train.add_argument("--env", help="task family's env id (default: maesn_sb3/PointNav2D-v0)")
    train.add_argument("--timesteps", type=int, help="meta-training env steps (default: 1000000)")
    train.add_argument("--seed", type=int, help="seed of tasks, latents, actions (default: 0)")
    train.add_argument("--n-tasks", type=int, help="tasks per meta-iteration (default: 20)")
    train.add_argument("--envs-per-task", type=int, help="episodes per task and phase (default: 20)")
    train.add_argument("--latent-dim", type=int, help="size of the latent (default: 2)")
    train.add_argument("--n-train-tasks", type=int, help="training tasks (default: 100)")
    train.add_argument("--n-test-tasks", type=int, help="held-out tasks saved with the model (default: 30)")
    train.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a MAESN constructor argument, e.g. --hp kl_coef=0.5 --hp policy_kwargs='{net_arch: [64, 64]}' "
        "(repeatable; values are parsed as YAML)",
    )
    train.add_argument(
        "--env-kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="env constructor argument, e.g. --env-kwarg reward_type=sparse (repeatable)",
    )
    train.add_argument(
        "--reward-type",
        choices=("sparse", "dense", "none"),
        help="the env's reward (default: dense when the env takes a reward_type; none: the env's default)",
    )
    _add_import(train)
    train.add_argument("--output", help="run folder (default: runs/<algo>_<env>_seed<seed>)")
    train.add_argument("--overwrite", action="store_true", help="replace a model already in --output")
    train.add_argument(
        "--tensorboard", action="store_true", help="also write TensorBoard events to OUTPUT/logs"
    )
    train.add_argument(
        "--threads", type=int, default=1, help="torch threads (default: 1, fastest for small nets)"
    )
    train.add_argument("--verbose", type=int, default=0, choices=(0, 1), help="1: print SB3's training table")
    train.add_argument(
        "--ray-address",
        help="collect episodes on this Ray cluster (auto: the one `ray start` joined this machine to; "
        'needs pip install "maesn-sb3[ray]")',
    )
    train.add_argument(
        "--workers",
        type=int,
        help="Ray workers collecting episodes, each a group of whole task slots (default with "
        "--ray-address: one per free CPU; alone: a local Ray instance)",
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(func=cmd_train)

    adapt = commands.add_parser(
        "adapt",
        help="adapt a trained model's latent to held-out tasks; print and save the curve",
        description="Adapt only the latent (the policy stays frozen) on the model's held-out tasks with "
        f"policy-gradient steps; prints the curve and saves RUN/{ADAPT_FILE} and a .csv next to it.",
        formatter_class=fmt,
    )
    _add_run(adapt, "adapt", n_tasks=f"{ADAPT_TASKS}, or all when fewer")
    adapt.add_argument("--iterations", type=int, default=10, help="latent updates")
    adapt.add_argument("--envs-per-task", type=int, default=10, help="parallel envs per task")
    adapt.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="episodes per task and iteration (default: --envs-per-task)",
    )
    rule = adapt.add_mutually_exclusive_group()
    rule.add_argument(
        "--natural-gradient",
        action="store_const",
        const=True,
        default=None,
        help="precondition the latent step by the Fisher information (default: the model's own rule, "
        "the one its step sizes were meta-trained with)",
    )
    rule.add_argument(
        "--vanilla-gradient",
        dest="natural_gradient",
        action="store_const",
        const=False,
        help="the plain policy-gradient latent step (the reference's)",
    )
    adapt.add_argument(
        "--step-scale",
        type=float,
        default=None,
        help="multiply every latent step (default: MAESN.adapt's, 2; 1 is the reference's)",
    )
    adapt.add_argument("--output", help=f"where to save the curve (default: RUN/{ADAPT_FILE})")
    _add_common(adapt)
    adapt.set_defaults(func=cmd_adapt)

    evaluate = commands.add_parser(
        "evaluate",
        help="mean return and success of a model's policy on tasks, without adaptation",
        description="Run episodes on each task with the latent drawn from the prior N(0, I) (or, on the "
        "training tasks, from the meta-trained task latents); print return and success per task.",
        formatter_class=fmt,
    )
    _add_run(evaluate, "evaluate")
    evaluate.add_argument("--episodes", type=int, default=10, help="episodes per task")
    evaluate.add_argument(
        "--latent", choices=("prior", "trained"), default="prior", help="latent distribution"
    )
    evaluate.add_argument("--deterministic", action="store_true", help="mean actions and the mean latent")
    evaluate.add_argument("--output", help="also write the figures as JSON to this file")
    _add_common(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    plot = commands.add_parser(
        "plot",
        help="learning curve, adaptation curve and exploration plot of a run, as PNGs",
        description="learning: meta-training curves from RUN/logs/progress.csv; adaptation: the curve "
        "saved by `maesn-sb3 adapt`; exploration: episodes of the policy under latents from the prior beside "
        "episodes with only action noise, on a held-out task, and the latent's path during adaptation "
        "(when adapted). Without --kind, draws those whose inputs exist.",
        formatter_class=fmt,
    )
    plot.add_argument(
        "run",
        help="a run folder written by `maesn-sb3 train` (the exploration plot loads its model.zip, which "
        "holds pickled objects: open only runs you trust)",
    )
    plot.add_argument(
        "--kind", action="append", choices=("learning", "adaptation", "exploration"), help="plot (repeatable)"
    )
    plot.add_argument("--env", help="env id (default: the one in the run's config.yaml)")
    plot.add_argument("--task", type=int, default=0, help="which held-out task the exploration plot shows")
    plot.add_argument("--n-latents", type=int, default=10, help="episodes per exploration panel")
    plot.add_argument(
        "--x", choices=("iteration", "env_steps"), default="iteration", help="adaptation x axis"
    )
    plot.add_argument("--dpi", type=int, default=100, help="PNG resolution")
    plot.add_argument("--output", help="folder for the PNGs (default: the run folder)")
    _add_common(plot)
    plot.set_defaults(func=cmd_plot)

    benchmark = commands.add_parser(
        "benchmark",
        help="run the comparison benchmark's tiers (maesn_sb3.benchmark)",
        description="Runs the adaptation benchmark (maesn_sb3.benchmark: MAESN against the baselines on "
        "held-out tasks) with the remaining arguments, e.g. `maesn-sb3 benchmark --tier quick`; "
        "`maesn-sb3 benchmark -- --help` lists its tiers and options.",
    )
    benchmark.add_argument("benchmark_args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    benchmark.set_defaults(func=cmd_benchmark)
    return parser
