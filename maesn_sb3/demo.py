"""``make demo``: the 2D point task seen through a latent-conditioned policy.

A fixed, randomly initialised policy pi(a | s, z) acts on PointNav2D tasks (goals hidden on a
semicircle, sparse reward). Each latent z, held for a whole episode, gives one consistent way of
moving: this is the structured exploration that MAESN builds on, where the distribution of z is
meta-learned per task. No learning happens here. Prints a table per latent and writes a plot.

Run with ``python -m maesn_sb3.demo [--output-dir demo_output] [--n-latents 6] [--n-tasks 4]``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from maesn_sb3.tasks import TaskSet
from maesn_sb3.vec_env import make_meta_vec_env

ENV_ID = "maesn_sb3/PointNav2D-v0"
LATENT_DIM = 2
HORIZON = 50


class RandomLatentPolicy:
    """A fixed random MLP mapping ``[observation, latent]`` to an action in [-1, 1]^2 (seeded).

    The latent's input weights are larger than the observation's, so that z sets the direction.
    """

    def __init__(
        self, obs_dim: int, latent_dim: int, action_dim: int, hidden: int = 32, seed: int = 0
    ) -> None:
        rng = np.random.default_rng(seed)
        scale = np.r_[np.full(obs_dim, 0.5), np.full(latent_dim, 2.0)][:, None]
        self.w1 = scale * rng.normal(0.0, 1.0, size=(obs_dim + latent_dim, hidden))
        self.w2 = rng.normal(0.0, 2.0 / np.sqrt(hidden), size=(hidden, action_dim))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.tanh(np.tanh(obs @ self.w1) @ self.w2).astype(np.float32)


def run_demo(n_latents: int = 6, n_tasks: int = 4, seed: int = 0) -> dict[str, Any]:
    """Roll out one episode per (task, latent) pair; trajectories, returns and successes."""
    tasks = TaskSet.from_env(ENV_ID, n_train=n_tasks, n_test=0, seed=seed).train
    venv = make_meta_vec_env(
        ENV_ID,
        n_tasks=n_tasks,
        envs_per_task=n_latents,
        seed=seed,
        tasks=tasks,
        latent_dim=LATENT_DIM,
        env_kwargs={"reward_type": "sparse", "max_episode_steps": HORIZON},
    )
    latents = np.random.default_rng(seed).standard_normal((n_latents, LATENT_DIM))
    # env i runs task i // n_latents with latent i % n_latents, forced for this episode
    venv.set_options([{"latent": latents[i % n_latents]} for i in range(venv.num_envs)])
    obs_dim = venv.observation_space.shape[0] - LATENT_DIM
    policy = RandomLatentPolicy(obs_dim, LATENT_DIM, venv.action_space.shape[0], seed=seed)
    obs = venv.reset()
    positions = [obs[:, :2].copy()]
    returns = np.zeros(venv.num_envs)
    for _ in range(HORIZON):
        obs, rewards, dones, infos = venv.step(policy(obs))
        returns += rewards
        ends = np.array(
            [
                info["terminal_observation"] if done else o
                for o, done, info in zip(obs, dones, infos, strict=True)
            ]
        )
        positions.append(ends[:, :2].copy())
    assert dones.all(), "every episode ends at the horizon"
    success = np.array([info["is_success"] for info in infos], dtype=float)
    venv.close()
    shape = (n_tasks, n_latents)
    return {
        "latents": latents,
        "goals": np.array([task["goal"] for task in tasks]),
        "paths": np.stack(positions, axis=1).reshape(*shape, HORIZON + 1, 2),
        "returns": returns.reshape(shape),
        "success": success.reshape(shape),
    }


def format_table(result: dict[str, Any]) -> str:
    """One row per latent: z, final position, mean sparse return and success rate over the tasks."""
    lines = [
        f"{'latent':>6}  {'z':>16}  {'final position':>16}  {'mean return':>11}  {'success':>8}",
    ]
    for j, z in enumerate(result["latents"]):
        final = result["paths"][:, j, -1].mean(axis=0)
        lines.append(
            f"{j:>6}  ({z[0]:+6.2f}, {z[1]:+6.2f})  ({final[0]:+6.2f}, {final[1]:+6.2f})  "
            f"{result['returns'][:, j].mean():>11.2f}  {result['success'][:, j].mean():>8.0%}"
        )
    best = result["success"].max(axis=1)
    lines.append(
        f"tasks solved by at least one latent: {int(best.sum())}/{len(best)}; "
        f"by a latent on average: {result['success'].mean():.0%}"
    )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str) -> None:
    """Trajectories per task, one colour per latent, goals and goal radius drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_tasks, n_latents = result["returns"].shape
    fig, axes = plt.subplots(1, n_tasks, figsize=(3.2 * n_tasks, 3.4), squeeze=False)
    colours = plt.get_cmap("tab10")(np.arange(n_latents) % 10)
    angle = np.linspace(0.0, np.pi, 100)
    for k, ax in enumerate(axes[0]):
        ax.plot(np.cos(angle), np.sin(angle), color="0.8", lw=1)
        goal = result["goals"][k]
        ax.add_patch(plt.Circle(goal, 0.2, color="tab:green", alpha=0.3))
        ax.plot(*goal, marker="*", color="tab:green", ms=12)
        for j in range(n_latents):
            xy = result["paths"][k, j]
            ax.plot(xy[:, 0], xy[:, 1], color=colours[j], lw=1.5, label=f"z{j}")
        ax.plot(0, 0, "ko", ms=4)
        ax.set_title(f"task {k}: {result['success'][k].mean():.0%} of latents succeed", fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("PointNav2D: a random latent-conditioned policy, one episode per latent", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output-dir", default="demo_output", help="folder for the plot")
    parser.add_argument("--n-latents", type=int, default=6, help="latents drawn from the prior N(0, I)")
    parser.add_argument("--n-tasks", type=int, default=4, help="goals drawn from the task distribution")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("n_latents", "n_tasks"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")

    print(__doc__.split("\n\n")[1].replace("\n", " "))
    print(f"\n{ENV_ID}, sparse reward, horizon {HORIZON}, {args.n_tasks} tasks x {args.n_latents} latents\n")
    result = run_demo(args.n_latents, args.n_tasks, args.seed)
    print(format_table(result))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("\nmatplotlib is not installed, so no plot: pip install 'maesn-sb3[plot]'")
        return 0
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "point_nav_latents.png")
    plot(result, path)
    print(f"\nplot written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
