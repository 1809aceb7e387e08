"""``maesn-sb3 train``: meta-train an algorithm into a run folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import maesn_sb3
from maesn_sb3 import runs
from maesn_sb3.cli._common import (
    CLIError,
    _check_task_family,
    _check_writable,
    _hyperparameter_names,
    _ray_backend,
    _show_progress,
    _training_bar,
)
from maesn_sb3.runs import (
    CONFIG_FILE,
    MODEL_FILE,
    train_config,
)
from maesn_sb3.validators import check_int


def cmd_train(args: argparse.Namespace) -> int:
    from stable_baselines3.common.logger import configure

    config = train_config(args)
    cls = runs.algo_class(config["algo"])
    config["algo"] = config["algo"].lower()
    runs.check_env_id(config["env"])  # imports a `module:` prefix's module
    try:
        for key in ("timesteps", "n_tasks", "envs_per_task", "latent_dim", "n_train_tasks", "n_test_tasks"):
            check_int(f"--{key.replace('_', '-')}", config[key], minimum=0 if key == "n_test_tasks" else 1)
    except ValueError as error:
        raise CLIError(str(error)) from None
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
