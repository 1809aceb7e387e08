"""Run folders: one place that reads and writes them.

A run folder, as ``maesn-sb3 train`` writes it, holds ``model.zip`` (the model, its task set inside),
``config.yaml`` (the settings it was trained with), ``logs/`` (SB3's CSV and TensorBoard logs) and,
after ``maesn-sb3 adapt``, ``adaptation.npz`` with a ``.csv`` beside it (the adaptation curve).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = save_config(folder, {"algo": "maesn", "env": "maesn_sb3/PointNav2D-v0"})
    >>> read_config(folder)["env"]
    'maesn_sb3/PointNav2D-v0'
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import maesn_sb3
from maesn_sb3.common.base import AdaptationCurve

__all__ = [
    "ADAPT_FILE",
    "ALGOS",
    "CONFIG_FILE",
    "DEFAULTS",
    "LOGS_DIR",
    "MODEL_FILE",
    "RUN_KEYS",
    "RunError",
    "algo_class",
    "check_env_id",
    "env_takes",
    "find_run",
    "held_out_tasks",
    "import_modules",
    "key_values",
    "load_adaptation",
    "load_model",
    "make_run_env",
    "read_config",
    "read_yaml",
    "save_adaptation",
    "save_config",
    "set_reward_type",
    "train_config",
    "training_speed",
]

ALGOS = {"maesn": "MAESN", "lsbaseline": "LSBaseline"}
MODEL_FILE = "model.zip"
CONFIG_FILE = "config.yaml"
ADAPT_FILE = "adaptation.npz"
LOGS_DIR = "logs"


class RunError(Exception):
    """A run folder or file that cannot be used as asked (a problem the user can fix)."""


def _yaml() -> Any:
    import yaml

    return yaml


def algo_class(name: str, source: str = "--algo") -> type:
    """The algorithm class of a run's ``algo`` name (``maesn`` or ``lsbaseline``)."""
    if not isinstance(name, str) or name.lower() not in ALGOS:
        raise RunError(f"{source} must be one of {', '.join(ALGOS)}, got {name!r}")
    return getattr(maesn_sb3, ALGOS[name.lower()])


def read_yaml(path: str | os.PathLike[str], what: str) -> Any:
    """A YAML file read with the safe loader (no Python objects), or a :class:`RunError` naming it."""
    try:
        return _yaml().safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, _yaml().YAMLError) as error:
        raise RunError(f"{what} {str(path)!r} is not readable YAML: {error}") from error


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's ``config.yaml`` as a dict (empty when the folder has none)."""
    path = Path(folder) / CONFIG_FILE
    config = read_yaml(path, "the run's config") if path.is_file() else {}
    if not isinstance(config or {}, dict):
        raise RunError(f"the run's config {str(path)!r} must hold a YAML mapping")
    return config or {}


def save_config(folder: str | os.PathLike[str], config: dict[str, Any]) -> Path:
    """Write ``config`` to the run's ``config.yaml`` (creating the folder); returns its path."""
    path = Path(folder) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_yaml().safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def find_run(path: str | os.PathLike[str]) -> tuple[Path, Path, dict[str, Any]]:
    """A run folder (or a model ``.zip`` inside one) -> ``(folder, model file, config)``."""
    target = Path(path)
    if target.is_dir():
        model_path, folder = target / MODEL_FILE, target
    else:
        model_path = target if target.suffix == ".zip" else target.with_suffix(".zip")
        folder = model_path.parent
    if not model_path.is_file():
        raise RunError(
            f"no model at {str(model_path)!r}: pass a run folder written by `maesn-sb3 train` or a model .zip"
        )
    return folder, model_path, read_config(folder)


def training_speed(folder: str | os.PathLike[str]) -> float | None:
    """The meta-training env steps/s a run last logged (``time/fps`` in ``logs/progress.csv``), if any."""
    import csv

    path = Path(folder) / LOGS_DIR / "progress.csv"
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as file:
        speeds = [row.get("time/fps") for row in csv.DictReader(file)]
    speeds = [float(speed) for speed in speeds if speed]
    return speeds[-1] if speeds and speeds[-1] > 0 else None


def load_model(model_path: str | os.PathLike[str], config: dict[str, Any], device: str = "cpu") -> Any:
    """The model of a run, loaded with the class its config names (default MAESN)."""
    cls = algo_class(config.get("algo", "maesn"), f"the run's {CONFIG_FILE} key 'algo'")
    try:
        return cls.load(str(model_path), device=device)
    except Exception as error:  # a corrupt zip, or a model of another algorithm
        raise RunError(f"could not load a {cls.__name__} model from {str(model_path)!r}: {error}") from error


def save_adaptation(result: AdaptationCurve, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write an adaptation curve to ``path`` (``.npz``, see :meth:`AdaptationCurve.save`) and a ``.csv``
    beside it (per iteration: env steps, mean return and success, and the evaluations when run)."""
    path = Path(path)
    path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    result.save(path)
    rows = ["iteration,env_steps,return,success,eval_return,eval_success"]
    for k in range(len(result.env_steps)):
        evaluation = (
            f"{result.eval_returns[k].mean()},{result.eval_success[k].mean()}"
            if result.eval_success is not None
            else ","
        )
        rows.append(
            f"{k},{result.env_steps[k]},{result.mean_return[k]},{result.mean_success[k]},{evaluation}"
        )
    csv_path = path.with_suffix(".csv")
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path, csv_path


def load_adaptation(path: str | os.PathLike[str]) -> Any:
    """Read a MAESN adaptation curve (an ``AdaptationResult``) written by :func:`save_adaptation`."""
    return maesn_sb3.AdaptationResult.load(path)


# -- a run's env ---------------------------------------------------------------------------------
def import_modules(modules: list[str] | tuple[str, ...]) -> None:
    """Import each module (the user's, registering its task families), or a :class:`RunError`."""
    import importlib
    import sys

    if os.getcwd() not in sys.path:  # a module in the working folder, as `python -m` would find it
        sys.path.append(os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise RunError(f"cannot import {module!r}: {error}") from error


def check_env_id(env_id: str) -> str:
    """``env_id`` without a ``module:`` prefix (Gymnasium's ``"module:EnvId"``: the module is imported
    first, so that it registers its envs), or a :class:`RunError` naming close matches unless the id is
    a registered gymnasium env."""
    import gymnasium as gym

    module, sep, name = env_id.rpartition(":")
    if sep:
        import_modules([module])
        env_id = name
    if env_id not in gym.registry:
        known = sorted(maesn_sb3.list_envs())
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise RunError(
            f"unknown env id {env_id!r}.{hint} maesn-sb3's task families: {', '.join(known)} "
            "(`maesn-sb3 envs` lists them; other envs must be registered with gymnasium and implement "
            "sample_tasks/set_task/get_task; a module that registers one is imported by "
            "`--env module:EnvId` or `--import module`)"
        )
    return env_id


def env_takes(env_id: str, name: str) -> bool:
    """Whether the registered env ``env_id``'s constructor takes the keyword argument ``name``."""
    import inspect

    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    entry = gym.spec(env_id).entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    try:
        parameters = inspect.signature(creator).parameters.values()
    except (TypeError, ValueError):
        return True  # no signature to read: let the env say
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def make_run_env(
    model: Any, env_id: str, tasks: list[Any], envs_per_task: int, seed: int, env_kwargs: dict[str, Any]
) -> Any:
    """A :class:`~maesn_sb3.MetaTaskVecEnv` of ``env_id`` on ``tasks`` (one slot each) that fits ``model``
    (its latent size and spaces), or a :class:`RunError` saying why not."""
    from stable_baselines3.common.utils import check_for_correct_spaces

    check_env_id(env_id)
    try:
        env = maesn_sb3.make_meta_vec_env(
            env_id,
            n_tasks=len(tasks),
            envs_per_task=envs_per_task,
            latent_dim=model.latent_dim,
            seed=seed,
            tasks=tasks,
            env_kwargs=env_kwargs,
        )
    except TypeError as error:
        raise RunError(f"cannot build {env_id!r} with env kwargs {env_kwargs}: {error}") from error
    try:
        check_for_correct_spaces(env, model.observation_space, model.action_space)
    except ValueError as error:
        env.close()
        raise RunError(
            f"the model does not fit env {env_id!r}: {error}. Was it trained on another env? Pass the env it "
            "was trained on with --env."
        ) from error
    return env


def held_out_tasks(model: Any, env_id: str, split: str, n: int | None, seed: int) -> list[Any]:
    """The first ``n`` (None: all) of the model's saved ``split`` tasks, or a fresh seeded draw of test tasks
    when the model saved none of that split for ``env_id``."""
    task_set = model.task_set
    tasks = list(task_set.split(split))
    same_family = task_set.env_id in (None, env_id)
    if not tasks or not same_family:
        # no saved tasks of this split for this env: draw a fresh seeded set
        drawn = maesn_sb3.TaskSet.from_env(env_id, n_train=1, n_test=n or 10, seed=seed + 10_000)
        return drawn.test
    if n is not None:
        if n > len(tasks):
            raise RunError(f"--n-tasks must be <= {len(tasks)} (the model's {split} tasks), got {n}")
        tasks = tasks[:n]
    return tasks


# -- run configs (maesn-sb3 train) ---------------------------------------------------------------
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


def _yaml() -> Any:
    import yaml

    return yaml


def _parse_value(text: str) -> Any:
    return _yaml().safe_load(text)


def key_values(pairs: Sequence[str], option: str) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict, each value read as YAML."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RunError(f"{option} takes KEY=VALUE, got {pair!r}")
        result[key.replace("-", "_")] = _parse_value(value)
    return result


def train_config(args: Any) -> dict[str, Any]:
    """A run's config: the defaults, then ``args.config`` (YAML), then the options set in ``args``
    (``maesn-sb3 train``'s namespace)."""
    config = {key: (dict(value) if isinstance(value, dict) else value) for key, value in DEFAULTS.items()}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise RunError(f"--config: no such file {args.config!r}")
        loaded = read_yaml(path, "--config") or {}
        if not isinstance(loaded, dict):
            raise RunError(f"--config must hold a YAML mapping, got {type(loaded).__name__}")
        unknown = sorted(set(loaded) - set(RUN_KEYS))
        if unknown:
            raise RunError(
                f"--config {args.config!r} has unknown key(s) {unknown}; allowed: {list(RUN_KEYS)} "
                "(MAESN arguments go under 'hyperparams')"
            )
        config.update(loaded)
    for key in RUN_KEYS[:-2]:
        value = getattr(args, key, None)
        if value is not None:
            config[key] = value
    config["env_kwargs"] = {**(config.get("env_kwargs") or {}), **key_values(args.env_kwarg, "--env-kwarg")}
    if isinstance(config["env"], str) and isinstance(config["env_kwargs"], dict):
        set_reward_type(config["env"], config["env_kwargs"], args.reward_type, "dense")
    config["hyperparams"] = {**(config.get("hyperparams") or {}), **key_values(args.hp, "--hp")}
    return config


def set_reward_type(env_id: str, env_kwargs: dict[str, Any], reward_type: str | None, default: str) -> None:
    """Put ``--reward-type`` into ``env_kwargs``: ``none`` removes it (the env's own default); without the
    option, ``default`` only when the env takes a ``reward_type`` and none was given otherwise."""
    if reward_type == "none":
        env_kwargs.pop("reward_type", None)
    elif reward_type is not None:
        env_kwargs["reward_type"] = reward_type
    elif "reward_type" not in env_kwargs and env_takes(check_env_id(env_id), "reward_type"):
        env_kwargs["reward_type"] = default
