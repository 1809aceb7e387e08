"""The benchmark's settings: the methods, :class:`Config` (a folder's ``config.json``), the tiers, and the
arguments each meta-learner's cells receive (resolved against its class's defaults, and checked)."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any

METHODS = ("maesn", "skills", "mixed", "lsbaseline", "maml", "rl2", "mtppo", "scratch")
LABELS = {
    "maesn": "MAESN",
    "skills": "MAESN over DIAYN skills",
    "mixed": "MAESN, mixed reward (task + skill)",
    "lsbaseline": "latent-space baseline",
    "maml": "MAML (TRPO)",
    "rl2": "RL² (RecurrentPPO)",
    "mtppo": "multi-task PPO, fine-tuned",
    "scratch": "PPO from scratch",
}
FIELDS = ("method", "seed", "task", "iteration", "env_steps", "return", "success")
COVERAGE_FIELDS = ("method", "seed", "coverage_latents", "coverage_action_noise")
#: MAESN's exploration figure as numbers: the mean distance from the start at the end of its episodes
EXPLORATION_FIELDS = ("method", "seed", "prior_distance", "noise_distance")
#: the packages a cell ran with, and the CPU's instruction set as torch uses it (``cpu``): the same
#: seed may give other numbers on other versions or on another CPU's vector kernels
PACKAGES = ("numpy", "torch", "mujoco", "gymnasium", "stable-baselines3", "sb3-contrib", "maesn-sb3")
VERSION_FIELDS = ("method", "seed", "python", *PACKAGES, "cpu")


@dataclass
class Config:
    """One benchmark setting, saved as ``config.json`` in the output folder (a resume cannot mix settings)."""

    env_id: str
    n_train_tasks: int = 100
    n_test_tasks: int = 10
    task_seed: int = 0
    n_tasks: int = 20  # tasks per meta-iteration / rollout
    envs_per_task: int = 20  # episodes per task and phase
    adapt_iterations: int = 5
    adapt_episodes: int = 20
    budgets: dict[str, int] = field(default_factory=dict)  # meta-training env steps per method
    rl2_envs_per_task: int = 2
    speed_steps: int = 40_000
    inner_reward_key: str | None = None  # MAESN's and MAML's inner step on info[key] (e.g. "sparse_reward")
    natural_gradient: bool = True  # MAESN's and the latent-space baseline's latent steps (False: vanilla)
    latent_gradient: str = "reparameterization"  # MAESN's outer latent gradient (or "score_function")
    # the outer update of MAESN (and its skill variants), the latent-space baseline and MAML ("trpo" or
    # "ppo"), and further constructor arguments for the three (e.g. {"n_epochs": 5, "learning_rate": 3e-4};
    # "latent_learning_rate" goes to the latent methods only). "trpo" here is what a config.json written
    # before the setting existed ran; both tiers set "ppo", the algorithms' default.
    outer_update: str = "trpo"
    outer_kwargs: dict[str, Any] = field(default_factory=dict)
    # MAESN's (and its skill variants') and the latent-space baseline's meta-test latent steps times this
    # (MAESN.adapt's step_scale; 1: the reference's); MAML's meta-test step is its adapt_lr (outer_kwargs)
    adapt_step_scale: float = 1.0
    # the skill variants (maesn_sb3.benchmark.skills): DIAYN pre-training env steps (counted in the
    # variant's meta-training steps), skills, env steps per skill action, the mixed variant's skills
    # and skill-reward weight
    diayn_steps: int = 200_000
    n_skills: int = 10
    skill_steps: int = 10
    mixed_skills: int = 4
    intrinsic_coef: float = 0.1
    # make_meta_vec_env's backend ("native": the family's batch; RL^2 and PPO fine-tuning keep dummy)
    vectorization: str = "dummy"
    # per meta-learner, every hyperparameter its cells receive, the class defaults included
    # (:func:`resolved_kwargs`), recorded when the folder is made so that a class default changed later
    # cannot change what the folder's outer_kwargs mean; {} in folders written before it was recorded
    resolved_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)


TIERS: dict[str, dict[str, Any]] = {
    # PointNav2D: horizon 50; MAESN needs about 1M steps to be useful. MAML (second order) and RL^2
    # get fewer steps so that the tier fits 30 minutes on 2 cores: MAML's update differentiates through
    # the inner step, and RecurrentPPO trains through a per-step Python loop over the trial. MAESN's and
    # MAML's inner steps learn from the sparse reward they will meet at test time (the outer update
    # keeps the dense one); `--inner-reward-key ""` gives the reference's dense inner step.
    "quick": {
        "env_id": "maesn_sb3/PointNav2D-v0",
        "inner_reward_key": "sparse_reward",
        "outer_update": "ppo",
        "budgets": {
            "maesn": 3_000_000,
            "lsbaseline": 3_000_000,
            "maml": 800_000,
            "rl2": 180_000,
            "mtppo": 400_000,
        },
    },
    # MuJoCo families: the reference trains 500 meta-iterations x 20 tasks x 50 episodes (~10^8 steps
    # per family). This tier fits a 2-core machine: 2M meta-training steps (2 % of the reference) for
    # MAESN, the latent-space baseline, MAML and multi-task PPO, 1M for RL^2 (RecurrentPPO trains
    # through a per-step Python loop at ~1k env steps/s), 10 tasks x 10 episodes per meta-iteration
    # (200 iterations' worth of the reference's batch would not fit), natively batched envs. About
    # 1.5 core-hours per (family, seed) on WheeledNav; AntGoal's steps cost about twice as much.
    # `--budget-scale` gives the budget curve (e.g. 4 for 8M, written to a folder of its own).
    "paper": {
        "env_id": "maesn_sb3/WheeledNav-v0",
        "n_test_tasks": 10,
        "n_tasks": 10,
        "envs_per_task": 10,
        "vectorization": "native",
        "outer_update": "ppo",
        "budgets": {
            "maesn": 2_000_000,
            "lsbaseline": 2_000_000,
            "maml": 2_000_000,
            "rl2": 1_000_000,
            "mtppo": 2_000_000,
            "skills": 2_000_000,  # plus diayn_steps of DIAYN pre-training
            "mixed": 2_000_000,
        },
    },
}


# -- the meta-learners' arguments -------------------------------------------------------------------
def outer_arguments(config: Config, latent: bool = True) -> dict[str, Any]:
    """The outer-update arguments of MAESN and the latent-space baseline (``latent``) or of MAML (without
    the latent tables' ``latent_learning_rate``)."""
    kwargs = {"outer_update": config.outer_update, **config.outer_kwargs}
    if not latent:
        kwargs.pop("latent_learning_rate", None)
    return kwargs


def meta_learner(config: Config, method: str) -> tuple[type, dict[str, Any]]:
    """A meta-learner's class (``method`` one of :data:`META_LEARNERS`) and the arguments its cells pass."""
    from maesn_sb3 import MAESN, MAML, LSBaseline

    latent_steps = {"natural_gradient": config.natural_gradient, "latent_gradient": config.latent_gradient}
    inner_reward = {"inner_reward_key": config.inner_reward_key}
    if method == "maesn":
        return MAESN, {**inner_reward, **latent_steps, **outer_arguments(config)}
    if method == "lsbaseline":
        return LSBaseline, {**latent_steps, **outer_arguments(config)}
    return MAML, {"inner_lr": 0.1, **inner_reward, **outer_arguments(config, latent=False)}


#: the meta-learners: their cells checkpoint, and their hyperparameters are resolved in config.json
META_LEARNERS = ("maesn", "lsbaseline", "maml")
#: constructor arguments that do not change what a cell learns (or that the cell sets itself)
_NOT_HYPERPARAMETERS = frozenset(
    "policy env task_set seed verbose device tensorboard_log stats_window_size support_multi_env "
    "monitor_wrapper supported_action_spaces _init_setup_model".split()
)


def _constructor_defaults(algorithm: type) -> dict[str, Any]:
    """The keyword arguments of ``algorithm``'s constructor with their defaults, along the class's bases
    (LSBaseline passes ``**kwargs`` to MAESN)."""
    defaults = {}
    for cls in reversed(algorithm.__mro__):
        if "__init__" in vars(cls):
            for p in inspect.signature(cls.__init__).parameters.values():
                if p.default is not inspect.Parameter.empty:
                    defaults[p.name] = p.default
    return defaults


def resolved_kwargs(config: Config) -> dict[str, dict[str, Any]]:
    """Per meta-learner, the hyperparameters its cells receive: its class's constructor defaults
    overridden by the config's, as JSON values."""
    resolved = {}
    for method in META_LEARNERS:
        algorithm, kwargs = meta_learner(config, method)
        defaults = _constructor_defaults(algorithm)
        hyperparameters = {k: v for k, v in defaults.items() if k not in _NOT_HYPERPARAMETERS}
        resolved[method] = json.loads(json.dumps({**hyperparameters, **kwargs}))
    return resolved


def check_outer_kwargs(config: Config, methods: list[str]) -> None:
    """Raise a ``ValueError`` naming any ``outer_kwargs`` argument that one of ``methods``'s meta-learner
    classes does not take (the skill variants are MAESN), before any cell is built."""
    for method in methods:
        learner = "maesn" if method in ("skills", "mixed") else method
        if learner not in META_LEARNERS:
            continue
        algorithm, kwargs = meta_learner(config, learner)
        unknown = sorted(set(kwargs) - set(_constructor_defaults(algorithm)))
        if unknown:
            raise ValueError(
                f"outer_kwargs {unknown} are not arguments of {algorithm.__name__}, which the method "
                f"{method!r} builds; leave them out or run without {method!r} (--methods)"
            )
