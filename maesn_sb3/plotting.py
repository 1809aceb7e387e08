"""Plots of MAESN's exploration, adaptation and learning, each returned as a matplotlib ``Figure``.

The figures are built without ``pyplot`` (no global state, no display needed): save them with
``fig.savefig("name.png")``. Needs matplotlib (``pip install "maesn-sb3[plot]"``).

Example:
    >>> from maesn_sb3 import MAESN, make_meta_vec_env
    >>> from maesn_sb3.plotting import plot_exploration
    >>> env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=2, envs_per_task=2, latent_dim=2, seed=0)
    >>> model = MAESN("MlpPolicy", env, n_train_tasks=4, seed=0)
    >>> fig = plot_exploration(model, "maesn_sb3/PointNav2D-v0", n_latents=3)
    >>> fig.savefig("exploration.png")
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.utils import set_random_seed

try:
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Ellipse
    from matplotlib.ticker import EngFormatter, MaxNLocator
except ImportError as error:  # pragma: no cover - exercised only without matplotlib
    raise ImportError("maesn_sb3.plotting needs matplotlib: pip install 'maesn-sb3[plot]'") from error

from maesn_sb3.maesn import MAESN, AdaptationResult
from maesn_sb3.tasks import check_task_env
from maesn_sb3.validators import check_int
from wrappers.latent import LatentWrapper, append_latent

__all__ = [
    "exploration_paths",
    "plot_adaptation_curve",
    "plot_exploration",
    "plot_learning_curve",
    "read_progress",
]

XY = Sequence[int] | Callable[[np.ndarray], np.ndarray]

#: Legend labels, in words, of the scalars MAESN logs.
CURVE_LABELS = {
    "rollout/post_update_return": "after the inner step",
    "rollout/pre_update_return": "before the inner step",
    "rollout/post_update_success": "after the inner step",
    "rollout/pre_update_success": "before the inner step",
    "rollout/ep_rew_mean": "episode return (last 100)",
    "rollout/success_rate": "success (last 100)",
}


def _position(xy: XY) -> Callable[[np.ndarray], np.ndarray]:
    if callable(xy):
        return lambda obs: np.asarray(xy(obs), dtype=float).reshape(2)
    index = list(xy)
    if len(index) != 2 or not all(isinstance(i, (int, np.integer)) for i in index):
        raise ValueError(f"xy must be two observation indices or a callable obs -> (x, y), got {xy!r}")
    return lambda obs: np.asarray(obs, dtype=float)[index]


def _task_env(env: str | gym.Env, env_kwargs: dict[str, Any] | None) -> tuple[gym.Env, bool]:
    if isinstance(env, str):
        made = gym.make(env, **(env_kwargs or {}))
    elif isinstance(env, gym.Env):
        if env_kwargs:
            raise ValueError("env_kwargs only applies when env is an env id, got an env instance")
        made = env
    else:
        raise TypeError(f"env must be an env id or a gymnasium.Env, got {type(env).__name__}")
    if is_wrapped(made, LatentWrapper):
        raise ValueError("env must come without a LatentWrapper: the plot chooses the latent of each episode")
    check_task_env(made)
    return made, isinstance(env, str)


def exploration_paths(
    model: MAESN,
    env: str | gym.Env,
    latents: np.ndarray,
    deterministic: bool,
    task: Any = None,
    seed: int = 0,
    xy: XY | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> list[np.ndarray]:
    """One episode per row of ``latents``, the latent held fixed; returns each episode's ``(T + 1, 2)`` path.

    :param model: a (meta-trained) MAESN model with a ``Box`` observation space.
    :param env: an env id or an env implementing the task API, without a ``LatentWrapper``.
    :param latents: shape ``(n_episodes, model.latent_dim)``.
    :param deterministic: mean actions (True) or actions sampled from the policy (False).
    :param task: the task to run (None: the env's current task).
    :param seed: episode ``i`` resets with ``seed + i``; also seeds the action noise.
    :param xy: the two observation indices of the position, or a callable ``obs -> (x, y)``; None: the
        env's ``position_indices()`` for the task when it has one (BlockPush: the target block), else (0, 1).
    :param env_kwargs: keyword arguments for ``gym.make`` when ``env`` is an id.
    """
    if not isinstance(model, MAESN):
        raise TypeError(f"model must be a MAESN model, got {type(model).__name__}")
    if not isinstance(model.observation_space, gym.spaces.Box):
        raise TypeError(
            f"exploration plots need a Box observation space, the model has {model.observation_space}"
        )
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim != 2 or latents.shape[1] != model.latent_dim:
        raise ValueError(f"latents must have shape (n, {model.latent_dim}), got {latents.shape}")
    position = None if xy is None else _position(xy)  # a bad xy fails before any env is made
    instance, made = _task_env(env, env_kwargs)
    expected = model.observation_space.shape[-1] - model.latent_dim
    if instance.observation_space.shape != (expected,):
        raise ValueError(
            f"env's observations have shape {instance.observation_space.shape}, but the model expects "
            f"({expected},) before its latent: was it trained on another env?"
        )
    set_random_seed(seed)
    try:
        if task is not None:
            instance.get_wrapper_attr("set_task")(task)
        if position is None:
            indices = getattr(instance.unwrapped, "position_indices", None)
            position = _position(indices() if indices is not None else (0, 1))
        paths = []
        for i, z in enumerate(latents):
            obs, _ = instance.reset(seed=seed + i)
            path, done = [position(obs)], False
            while not done:
                action, _ = model.predict(append_latent(obs, z), deterministic=deterministic)
                obs, _, terminated, truncated, _ = instance.step(action)
                path.append(position(obs))
                done = terminated or truncated
            paths.append(np.array(path))
    finally:
        if made:
            instance.close()
    return paths


def _goal(task: Any) -> np.ndarray | None:
    if isinstance(task, dict) and "goal" in task:
        goal = np.asarray(task["goal"], dtype=float).reshape(-1)
        return goal[:2] if goal.size >= 2 else None
    return None


def plot_exploration(
    model: MAESN,
    env: str | gym.Env,
    task: Any = None,
    n_latents: int = 10,
    adaptation: AdaptationResult | None = None,
    task_slot: int = 0,
    seed: int = 0,
    xy: XY | None = None,
    goal_radius: float | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> Figure:
    """The paper's exploration picture for one task.

    Left: one episode per latent drawn from the prior N(0, I), mean actions (MAESN's structured,
    episode-level exploration). Middle: the same policy with the prior's mean latent and only its action
    noise. Right (when ``adaptation`` is given): the path of slot ``task_slot``'s latent mean during
    adaptation, with one-std ellipses, over the prior; the left panel then also shows the adapted mean
    latent's episode.

    :param model: a MAESN model (``Box`` observations).
    :param env: an env id or an env implementing the task API, without a ``LatentWrapper``.
    :param task: the task to show (None: the env's current task); a dict task with a ``"goal"`` is marked.
    :param n_latents: episodes per panel.
    :param adaptation: the result of ``model.adapt`` on this task (optional).
    :param task_slot: which task slot of ``adaptation`` to draw.
    :param seed: seeds the latents, the resets and the action noise.
    :param xy: the two observation indices of the position, or a callable ``obs -> (x, y)``; None: the
        env's ``position_indices()`` for the task when it has one (BlockPush: the target block), else (0, 1).
    :param goal_radius: radius of the goal region to draw (None: none).
    :param env_kwargs: keyword arguments for ``gym.make`` when ``env`` is an id.
    """
    check_int("n_latents", n_latents)
    if adaptation is not None:
        if not isinstance(adaptation, AdaptationResult):
            raise TypeError(f"adaptation must be an AdaptationResult, got {type(adaptation).__name__}")
        n_slots = adaptation.latent_means.shape[1]
        if not 0 <= task_slot < n_slots:
            raise ValueError(f"task_slot must lie in [0, {n_slots}), got {task_slot}")
    dim = model.latent_dim
    prior = np.random.default_rng(seed).standard_normal((n_latents, dim))
    common = {"task": task, "seed": seed, "xy": xy, "env_kwargs": env_kwargs}
    structured = exploration_paths(model, env, prior, deterministic=True, **common)
    noise = exploration_paths(model, env, np.zeros((n_latents, dim)), deterministic=False, **common)
    adapted = None
    if adaptation is not None:
        mean = adaptation.latent_means[-1, task_slot][None]
        adapted = exploration_paths(model, env, mean, deterministic=True, **common)[0]

    fig = Figure(figsize=(14 if adaptation is not None else 9.5, 4.6), layout="constrained")
    axes = fig.subplots(1, 3 if adaptation is not None else 2)
    goal = _goal(task)
    titles = ("latents from the prior, mean actions", "action noise only (latent = prior mean)")
    for ax, paths, title, color in zip(
        axes[:2], (structured, noise), titles, ("tab:blue", "tab:orange"), strict=True
    ):
        for path in paths:
            ax.plot(path[:, 0], path[:, 1], color=color, alpha=0.6, lw=1)
            ax.plot(*path[-1], "o", color=color, ms=3)
        ax.plot(*paths[0][0], "ks", ms=6, label="start")
        if goal is not None:
            if goal_radius is not None:
                ax.add_patch(Circle(tuple(goal), goal_radius, color="tab:green", alpha=0.25))
            ax.plot(*goal, "*", color="tab:green", ms=14, label="goal")
        ax.set(title=title, xlabel="x position", ylabel="y position", aspect="equal")
    if adapted is not None:
        axes[0].plot(adapted[:, 0], adapted[:, 1], color="tab:red", lw=2.5, label="adapted latent (mean)")
    axes[0].legend(fontsize=8, loc="best")
    # one scale for both trajectory panels, so their spread compares directly
    limits = np.array([ax.dataLim.get_points() for ax in axes[:2]])
    low, high = limits[:, 0].min(0), limits[:, 1].max(0)
    pad = 0.05 * (high - low).max() + 1e-6
    for ax in axes[:2]:
        ax.set_xlim(low[0] - pad, high[0] + pad)
        ax.set_ylim(low[1] - pad, high[1] + pad)
    if adaptation is not None:
        _plot_latent_path(axes[2], adaptation, task_slot)
    return fig


def _plot_latent_path(ax: Any, adaptation: AdaptationResult, slot: int) -> None:
    means = adaptation.latent_means[:, slot]
    stds = np.exp(adaptation.latent_log_stds[:, slot])
    if means.shape[1] == 1:  # a 1-D latent: plot it against the iteration
        iterations = np.arange(len(means))
        ax.fill_between(iterations, means[:, 0] - stds[:, 0], means[:, 0] + stds[:, 0], alpha=0.2)
        ax.plot(iterations, means[:, 0], "o-")
        ax.set(title="latent during adaptation", xlabel="adaptation iteration", ylabel="latent z")
        return
    for radius in (1, 2):
        ax.add_patch(Circle((0, 0), radius, fill=False, ls="--", color="0.7"))
    colors = np.linspace(0.2, 1.0, len(means))
    for k, (mean, std) in enumerate(zip(means, stds, strict=True)):
        ax.add_patch(
            Ellipse(tuple(mean[:2]), 2 * std[0], 2 * std[1], fill=False, color=(colors[k], 0.1, 0.1), lw=1)
        )
    ax.plot(means[:, 0], means[:, 1], "-", color="0.3", lw=1)
    ax.scatter(means[:, 0], means[:, 1], c=np.arange(len(means)), cmap="Reds", zorder=3, edgecolors="k")
    ax.annotate("prior", means[0, :2], textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.annotate(
        f"iteration {len(means) - 1}", means[-1, :2], textcoords="offset points", xytext=(5, -10), fontsize=8
    )
    ax.set(
        title="latent during adaptation (ellipses: 1 std)",
        xlabel="latent, 1st dimension",
        ylabel="latent, 2nd dimension",
        aspect="equal",
    )
    ax.autoscale_view()


def plot_adaptation_curve(
    results: AdaptationResult | dict[str, AdaptationResult], x: str = "iteration"
) -> Figure:
    """Success rate and return per adaptation iteration, for one result or several labelled ones.

    :param results: an :class:`~maesn_sb3.AdaptationResult` or ``{label: result}``.
    :param x: ``"iteration"`` or ``"env_steps"`` (cumulative exploration steps) on the x axis.
    """
    if isinstance(results, AdaptationResult):
        results = {"MAESN": results}
    if not isinstance(results, dict) or not results:
        raise TypeError(f"results must be an AdaptationResult or a non-empty dict of them, got {results!r}")
    if x not in ("iteration", "env_steps"):
        raise ValueError(f"x must be 'iteration' or 'env_steps', got {x!r}")
    fig = Figure(figsize=(10, 4), layout="constrained")
    success_ax, return_ax = fig.subplots(1, 2)
    for label, result in results.items():
        if not isinstance(result, AdaptationResult):
            raise TypeError(f"results[{label!r}] must be an AdaptationResult, got {type(result).__name__}")
        xs = np.arange(len(result.env_steps)) if x == "iteration" else result.env_steps
        line = success_ax.plot(xs, result.mean_success, "o-", label=f"{label}: exploration")[0]
        return_ax.plot(xs, result.mean_return, "o-", color=line.get_color(), label=f"{label}: exploration")
        if result.eval_success is not None:
            success_ax.plot(
                xs, result.eval_success.mean(1), "s--", color=line.get_color(), label=f"{label}: mean latent"
            )
            return_ax.plot(
                xs, result.eval_returns.mean(1), "s--", color=line.get_color(), label=f"{label}: mean latent"
            )
    xlabel = "adaptation iteration" if x == "iteration" else "exploration env steps"
    success_ax.set(
        xlabel=xlabel, ylabel="success rate", ylim=(-0.02, 1.02), title="success on held-out tasks"
    )
    return_ax.set(xlabel=xlabel, ylabel="return", title="return on held-out tasks")
    success_ax.legend(fontsize=8)
    return fig


def read_progress(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The columns of an SB3 ``progress.csv`` as float arrays (empty cells become NaN)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no progress file at {os.fspath(path)!r} (train with a csv logger)")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{os.fspath(path)!r} holds no logged rows yet")

    def number(text: str | None) -> float:
        try:
            return float(text) if text not in (None, "") else np.nan
        except ValueError:
            return np.nan

    return {key: np.array([number(row.get(key)) for row in rows]) for key in rows[0]}


def plot_learning_curve(
    progress: str | os.PathLike[str] | dict[str, np.ndarray],
    keys: Sequence[str] = (
        "rollout/post_update_return",
        "rollout/pre_update_return",
        "rollout/post_update_success",
        "rollout/pre_update_success",
    ),
) -> Figure:
    """Meta-training curves against ``time/total_timesteps``: returns on the left, success on the right.

    :param progress: a ``progress.csv`` path or the columns from :func:`read_progress`.
    :param keys: the logged scalars to draw (those missing from the log are skipped).
    """
    columns = progress if isinstance(progress, dict) else read_progress(progress)
    if "time/total_timesteps" not in columns:
        raise ValueError(f"progress must have a 'time/total_timesteps' column, got {sorted(columns)}")
    present = [key for key in keys if key in columns]
    if not present:
        raise ValueError(f"none of {list(keys)} was logged; logged: {sorted(columns)}")
    steps = columns["time/total_timesteps"]
    fig = Figure(figsize=(10, 4), layout="constrained")
    return_ax, success_ax = fig.subplots(1, 2)
    for key in present:
        ax = success_ax if "success" in key else return_ax
        ok = np.isfinite(columns[key])
        ax.plot(
            steps[ok], columns[key][ok], label=CURVE_LABELS.get(key, key.split("/")[-1].replace("_", " "))
        )
    return_ax.set(
        xlabel="meta-training env steps", ylabel="mean episode return", title="meta-training: return"
    )
    success_ax.set(
        xlabel="meta-training env steps",
        ylabel="success rate",
        ylim=(-0.02, 1.02),
        title="meta-training: success",
    )
    for ax in (return_ax, success_ax):
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 2M, 500k: ticks that never run together
        if ax.lines:
            ax.legend(fontsize=8)
    return fig
