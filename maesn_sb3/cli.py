"""The ``maesn-sb3`` command line (also ``python -m maesn_sb3``).

Commands: ``train``, ``adapt``, ``evaluate``, ``plot``, ``benchmark``, ``envs``. Run
``maesn-sb3 <command> --help`` for every option. Exit codes: 0 success, 1 a failure while running,
2 a usage error (bad option, missing file, unknown env id, model/env mismatch).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import maesn_sb3
from maesn_sb3 import runs
from maesn_sb3.runs import ADAPT_FILE, ALGOS, CONFIG_FILE, MODEL_FILE, RunError, load_adaptation

__all__ = ["ALGOS", "CLIError", "HelpFormatter", "build_parser", "load_adaptation", "main", "save_adaptation"]
# options of `train` that are not MAESN constructor arguments (everything else in a config is)
RUN_KEYS = (
    "algo",
    "env",
    "timesteps",
    "seed",
    "n_tasks",
    "envs_per_task",
    "latent_dim",
    "n_train_tasks",
    "n_test_tasks",
    "env_kwargs",
    "hyperparams",
)
DEFAULTS: dict[str, Any] = {
    "algo": "maesn",
    "env": "maesn_sb3/PointNav2D-v0",
    "timesteps": 1_000_000,
    "seed": 0,
    "n_tasks": 20,
    "envs_per_task": 20,
    "latent_dim": 2,
    "n_train_tasks": 100,
    "n_test_tasks": 30,
    "env_kwargs": {},
    "hyperparams": {},
}
#: held-out tasks that `adapt` uses without --n-tasks: with 10 episodes each and 10 updates it answers
#: in 5 s on PointNav2D on a loaded 2-core machine (30 tasks x 20 episodes at torch's default threads
#: took 113 s; adapt now runs torch at one thread)
ADAPT_TASKS = 10
EPILOG = """examples:
  maesn-sb3 envs
  maesn-sb3 train --env maesn_sb3/PointNav2D-v0 --timesteps 2000000 --output runs/point
  maesn-sb3 adapt runs/point --iterations 10
  maesn-sb3 evaluate runs/point --split test
  maesn-sb3 plot runs/point
"""


#: A problem the user can fix; printed as ``error: ...`` with exit code 2. The run-folder library's
#: :class:`~maesn_sb3.runs.RunError`, so its errors read the same.
CLIError = RunError


# -- helpers ------------------------------------------------------------------------------------
def _yaml() -> Any:
    import yaml

    return yaml


def _parse_value(text: str) -> Any:
    return _yaml().safe_load(text)


def _key_values(pairs: Sequence[str], option: str) -> dict[str, Any]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CLIError(f"{option} takes KEY=VALUE, got {pair!r}")
        result[key.replace("-", "_")] = _parse_value(value)
    return result


def _check_writable(path: Path, what: str) -> None:
    """Fail before any work if the file ``path`` could not be written (nothing is created here)."""
    if path.is_dir():
        raise CLIError(f"{what} {str(path)!r} is a folder, not a file")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise CLIError(f"{what} {str(path)!r} cannot be written: {str(ancestor)!r} is not a writable folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise CLIError(f"{what} {str(path)!r} cannot be written: the file is read-only")


def _check_task_family(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Build one env with ``env_kwargs`` and check the task API: a CLIError says what is wrong."""
    import gymnasium as gym

    def not_a_task_family(env: gym.Env) -> CLIError | None:
        try:
            maesn_sb3.check_task_env(env)
        except (TypeError, ValueError) as error:
            return CLIError(
                f"{env_id!r} is not a task family: {error}. `maesn-sb3 envs` lists the ones maesn-sb3 ships"
            )
        finally:
            env.close()
        return None

    try:
        env = gym.make(env_id, **env_kwargs)
    except TypeError as error:
        try:  # the kwargs, or an env that is no task family anyway (CartPole has no reward_type)?
            problem = not_a_task_family(gym.make(env_id))
        except Exception:
            problem = None
        raise problem or CLIError(f"cannot build {env_id!r} with env kwargs {env_kwargs}: {error}") from error
    problem = not_a_task_family(env)
    if problem is not None:
        raise problem


def _hyperparameter_names(cls: type) -> list[str]:
    names = set(inspect.signature(maesn_sb3.MAESN.__init__).parameters)
    names -= {"self", "policy", "env", "task_set", "n_train_tasks", "tensorboard_log", "seed", "verbose"}
    names.discard("_init_setup_model")
    if cls is maesn_sb3.LSBaseline:
        names -= {"inner_lr", "learn_step_sizes"}
    return sorted(names)


def _show_progress(args: argparse.Namespace) -> bool:
    """Progress bars (one tqdm style, on stderr) unless ``--no-progress`` or stderr is not a terminal."""
    return not args.no_progress and sys.stderr.isatty()


class _Bar:
    """A tqdm progress bar that can be switched off."""

    def __init__(self, total: int, desc: str, enabled: bool, unit: str = "it") -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, unit=unit)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


def _training_bar(enabled: bool) -> Any:
    """The training progress bar: SB3's progress callback with :class:`_Bar`'s style, so that ``learn``
    sizes it to the whole meta-iterations that run."""
    from stable_baselines3.common.callbacks import ProgressBarCallback
    from tqdm.auto import tqdm

    class Bar(ProgressBarCallback):
        def _on_training_start(self) -> None:
            total = self.locals["total_timesteps"] - self.model.num_timesteps
            self.pbar = tqdm(total=total, desc="training", disable=not enabled, file=sys.stderr, unit="step")

        def _on_step(self) -> bool:
            self.pbar.update(self.locals.get("n_steps", self.training_env.num_envs))
            return True

    return Bar()


def _format_adaptation(result: Any) -> str:
    header = f"{'iteration':>9} {'env steps':>10} {'return':>9} {'success':>8}"
    if result.eval_success is not None:
        header += f" {'return (mean z)':>16} {'success (mean z)':>17}"
    lines = [header]
    for k in range(len(result.env_steps)):
        line = (
            f"{k:>9} {result.env_steps[k]:>10} {result.mean_return[k]:>9.3f} {result.mean_success[k]:>8.1%}"
        )
        if result.eval_success is not None:
            line += f" {result.eval_returns[k].mean():>16.3f} {result.eval_success[k].mean():>17.1%}"
        lines.append(line)
    return "\n".join(lines)


def save_adaptation(result: Any, path: str | os.PathLike[str]) -> None:
    """Write an AdaptationResult to ``.npz`` (:meth:`~maesn_sb3.AdaptationCurve.save`)."""
    result.save(path)


# -- commands -----------------------------------------------------------------------------------
def cmd_envs(args: argparse.Namespace) -> int:
    width = max(len(env_id) for env_id in maesn_sb3.list_envs())
    for env_id, description in maesn_sb3.list_envs().items():
        print(f"{env_id:<{width}}  {description}")
    return 0


def _train_config(args: argparse.Namespace) -> dict[str, Any]:
    config = {key: (dict(value) if isinstance(value, dict) else value) for key, value in DEFAULTS.items()}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise CLIError(f"--config: no such file {args.config!r}")
        loaded = runs.read_yaml(path, "--config") or {}
        if not isinstance(loaded, dict):
            raise CLIError(f"--config must hold a YAML mapping, got {type(loaded).__name__}")
        unknown = sorted(set(loaded) - set(RUN_KEYS))
        if unknown:
            raise CLIError(
                f"--config {args.config!r} has unknown key(s) {unknown}; allowed: {list(RUN_KEYS)} "
                "(MAESN arguments go under 'hyperparams')"
            )
        config.update(loaded)
    for key in RUN_KEYS[:-2]:
        value = getattr(args, key, None)
        if value is not None:
            config[key] = value
    config["env_kwargs"] = {**(config.get("env_kwargs") or {}), **_key_values(args.env_kwarg, "--env-kwarg")}
    if isinstance(config["env"], str) and isinstance(config["env_kwargs"], dict):
        _set_reward_type(config["env"], config["env_kwargs"], args.reward_type, "dense")
    config["hyperparams"] = {**(config.get("hyperparams") or {}), **_key_values(args.hp, "--hp")}
    return config


def _set_reward_type(env_id: str, env_kwargs: dict[str, Any], reward_type: str | None, default: str) -> None:
    """Put ``--reward-type`` into ``env_kwargs``: ``none`` removes it (the env's own default); without the
    option, ``default`` only when the env takes a ``reward_type`` and none was given otherwise."""
    if reward_type == "none":
        env_kwargs.pop("reward_type", None)
    elif reward_type is not None:
        env_kwargs["reward_type"] = reward_type
    elif "reward_type" not in env_kwargs and runs.env_takes(runs.check_env_id(env_id), "reward_type"):
        env_kwargs["reward_type"] = default


def _ray_backend(args: argparse.Namespace, n_tasks: int) -> dict[str, Any]:
    """``make_meta_vec_env``'s arguments for ``--ray-address``/``--workers`` (none without them), after
    joining the Ray cluster at ``--ray-address``."""
    if args.ray_address is None and args.workers is None:
        return {}
    if args.workers is not None and not 1 <= args.workers <= n_tasks:
        raise CLIError(
            f"--workers must be in [1, --n-tasks = {n_tasks}] (whole task slots each), got {args.workers}"
        )
    from maesn_sb3.vec_env import import_ray

    try:
        ray = import_ray()
    except ImportError as error:
        raise CLIError(str(error)) from error
    if not ray.is_initialized():
        try:
            ray.init(address=args.ray_address, include_dashboard=False, logging_level="warning")
        except ConnectionError as error:
            raise CLIError(f"--ray-address {args.ray_address!r}: {error}") from error
    return {"vectorization": "ray", "ray_workers": args.workers}


def cmd_train(args: argparse.Namespace) -> int:
    from stable_baselines3.common.logger import configure

    config = _train_config(args)
    cls = runs.algo_class(config["algo"])
    config["algo"] = config["algo"].lower()
    runs.check_env_id(config["env"])  # imports a `module:` prefix's module
    for key in ("timesteps", "n_tasks", "envs_per_task", "latent_dim", "n_train_tasks"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CLIError(f"--{key.replace('_', '-')} must be an int >= 1, got {value!r}")
    if (
        isinstance(config["n_test_tasks"], bool)
        or not isinstance(config["n_test_tasks"], int)
        or (config["n_test_tasks"] < 0)
    ):
        raise CLIError(f"--n-test-tasks must be an int >= 0, got {config['n_test_tasks']!r}")
    if config["n_tasks"] > config["n_train_tasks"]:
        raise CLIError(
            f"--n-tasks (tasks per meta-iteration, {config['n_tasks']}) must be <= --n-train-tasks "
            f"({config['n_train_tasks']})"
        )
    for key in ("env_kwargs", "hyperparams"):
        if not isinstance(config[key], dict):
            raise CLIError(f"{key} must be a mapping, got {config[key]!r}")
    allowed = _hyperparameter_names(cls)
    unknown = sorted(set(config["hyperparams"]) - set(allowed))
    if unknown:
        raise CLIError(f"unknown hyperparameter(s) {unknown} for {cls.__name__}; allowed: {allowed}")
    output = Path(args.output or f"runs/{config['algo']}_{config['env'].split('/')[-1]}_seed{config['seed']}")
    if (output / MODEL_FILE).exists() and not args.overwrite:
        raise CLIError(f"{str(output / MODEL_FILE)!r} exists; pass --overwrite or another --output")
    _check_task_family(config["env"], config["env_kwargs"])
    _check_writable(output / MODEL_FILE, "--output")

    import torch as th

    th.set_num_threads(args.threads)
    tasks = maesn_sb3.TaskSet.from_env(
        config["env"], n_train=config["n_train_tasks"], n_test=config["n_test_tasks"], seed=config["seed"]
    )
    env = maesn_sb3.make_meta_vec_env(
        config["env"],
        n_tasks=config["n_tasks"],
        envs_per_task=config["envs_per_task"],
        latent_dim=config["latent_dim"],
        seed=config["seed"],
        tasks=tasks,
        env_kwargs=config["env_kwargs"],
        **_ray_backend(args, config["n_tasks"]),
    )
    try:
        model = cls(
            "MlpPolicy" if not hasattr(env.observation_space, "spaces") else "MultiInputPolicy",
            env,
            task_set=tasks,
            seed=config["seed"],
            verbose=args.verbose,
            **config["hyperparams"],
        )
    except (TypeError, ValueError) as error:
        env.close()
        raise CLIError(f"bad hyperparameter: {error}") from error
    config["maesn_sb3_version"] = maesn_sb3.__version__
    runs.save_config(output, config)
    formats = ["csv"] + (["tensorboard"] if args.tensorboard else []) + (["stdout"] if args.verbose else [])
    model.set_logger(configure(str(output / "logs"), formats))
    print(
        f"training {cls.__name__} on {config['env']} for {config['timesteps']:,} env steps "
        f"({config['n_tasks']} tasks x {config['envs_per_task']} episodes per meta-iteration); "
        f"output: {output}"
    )
    start = time.perf_counter()
    model.learn(config["timesteps"], callback=_training_bar(_show_progress(args)))
    model.save(str(output / MODEL_FILE))
    env.close()
    print(
        f"done: {model.num_timesteps:,} env steps in {time.perf_counter() - start:.0f} s; "
        f"model {output / MODEL_FILE}, config {output / CONFIG_FILE}, logs {output / 'logs'}"
    )
    return 0


def _model_on_tasks(
    args: argparse.Namespace, envs_per_task: int, default_n_tasks: int | None = None
) -> tuple[Path, Path, Any, str, dict[str, Any], list[Any], Any]:
    """Load the run's model and build its env on the chosen tasks (``adapt`` and ``evaluate``):
    ``(folder, model_path, model, env_id, env_kwargs, tasks, env)``."""
    folder, model_path, config = runs.find_run(args.run)
    model = runs.load_model(model_path, config)
    env_id = args.env or config.get("env")
    if env_id is None:
        raise CLIError(f"no {CONFIG_FILE} next to {str(model_path)!r}: pass the env id with --env")
    env_kwargs = {**config.get("env_kwargs", {}), **_key_values(args.env_kwarg, "--env-kwarg")}
    if args.reward_type is None:
        env_kwargs.pop("reward_type", None)  # the training reward: the meta-test's is sparse
    _set_reward_type(env_id, env_kwargs, args.reward_type, "sparse")
    tasks = runs.held_out_tasks(model, env_id, args.split, args.n_tasks, args.seed)
    if args.n_tasks is None and default_n_tasks is not None:
        tasks = tasks[:default_n_tasks]
    env = runs.make_run_env(model, env_id, tasks, envs_per_task, args.seed, env_kwargs)
    return folder, model_path, model, env_id, env_kwargs, tasks, env


def _adapt_output(args: argparse.Namespace) -> Path | None:
    """Where ``adapt --output`` writes the curve: a folder gets ``adaptation.npz``; NumPy adds ``.npz``."""
    if not args.output:
        return None
    output = Path(args.output)
    if output.is_dir() or args.output.endswith(("/", os.sep)):
        return output / ADAPT_FILE
    return output if output.suffix == ".npz" else output.with_name(output.name + ".npz")


def _adapt_estimate(env: Any, n_episodes: int, speed: float | None) -> str:
    """The work up front: the env steps, and their time at the training run's logged env steps/s
    (adaptation's latent steps cost less than meta-training's updates; its batch may be narrower)."""
    steps = n_episodes * env.horizon
    if speed is None:
        return f" ({steps:,} env steps)"
    return (
        f" ({steps:,} env steps): about {steps / speed:.0f} s at the "
        f"{speed:,.0f} env steps/s of meta-training"
    )


def cmd_adapt(args: argparse.Namespace) -> int:
    episodes = args.envs_per_task if args.episodes is None else args.episodes
    if episodes % args.envs_per_task:
        raise CLIError(
            f"--episodes must be a multiple of --envs-per-task = {args.envs_per_task}, got {episodes}"
        )
    output = _adapt_output(args) or runs.find_run(args.run)[0] / ADAPT_FILE
    _check_writable(output, "--output" if args.output else "the run folder's curve")
    folder, model_path, model, env_id, env_kwargs, tasks, env = _model_on_tasks(
        args, args.envs_per_task, ADAPT_TASKS
    )
    from stable_baselines3.common.callbacks import BaseCallback

    n_episodes = len(tasks) * episodes * (args.iterations + 1)
    print(
        f"adapting {model_path} on {len(tasks)} {args.split} task(s) x {episodes} episodes x "
        f"{args.iterations + 1} iterations (before and after each of {args.iterations} updates): "
        f"{n_episodes:,} episodes{_adapt_estimate(env, n_episodes, runs.training_speed(folder))}",
        flush=True,
    )
    bar = _Bar(args.iterations + 1, "adapting", _show_progress(args))
    start = time.perf_counter()

    class Progress(BaseCallback):
        def _on_step(self) -> bool:
            bar.update()
            if self.locals["iteration"] == 0 and args.iterations > 0:
                first = time.perf_counter() - start
                print(
                    f"first iteration {first:.1f} s: about {first * (args.iterations + 1):.0f} s in all",
                    flush=True,
                )
            return True

    result = model.adapt(
        env,
        n_iterations=args.iterations,
        episodes_per_iteration=args.episodes,
        seed=args.seed,
        natural_gradient=args.natural_gradient,
        callback=Progress(),
    )
    bar.close()
    env.close()
    print(
        f"adaptation of {model_path} to {len(tasks)} {args.split} task(s) of {env_id} "
        f"(reward {env_kwargs.get('reward_type', 'default')}):"
    )
    print(_format_adaptation(result))
    output, csv_path = runs.save_adaptation(result, output)
    print(f"curve saved to {output} and {csv_path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from maesn_sb3.evaluation import evaluate_latents

    if args.output:
        _check_writable(Path(args.output), "--output")
    _, model_path, model, env_id, _, tasks, env = _model_on_tasks(args, args.episodes)

    if args.latent == "trained" and args.split != "train":
        raise CLIError("--latent trained needs --split train (held-out tasks have no trained latent)")
    bar = _Bar(len(tasks) * args.episodes, "evaluating", _show_progress(args), unit="episode")
    finished = np.zeros(env.num_envs, dtype=bool)

    def on_step(step: dict[str, Any]) -> bool:
        bar.update(int(np.sum(step["dones"] & ~finished)))
        finished[:] |= step["dones"]
        return True

    returns, success = evaluate_latents(
        model, env, args.latent, args.deterministic, seed=args.seed, on_step=on_step
    )
    bar.close()
    env.close()
    print(
        f"{model_path} on {len(tasks)} {args.split} task(s) of {env_id}, {args.episodes} episode(s) each, "
        f"latent from {'the prior' if args.latent == 'prior' else 'the trained task latents'}"
        f"{', mean actions and latents' if args.deterministic else ''}:"
    )
    print(f"{'task':>5} {'return':>9} {'success':>8}")
    for k in range(len(tasks)):
        print(f"{k:>5} {returns[k]:>9.3f} {success[k]:>8.1%}")
    print(f"{'mean':>5} {returns.mean():>9.3f} {success.mean():>8.1%}")
    if args.output:
        Path(args.output).write_text(
            json.dumps({"returns": returns.tolist(), "success": success.tolist()}), encoding="utf-8"
        )
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    try:
        from maesn_sb3 import plotting
    except ImportError as error:
        raise CLIError(str(error)) from error
    folder, model_path, config = runs.find_run(args.run)
    output = Path(args.output or folder)
    _check_writable(output / "plot.png", "--output" if args.output else "the run folder")
    output.mkdir(parents=True, exist_ok=True)
    kinds = args.kind or ["learning", "adaptation", "exploration"]
    explicit = bool(args.kind)
    written = []
    bar = _Bar(len(kinds), "plotting", _show_progress(args))
    for kind in kinds:
        if kind == "learning":
            progress = folder / "logs" / "progress.csv"
            if progress.is_file():
                fig = plotting.plot_learning_curve(progress)
            elif explicit:
                raise CLIError(f"no training log at {str(progress)!r}")
            else:
                fig = None
        elif kind == "adaptation":
            path = folder / ADAPT_FILE
            if path.is_file():
                fig = plotting.plot_adaptation_curve(load_adaptation(path), x=args.x)
            elif explicit:
                raise CLIError(f"no adaptation curve at {str(path)!r}: run `maesn-sb3 adapt {folder}` first")
            else:
                fig = None
        else:
            model = runs.load_model(model_path, config)
            env_id = args.env or config.get("env")
            if env_id is None:
                raise CLIError(f"no {CONFIG_FILE} next to {str(model_path)!r}: pass the env id with --env")
            runs.check_env_id(env_id)
            tasks = runs.held_out_tasks(model, env_id, "test", None, args.seed)
            if not 0 <= args.task < len(tasks):
                raise CLIError(f"--task must lie in [0, {len(tasks)}), got {args.task}")
            adaptation = load_adaptation(folder / ADAPT_FILE) if (folder / ADAPT_FILE).is_file() else None
            if adaptation is not None and args.task >= adaptation.latent_means.shape[1]:
                adaptation = None
            try:
                fig = plotting.plot_exploration(
                    model,
                    env_id,
                    task=tasks[args.task],
                    n_latents=args.n_latents,
                    adaptation=adaptation,
                    task_slot=args.task,
                    seed=args.seed,
                    env_kwargs=config.get("env_kwargs"),
                )
            except ValueError as error:
                raise CLIError(str(error)) from error
        bar.update()
        if fig is not None:
            path = output / f"{kind}.png"
            fig.savefig(path, dpi=args.dpi)
            written.append(str(path))
    bar.close()
    if not written:
        raise CLIError(f"nothing to plot in {str(folder)!r}")
    print("wrote " + ", ".join(written))
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    # a child process: the benchmark runs its own worker processes and reads its own argv
    return subprocess.call([sys.executable, "-m", "maesn_sb3.benchmark", *args.benchmark_args])


# -- parser -------------------------------------------------------------------------------------
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


if __name__ == "__main__":
    raise SystemExit(main())
