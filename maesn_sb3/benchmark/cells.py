"""The benchmark's cells: one (method, seed) run (its settings: :mod:`maesn_sb3.benchmark.config`)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from maesn_sb3.benchmark.checkpoints import (
    CellInterrupted,
    Checkpointing,
    meta_train,
    stop_at_once,
    stop_on_sigterm,
    stop_requested,
)
from maesn_sb3.benchmark.config import META_LEARNERS, METHODS, Config, meta_learner, outer_arguments
from maesn_sb3.benchmark.results import package_versions
from maesn_sb3.benchmark.skills import EnvStepCounter, mixed_discriminator, skill_meta_env, train_skills

#: episodes per panel of MAESN's exploration figure
N_FIGURE_PATHS = 10


# -- one cell -------------------------------------------------------------------------------------
def _horizon(env_id: str) -> int:
    import gymnasium as gym

    import maesn_sb3  # noqa: F401  (registers the task families)

    return int(gym.spec(env_id).max_episode_steps)


def cell_tasks(config: Config) -> Any:
    """The :class:`~maesn_sb3.TaskSet` of ``config``'s cells (training and held-out tasks)."""
    from maesn_sb3 import TaskSet

    return TaskSet.from_env(
        config.env_id, n_train=config.n_train_tasks, n_test=config.n_test_tasks, seed=config.task_seed
    )


def cell_env(config: Config, method: str, seed: int, tasks: Any, train: bool) -> Any:
    """A cell's meta-training env (``train``: ``n_tasks`` training tasks at a time, dense reward, seeded
    ``seed``) or its held-out env (the test tasks, ``adapt_episodes`` episodes each, sparse reward, seeded
    ``10_000 + seed``), for every method but the skill variants."""
    from maesn_sb3 import make_meta_vec_env
    from wrappers.rl2 import RL2Wrapper

    rl2 = {}
    if method == "rl2":
        trial = config.adapt_iterations + 1
        rl2 = {"wrapper_class": RL2Wrapper, "wrapper_kwargs": {"episodes_per_trial": trial}}
    vectorization = "dummy" if rl2 else config.vectorization  # the native batch takes no wrapper_class
    common = {"latent_dim": 2 if method in ("maesn", "lsbaseline") else None, **rl2}
    if train:
        return make_meta_vec_env(
            config.env_id,
            n_tasks=config.n_tasks,
            envs_per_task=config.rl2_envs_per_task if rl2 else config.envs_per_task,
            seed=seed,
            tasks=tasks,
            env_kwargs={"reward_type": "dense"},
            vectorization=vectorization,
            **common,
        )
    return make_meta_vec_env(
        config.env_id,
        n_tasks=config.n_test_tasks,
        envs_per_task=config.adapt_episodes,
        seed=10_000 + seed,
        tasks=tasks.test,
        env_kwargs={"reward_type": "sparse"},
        # PPO fine-tuning trains one SB3 model per task slot, on slices of a DummyVecEnv
        vectorization="dummy" if method in ("mtppo", "scratch") else vectorization,
        **common,
    )


def adaptation_rows(
    config: Config, method: str, seed: int, result: Any, env_steps: list[int] | None = None
) -> list[dict[str, Any]]:
    """A cell's rows of ``adaptation.csv`` from its :class:`~maesn_sb3.AdaptationResult` (``env_steps``
    per iteration replaces the result's where given)."""
    steps = result.env_steps if env_steps is None else env_steps
    return [
        {
            "method": method,
            "seed": seed,
            "task": task,
            "iteration": k,
            "env_steps": int(steps[k]),
            "return": float(result.returns[k, task]),
            "success": float(result.success[k, task]),
        }
        for k in range(config.adapt_iterations + 1)
        for task in range(config.n_test_tasks)
    ]


def run_cell(
    config: Config,
    method: str,
    seed: int,
    figure_dir: Path | None = None,
    output: Path | None = None,
    checkpoint_every: int = 10,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Meta-train ``method`` with ``seed`` (dense reward), adapt on the held-out tasks (sparse reward).

    With ``output`` (the run's folder), the meta-algorithms' cells (MAESN, the latent-space baseline,
    MAML) resume from their newest checkpoint under ``output/checkpoints`` and write one every
    ``checkpoint_every`` meta-iterations and on SIGTERM (see :mod:`maesn_sb3.benchmark.checkpoints`);
    a resumed cell returns the same rows as one never stopped. A SIGTERM raises
    :class:`~maesn_sb3.benchmark.checkpoints.CellInterrupted` after the checkpoint.

    With ``figure_dir``, a MAESN cell also writes the paper's exploration figure for the first
    held-out task there (``exploration_maesn_seed<seed>.png``: episodes under latents from the prior
    beside action noise alone, and the adapted latent's path), from the model it just trained.
    """
    if stop_requested():  # a SIGTERM reached this process before the cell began
        raise CellInterrupted(method, seed)
    import torch as th

    th.set_num_threads(1)
    from maesn_sb3 import RL2, MultiTaskPPO
    from maesn_sb3.ppo import ppo_from_scratch

    tasks = cell_tasks(config)
    horizon = _horizon(config.env_id)
    trial = config.adapt_iterations + 1
    budget = config.budgets.get(method, 0)

    def train_env() -> Any:
        return cell_env(config, method, seed, tasks, train=True)

    start = time.perf_counter()
    trained_before = 0.0  # seconds of meta-training in the checkpoint it resumed from
    # a SIGTERM: the meta-algorithms checkpoint at the end of the meta-iteration, the others stop at once
    at_once = contextlib.nullcontext() if method in META_LEARNERS else stop_at_once(method, seed)
    with stop_on_sigterm(), at_once:
        if method in META_LEARNERS:
            algorithm, kwargs = meta_learner(config, method)
            model, trained_before = meta_train(
                lambda: algorithm("MlpPolicy", train_env(), task_set=tasks, seed=seed, **kwargs),
                lambda payload: algorithm.load(payload, env=train_env()),
                budget,
                None if output is None else Checkpointing(output, config, method, seed, checkpoint_every),
            )
        elif method == "rl2":
            model = RL2(
                "MlpLstmPolicy",
                train_env(),
                task_set=tasks,
                seed=seed,
                n_steps=trial * horizon,
                batch_size=trial * horizon * config.n_tasks * config.rl2_envs_per_task,
                n_epochs=5,
                learning_rate=1e-3,
                policy_kwargs={"shared_lstm": True, "enable_critic_lstm": False},
            ).learn(budget)
        elif method == "mtppo":
            model = MultiTaskPPO(
                "MlpPolicy",
                train_env(),
                task_set=tasks,
                seed=seed,
                n_steps=horizon,
                batch_size=horizon * config.n_tasks * config.envs_per_task // 4,
            ).learn(budget)
        elif method in ("skills", "mixed"):
            model, skill_context, train_steps = _train_over_skills(config, method, seed, tasks, budget)
        elif method == "scratch":
            model = None
        else:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    train_seconds = trained_before + time.perf_counter() - start
    if method not in ("skills", "mixed"):
        train_steps = 0 if model is None else model.num_timesteps

    if method in ("skills", "mixed"):
        test_env = skill_meta_env(
            method, config.env_id, tasks.test, config.adapt_episodes, "sparse", 10_000 + seed, skill_context
        )
    else:
        test_env = cell_env(config, method, seed, tasks, train=False)
    adapt = {
        "n_iterations": config.adapt_iterations,
        "episodes_per_iteration": config.adapt_episodes,
        "seed": seed,
    }
    start = time.perf_counter()
    counter = None
    latent = {"evaluate": False, "step_scale": config.adapt_step_scale}  # MAESN's and LSB's adapt
    if method == "skills":  # a skill action is several env steps: count them in the Monitors
        counter = EnvStepCounter(test_env)
        result = model.adapt(test_env, callback=counter, **latent, **adapt)
    elif method in ("maesn", "lsbaseline", "mixed"):
        result = model.adapt(test_env, **latent, **adapt)
    elif method == "scratch":
        result = ppo_from_scratch(test_env, **adapt)
    else:
        result = model.adapt(test_env, **adapt)
    adapt_seconds = time.perf_counter() - start
    distances = {}
    if figure_dir is not None and method == "maesn":
        distances = _exploration_figure(model, config, tasks.test[0], result, seed, figure_dir)
    steps = None if counter is None else [n // config.n_test_tasks for n in counter.steps]
    rows = adaptation_rows(config, method, seed, result, steps)
    info = {
        "method": method,
        "seed": seed,
        "train_steps": int(train_steps),
        "train_seconds": round(train_seconds, 2),
        "adapt_seconds": round(adapt_seconds, 2),
        **package_versions(),  # this process's: a Ray cell's are its worker's
    }
    if method in ("maesn", "lsbaseline"):
        info.update(_coverage(config, model, tasks, seed))
    return rows, {**info, **distances}


def _coverage(config: Config, model: Any, tasks: Any, seed: int) -> dict[str, float]:
    """The model's exploration coverage of the held-out tasks (``adapt_episodes`` episodes per task,
    sparse reward; :func:`~maesn_sb3.evaluation.exploration_coverage`), on an env of its own so that the
    adaptation rows stay what they were."""
    from maesn_sb3 import make_meta_vec_env
    from maesn_sb3.evaluation import exploration_coverage

    env = make_meta_vec_env(
        config.env_id,
        n_tasks=config.n_test_tasks,
        envs_per_task=config.adapt_episodes,
        seed=20_000 + seed,
        tasks=tasks.test,
        latent_dim=2,
        env_kwargs={"reward_type": "sparse"},
        vectorization=config.vectorization,
    )
    try:
        coverage = exploration_coverage(model, env, seed=20_000 + seed)
    finally:
        env.close()
    return {"coverage_latents": coverage.latents, "coverage_action_noise": coverage.action_noise}


def _train_over_skills(
    config: Config, method: str, seed: int, tasks: Any, budget: int
) -> tuple[Any, dict[str, Any], int]:
    """Meta-train a skill variant; the model, its env context (for adaptation) and its env steps,
    DIAYN's pre-training included."""
    from maesn_sb3 import MAESN
    from maesn_sb3.skills import SkillRewardCallback

    context: dict[str, Any] = {
        "skill_steps": config.skill_steps,
        "mixed_skills": config.mixed_skills,
        "intrinsic_coef": config.intrinsic_coef,
        "sum_info_keys": (config.inner_reward_key,) if config.inner_reward_key else (),
    }
    pretrain = 0
    if method == "skills":
        context["low"], _ = train_skills(config.env_id, config.n_skills, config.diayn_steps, seed)
        pretrain = config.diayn_steps
    else:
        context["disc"] = mixed_discriminator(config.env_id, config.mixed_skills, seed)
    env = skill_meta_env(
        method, config.env_id, tasks.train[: config.n_tasks], config.envs_per_task, "dense", seed, context
    )
    model = MAESN(
        "MlpPolicy",
        env,
        task_set=tasks,
        seed=seed,
        inner_reward_key=config.inner_reward_key,
        natural_gradient=config.natural_gradient,
        latent_gradient=config.latent_gradient,
        **outer_arguments(config),
    )
    # MAESN counts the high level's steps: a skill action is skill_steps env steps
    model.learn(
        budget // config.skill_steps if method == "skills" else budget,
        callback=SkillRewardCallback() if method == "mixed" else None,
    )
    return model, context, pretrain + int(sum(env.env_method("get_total_steps")))


def _exploration_figure(
    model: Any, config: Config, task: Any, adaptation: Any, seed: int, folder: Path
) -> dict[str, float]:
    """Draw MAESN's exploration figure on held-out ``task``; returns its panels' mean distance from the
    start at the end of an episode (``prior_distance``: latents from the prior, mean actions;
    ``noise_distance``: action noise alone), in the units of the position the figure draws."""
    import gymnasium as gym
    import numpy as np

    from maesn_sb3.plotting import exploration_paths, plot_exploration

    radius = getattr(gym.make(config.env_id).unwrapped, "goal_radius", None)
    common = {"task": task, "seed": seed, "env_kwargs": {"reward_type": "sparse"}}
    figure = plot_exploration(
        model, config.env_id, adaptation=adaptation, goal_radius=radius, n_latents=N_FIGURE_PATHS, **common
    )
    figure.suptitle(
        f"{config.env_id}, held-out task 0: MAESN (seed {seed}) after {model.num_timesteps:,} meta-training "
        "steps; paths of the position the reward scores"
    )
    figure.savefig(Path(folder) / f"exploration_maesn_seed{seed}.png", dpi=80, bbox_inches="tight")
    prior = np.random.default_rng(seed).standard_normal((N_FIGURE_PATHS, model.latent_dim))  # the figure's
    distances = {}
    panels = (("prior_distance", prior, True), ("noise_distance", 0 * prior, False))
    for key, latents, deterministic in panels:
        paths = exploration_paths(model, config.env_id, latents, deterministic, **common)
        distances[key] = float(np.mean([np.linalg.norm(path[-1] - path[0]) for path in paths]))
    return distances


# -- speed: env steps/s of meta-training, side by side ---------------------------------------------
def measure_speed(config: Config) -> dict[str, float]:
    """Meta-train MAESN, MAML and SB3 PPO for ``speed_steps`` steps each on the same env; steps/s."""
    import torch as th

    th.set_num_threads(1)
    from stable_baselines3 import PPO

    from maesn_sb3 import MAESN, MAML, TaskSet, make_meta_vec_env

    tasks = TaskSet.from_env(config.env_id, n_train=config.n_train_tasks, n_test=0, seed=config.task_seed)
    horizon = _horizon(config.env_id)

    def env(latent: int | None) -> Any:
        return make_meta_vec_env(
            config.env_id,
            n_tasks=config.n_tasks,
            envs_per_task=config.envs_per_task,
            seed=0,
            tasks=tasks,
            latent_dim=latent,
            env_kwargs={"reward_type": "dense"},
            vectorization=config.vectorization,
        )

    latent, policy = outer_arguments(config), outer_arguments(config, latent=False)
    makers = {
        "MAESN": lambda: MAESN("MlpPolicy", env(2), task_set=tasks, seed=0, **latent),
        "MAML": lambda: MAML("MlpPolicy", env(None), task_set=tasks, seed=0, **policy),
        "SB3 PPO": lambda: PPO(
            "MlpPolicy",
            env(None),
            n_steps=horizon,
            batch_size=horizon * config.n_tasks * config.envs_per_task // 4,
            seed=0,
        ),
    }
    speed = {}
    for name, make in makers.items():
        model = make()
        start = time.perf_counter()
        model.learn(config.speed_steps)
        speed[name] = model.num_timesteps / (time.perf_counter() - start)
    return speed
