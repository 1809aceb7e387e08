"""What the commands share: errors, checks, progress bars, the adaptation table, the Ray backend."""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path
from typing import Any

import maesn_sb3
from maesn_sb3 import runs
from maesn_sb3.runs import (
    ADAPT_FILE,
    CONFIG_FILE,
    RunError,
    key_values,
    set_reward_type,
)

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


# -- commands -----------------------------------------------------------------------------------
def cmd_envs(args: argparse.Namespace) -> int:
    width = max(len(env_id) for env_id in maesn_sb3.list_envs())
    for env_id, description in maesn_sb3.list_envs().items():
        print(f"{env_id:<{width}}  {description}")
    return 0


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
    env_kwargs = {**config.get("env_kwargs", {}), **key_values(args.env_kwarg, "--env-kwarg")}
    if args.reward_type is None:
        env_kwargs.pop("reward_type", None)  # the training reward: the meta-test's is sparse
    set_reward_type(env_id, env_kwargs, args.reward_type, "sparse")
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
