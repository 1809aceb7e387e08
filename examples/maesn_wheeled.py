"""MAESN on the MuJoCo wheeled car (``maesn_sb3/WheeledNav-v0``), the paper's wheeled locomotion family.

Goals lie on a semicircle of radius 2; the car starts at the origin and never sees its goal. MAESN
meta-trains with the dense reward, then adapts only its latent to held-out goals with the sparse
reward (the paper's setting; the paper meta-trains for hundreds of iterations of 20 tasks x 50
episodes, far more than this example's default). Writes the exploration plot and the adaptation curve.

Run: ``python examples/maesn_wheeled.py [--timesteps 400000] [--output-dir wheeled_output]`` (a few
minutes on one core; add ``--vec-env subproc`` to spread the MuJoCo envs over processes).
"""

from __future__ import annotations

import argparse
import os

import torch as th
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from maesn_sb3 import MAESN, TaskSet, make_meta_vec_env
from maesn_sb3.cli import HelpFormatter

ENV_ID = "maesn_sb3/WheeledNav-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--timesteps", type=int, default=400_000, help="meta-training env steps")
    parser.add_argument("--tasks-per-iteration", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task and phase / iteration")
    parser.add_argument("--test-tasks", type=int, default=5)
    parser.add_argument("--adapt-iterations", type=int, default=3, help="latent updates per held-out task")
    parser.add_argument("--vec-env", choices=("dummy", "subproc"), default="dummy")
    parser.add_argument("--output-dir", default="wheeled_output")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)
    vec_env_cls = SubprocVecEnv if args.vec_env == "subproc" else DummyVecEnv

    tasks = TaskSet.from_env(ENV_ID, n_train=100, n_test=args.test_tasks, seed=args.seed)
    env = make_meta_vec_env(
        ENV_ID, n_tasks=args.tasks_per_iteration, envs_per_task=args.episodes, latent_dim=2, seed=args.seed,
        tasks=tasks, vec_env_cls=vec_env_cls,
    )  # fmt: skip
    model = MAESN("MlpPolicy", env, task_set=tasks, seed=args.seed, natural_gradient=True)
    model.learn(args.timesteps, progress_bar=True)
    env.close()

    test_env = make_meta_vec_env(
        ENV_ID, n_tasks=len(tasks.test), envs_per_task=args.episodes, latent_dim=2, seed=args.seed + 1,
        tasks=tasks.test, env_kwargs={"reward_type": "sparse"}, vec_env_cls=vec_env_cls,
    )  # fmt: skip
    result = model.adapt(test_env, n_iterations=args.adapt_iterations)
    test_env.close()
    print("iteration  env steps  return (sparse)  success")
    for k in range(len(result.env_steps)):
        steps, ret, success = result.env_steps[k], result.mean_return[k], result.mean_success[k]
        print(f"{k:>9}  {steps:>9}  {ret:>15.1f}  {success:>7.0%}")

    os.makedirs(args.output_dir, exist_ok=True)
    model.save(os.path.join(args.output_dir, "maesn_wheeled"))
    try:
        from maesn_sb3.plotting import plot_adaptation_curve, plot_exploration
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'maesn-sb3[plot]')")
        return
    fig = plot_exploration(model, ENV_ID, task=tasks.test[0], n_latents=8, adaptation=result, goal_radius=0.8,
                           seed=args.seed)  # fmt: skip
    fig.savefig(os.path.join(args.output_dir, "exploration.png"), dpi=100)
    plot_adaptation_curve(result).savefig(os.path.join(args.output_dir, "adaptation.png"), dpi=100)
    print(f"model, exploration.png and adaptation.png written to {args.output_dir}/")


if __name__ == "__main__":
    main()
