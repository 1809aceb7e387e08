"""Meta-World's meta-learning evaluation protocol, scored per env (per sampled task), beside Meta-World's own.

Meta-World 3.1's ``metaworld.evaluation.metalearning_evaluation`` counts the evaluation episodes per
environment *name*: it stops once every name has ``evaluation_episodes`` finished episodes and scores
the first ones to end. In ML1 every test env has the same name, and with ``terminate_on_success`` the
first episodes to end are the successes, so one env that solves its goal scores 1.00 for the whole batch
(ML10/ML45: the same within each name). :func:`metalearning_evaluation` runs the same protocol but scores
the first ``evaluation_episodes`` episodes of every env, as the upstream fix does
(Farama-Foundation/Metaworld PR #577), and also reports Meta-World 3.1's count of the same episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maesn_sb3.metaworld.agents import RL2Agent
from maesn_sb3.metaworld.env import make_benchmark, require_metaworld
from maesn_sb3.validators import check_int

__all__ = ["COUNTINGS", "MetaWorldScore", "metalearning_evaluation"]

#: How :func:`metalearning_evaluation` counts success: per env (the default) or Meta-World 3.1's own function.
COUNTINGS = ("per_env", "metaworld")


@dataclass
class MetaWorldScore:
    """A meta-test score: success rate and return averaged over the rounds, and success per env name.

    With ``counting="per_env"``: ``success_rate`` and ``mean_return`` are the means over the test envs
    (each env: its first ``evaluation_episodes`` episodes), ``success_per_env`` and ``return_per_env``
    hold them per round and env ``(num_evals, meta_batch_size)``, and ``success_rate_by_name`` /
    ``mean_return_by_name`` are what Meta-World 3.1's own count gives on the same episodes. With
    ``counting="metaworld"`` the score is Meta-World's function's and those fields are None.
    """

    success_rate: float
    mean_return: float
    success_per_task: dict[str, float]
    settings: dict[str, Any]
    counting: str = "per_env"
    success_per_env: np.ndarray | None = field(default=None, compare=False, repr=False)
    return_per_env: np.ndarray | None = field(default=None, compare=False, repr=False)
    success_rate_by_name: float | None = None
    mean_return_by_name: float | None = None


def _task_names(envs: Any) -> list[str]:
    """The Meta-World env name (e.g. ``"reach-v3"``) of every env of a Meta-World vector env."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    by_class = {cls.__name__: name for name, cls in ALL_V3_ENVIRONMENTS.items()}
    return [by_class[name] for name in envs.get_attr("task_name")]


def _adapt(agent: Any, envs: Any, adaptation_steps: int, adaptation_episodes: int) -> None:
    """One round's adaptation, as Meta-World's: ``adaptation_steps`` times, every env plays at least
    ``adaptation_episodes`` episodes with ``adapt_action`` (each step handed to ``agent.step``), then
    ``agent.adapt()``."""
    from metaworld.evaluation import Timestep

    for _ in range(adaptation_steps):
        obs, _ = envs.reset()
        elapsed = np.zeros(envs.num_envs, dtype=np.int64)
        while not (elapsed >= adaptation_episodes).all():
            actions, aux = agent.adapt_action(obs)
            next_obs, rewards, terminated, truncated, _ = envs.step(actions)
            agent.step(Timestep(obs, actions, rewards, terminated, truncated, aux))
            elapsed += np.logical_or(terminated, truncated)
            obs = next_obs
        agent.adapt()


def _evaluate(agent: Any, envs: Any, episodes: int, names: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """One round's evaluation with ``eval_action``, the envs stopping at success: every env plays until
    it has finished ``episodes`` episodes. Returns each env's success rate and mean return over its first
    ``episodes`` episodes, and, per env name, the ``(success, return)`` of its episodes in the order they
    ended (step, then env index): Meta-World 3.1 scores the first ``episodes`` of those."""
    terminate_on_success = bool(np.all(envs.get_attr("terminate_on_success")))
    envs.call("toggle_terminate_on_success", True)
    try:
        obs, _ = envs.reset()
        agent.reset(np.ones(envs.num_envs, dtype=bool))
        per_env: list[list[tuple[float, float]]] = [[] for _ in range(envs.num_envs)]
        by_name: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        while min(len(ended) for ended in per_env) < episodes:
            obs, _, terminated, truncated, infos = envs.step(agent.eval_action(obs))
            dones = np.logical_or(terminated, truncated)
            agent.reset(dones)
            for i in np.flatnonzero(dones):
                final = infos["final_info"]
                ended = (float(final["success"][i]), float(final["episode"]["r"][i]))
                per_env[i].append(ended)
                by_name[names[i]].append(ended)
    finally:
        envs.call("toggle_terminate_on_success", terminate_on_success)
    first = np.array([ended[:episodes] for ended in per_env])  # (n_envs, episodes, 2)
    return first[..., 0].mean(1), first[..., 1].mean(1), by_name


def metalearning_evaluation(
    agent: Any,
    benchmark: str = "ML1",
    env_name: str | None = None,
    benchmark_seed: int = 0,
    meta_batch_size: int = 10,
    num_evals: int = 10,
    adaptation_steps: int = 1,
    adaptation_episodes: int = 10,
    evaluation_episodes: int = 3,
    max_episode_steps: int | None = None,
    total_tasks_per_cls: int | None = None,
    counting: str = "per_env",
) -> MetaWorldScore:
    """Meta-test ``agent`` (e.g. :func:`metaworld_agent` of a model) with Meta-World's protocol on the
    benchmark's test tasks, its test envs built by ``metaworld.make_ml_envs_test`` with ``benchmark_seed``
    (the seed of the :func:`metaworld_task_set` the model trained on).

    The protocol is Meta-World's: for each of ``num_evals`` rounds every one of the ``meta_batch_size``
    test envs gets a test task, the agent adapts (``adaptation_steps`` times: ``adaptation_episodes``
    episodes per env, then ``agent.adapt()``) and plays evaluation episodes that stop at success (an
    episode is solved if the success flag was ever set).

    :param counting: ``"per_env"`` (default): each env's first ``evaluation_episodes`` episodes are
        scored and the envs averaged, so every sampled task counts once; the score also carries
        Meta-World 3.1's count of the same episodes (``success_rate_by_name``). ``"metaworld"``: Meta-World's
        own ``metaworld.evaluation.metalearning_evaluation``, which counts the first episodes to end per
        env *name* (ML1: one env that solves its goal scores 1.00; see the Meta-World guide).
    :param meta_batch_size: test envs, a multiple of the benchmark's test env classes (ML1: 1, ML10: 5).
    :param max_episode_steps: the horizon (None: Meta-World's 500).
    :param total_tasks_per_cls: the test tasks per class the envs draw from (None: all 50).
    """
    metaworld = require_metaworld()
    if counting not in COUNTINGS:
        raise ValueError(f"counting must be one of {COUNTINGS}, got {counting!r}")
    bench = make_benchmark(benchmark, env_name, benchmark_seed)  # checks the names
    settings = {
        "benchmark": benchmark,
        "env_name": env_name,
        "benchmark_seed": benchmark_seed,
        "meta_batch_size": check_int("meta_batch_size", meta_batch_size),
        "num_evals": check_int("num_evals", num_evals),
        "adaptation_steps": check_int("adaptation_steps", adaptation_steps),
        "adaptation_episodes": check_int("adaptation_episodes", adaptation_episodes),
        "evaluation_episodes": check_int("evaluation_episodes", evaluation_episodes),
        "max_episode_steps": max_episode_steps,
        "counting": counting,
    }
    if meta_batch_size % len(bench.test_classes):
        raise ValueError(
            f"meta_batch_size must be a multiple of the {len(bench.test_classes)} test env classes of "
            f"{benchmark}, got {meta_batch_size}"
        )
    envs = metaworld.make_ml_envs_test(
        env_name if benchmark == "ML1" else benchmark,
        seed=benchmark_seed,
        meta_batch_size=meta_batch_size,
        total_tasks_per_cls=total_tasks_per_cls,
        max_episode_steps=max_episode_steps,
        **(RL2Agent.ENV_KWARGS if isinstance(agent, RL2Agent) else {}),  # RL^2: rewards in its input
    )
    try:
        if counting == "metaworld":
            from metaworld.evaluation import metalearning_evaluation as evaluate

            success, mean_return, per_task = evaluate(
                agent, envs, num_evals, adaptation_steps, adaptation_episodes, evaluation_episodes
            )
            per_task = {k: float(v) for k, v in per_task.items()}
            return MetaWorldScore(float(success), float(mean_return), per_task, settings, counting)
        return _per_env(agent, envs, settings)
    finally:
        envs.close()


def _per_env(agent: Any, envs: Any, settings: dict[str, Any]) -> MetaWorldScore:
    names = _task_names(envs)
    envs.call("toggle_sample_tasks_on_reset", False)
    envs.call("toggle_terminate_on_success", False)
    episodes = settings["evaluation_episodes"]
    success, returns, by_name_success, by_name_return = [], [], [], []
    for _ in range(settings["num_evals"]):
        envs.call("sample_tasks")
        agent.init()
        _adapt(agent, envs, settings["adaptation_steps"], settings["adaptation_episodes"])
        round_success, round_returns, by_name = _evaluate(agent, envs, episodes, names)
        success.append(round_success)
        returns.append(round_returns)
        counted = [np.array(ended[:episodes]) for ended in by_name.values()]
        by_name_success.append(np.mean([c[:, 0].mean() for c in counted]))
        by_name_return.append(np.mean([c[:, 1] for c in counted]))
    success_per_env, return_per_env = np.stack(success), np.stack(returns)
    per_name = np.array(names)
    return MetaWorldScore(
        success_rate=float(success_per_env.mean()),
        mean_return=float(return_per_env.mean()),
        success_per_task={n: float(success_per_env[:, per_name == n].mean()) for n in dict.fromkeys(names)},
        settings=settings,
        counting="per_env",
        success_per_env=success_per_env,
        return_per_env=return_per_env,
        success_rate_by_name=float(np.mean(by_name_success)),
        mean_return_by_name=float(np.mean(by_name_return)),
    )
