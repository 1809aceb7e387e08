"""``make demo``: meta-train MAESN on the 2D point task, then adapt it to held-out sparse-reward goals.

MAESN meta-trains a latent-conditioned policy and one latent distribution per training goal with
the dense reward (20 goals x 20 episodes per meta-iteration), its inner step seeing the sparse
reward. On held-out goals it is given only the sparse reward (1 inside the goal's radius, else 0):
starting from the prior N(0, I), it explores by sampling latents and adapts only the latent
distribution, a few policy-gradient steps.

Prints the adaptation table and writes a plot of the curve and of the exploration it learned.
Run with ``python -m maesn_sb3.demo [--timesteps N] [--output-dir demo_output] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch as th

from maesn_sb3.maesn import MAESN, AdaptationResult
from maesn_sb3.tasks import TaskSet
from maesn_sb3.vec_env import make_meta_vec_env

ENV_ID = "maesn_sb3/PointNav2D-v0"
LATENT_DIM = 2


def train(timesteps: int, tasks: TaskSet, seed: int, progress_bar: bool) -> MAESN:
    """Meta-train MAESN on the training goals with the dense reward."""
    env = make_meta_vec_env(
        ENV_ID, n_tasks=20, envs_per_task=20, latent_dim=LATENT_DIM, seed=seed, tasks=tasks
    )
    # the inner step learns from the sparse reward the env reports beside the dense one, as at test time
    model = MAESN(
        "MlpPolicy", env, task_set=tasks, seed=seed, inner_reward_key="sparse_reward", natural_gradient=True
    )
    return model.learn(timesteps, progress_bar=progress_bar)


def adapt(model: MAESN, tasks: TaskSet, iterations: int, seed: int) -> AdaptationResult:
    """Adapt the latent on every held-out goal at once (one task slot each), sparse reward."""
    env = make_meta_vec_env(
        ENV_ID,
        n_tasks=len(tasks.test),
        envs_per_task=50,
        latent_dim=LATENT_DIM,
        seed=seed + 1,
        tasks=tasks.test,
        env_kwargs={"reward_type": "sparse"},
    )
    return model.adapt(env, n_iterations=iterations, seed=seed)


def format_table(result: AdaptationResult) -> str:
    lines = [f"{'iteration':>9} {'env steps':>10} {'return':>8} {'success':>8} {'success (mean z)':>17}"]
    for k in range(len(result.env_steps)):
        lines.append(
            f"{k:>9} {result.env_steps[k]:>10} {result.mean_return[k]:>8.2f} {result.mean_success[k]:>8.0%} "
            f"{result.eval_success[k].mean():>17.0%}"
        )
    return "\n".join(lines)


def rollouts(model: MAESN, goal: np.ndarray, latents: np.ndarray) -> np.ndarray:
    """Deterministic paths of the policy with each latent held fixed: ``(n_latents, T + 1, 2)``."""
    import gymnasium as gym

    env = gym.make(ENV_ID)
    env.unwrapped.set_task({"goal": goal})
    paths = []
    for z in latents.astype(np.float32):
        obs, _ = env.reset(seed=0)
        path = [obs.copy()]
        done = False
        while not done:
            action, _ = model.predict(np.concatenate([obs, z]), deterministic=True)
            obs, _, terminated, truncated, _ = env.step(action)
            path.append(obs.copy())
            done = terminated or truncated
        paths.append(path)
    env.close()
    return np.array(paths)


def plot(model: MAESN, tasks: TaskSet, result: AdaptationResult, path: str, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (curve, explore) = plt.subplots(1, 2, figsize=(10, 4.2))
    iterations = np.arange(len(result.env_steps))
    curve.plot(iterations, result.mean_success, "o-", label="exploration episodes")
    curve.plot(iterations, result.eval_success.mean(axis=1), "s-", label="mean latent, mean action")
    curve.set(
        xlabel="adaptation iteration (0: before any update)",
        ylabel="success rate",
        ylim=(-0.02, 1.02),
        title=f"held-out goals ({len(tasks.test)}), sparse reward",
    )
    curve.set_xticks(iterations)
    curve.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0))
    curve.grid(alpha=0.3)
    curve.legend()

    goal = np.asarray(tasks.test[0]["goal"])
    prior = np.random.default_rng(seed).standard_normal((12, LATENT_DIM))
    angle = np.linspace(0.0, np.pi, 100)
    explore.plot(np.cos(angle), np.sin(angle), color="0.85", lw=1)
    for xy in rollouts(model, goal, prior):
        explore.plot(xy[:, 0], xy[:, 1], color="tab:blue", alpha=0.5, lw=1)
    adapted = rollouts(model, goal, result.latent_means[-1, :1])[0]
    explore.plot(adapted[:, 0], adapted[:, 1], color="tab:red", lw=2.5, label="adapted latent (mean)")
    explore.add_patch(plt.Circle(goal, 0.2, color="tab:green", alpha=0.3))
    explore.plot(*goal, "*", color="tab:green", ms=14, label="held-out goal")
    explore.plot([], [], color="tab:blue", label="latents from the prior")
    explore.set(
        title="exploration on held-out goal 0: one path per latent",
        xlabel="x position",
        ylabel="y position",
        aspect="equal",
    )
    explore.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=4_000_000, help="meta-training env steps")
    parser.add_argument("--test-tasks", type=int, default=20, help="held-out goals to adapt to")
    parser.add_argument("--adapt-iterations", type=int, default=5)
    parser.add_argument("--output-dir", default="demo_output", help="folder for the plot and the model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    for name in ("timesteps", "test_tasks"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.adapt_iterations < 0:
        parser.error(f"--adapt-iterations must be >= 0, got {args.adapt_iterations}")

    th.set_num_threads(1)  # small networks: one thread is as fast and does not fight the envs for cores
    print(__doc__.split("\n\n")[1].replace("\n", " ") + "\n")
    tasks = TaskSet.from_env(ENV_ID, n_train=100, n_test=args.test_tasks, seed=args.seed)
    start = time.perf_counter()
    model = train(args.timesteps, tasks, args.seed, progress_bar=not args.no_progress)
    print(
        f"meta-trained on {len(tasks.train)} goals: {model.num_timesteps:,} env steps "
        f"in {time.perf_counter() - start:.0f} s"
    )
    result = adapt(model, tasks, args.adapt_iterations, args.seed)
    print(f"\nadaptation to {len(tasks.test)} held-out goals, sparse reward, 50 episodes per iteration\n")
    print(format_table(result))
    os.makedirs(args.output_dir, exist_ok=True)
    model.save(os.path.join(args.output_dir, "maesn_point_nav"))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("\nmatplotlib is not installed, so no plot: pip install 'maesn-sb3[plot]'")
        return 0
    path = os.path.join(args.output_dir, "maesn_point_nav.png")
    plot(model, tasks, result, path, args.seed)
    print(f"\nplot written to {path}; model saved to {args.output_dir}/maesn_point_nav.zip")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
