"""Meta-train MAESN with the dense reward, then adapt on held-out tasks with the sparse reward.

Prints the meta-training time and, per adaptation iteration, the held-out tasks' mean return and
success rate (exploration episodes, and deterministic episodes with the mean latent).

    python benchmarks/maesn_learning.py                       # PointNav2D, the issue's target
    python benchmarks/maesn_learning.py --env maesn_sb3/WheeledNav-v0 --timesteps 2000000
"""

from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3.common.logger import configure

from maesn_sb3 import MAESN, LSBaseline, TaskSet, make_meta_vec_env
from maesn_sb3.common.outer import OUTER_UPDATES


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="maesn_sb3/PointNav2D-v0")
    parser.add_argument("--algo", choices=["maesn", "lsbaseline"], default="maesn")
    parser.add_argument("--timesteps", type=int, default=4_000_000, help="meta-training env steps")
    parser.add_argument("--n-tasks", type=int, default=20, help="tasks per meta-iteration")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and phase")
    parser.add_argument("--n-train-tasks", type=int, default=100)
    parser.add_argument("--test-tasks", type=int, default=20)
    parser.add_argument("--adapt-iterations", type=int, default=5)
    parser.add_argument("--adapt-episodes", type=int, default=20)
    parser.add_argument("--inner-lr", type=float, default=1.0)
    parser.add_argument("--kl-coef", type=float, default=0.1)
    parser.add_argument(
        "--outer-update",
        choices=OUTER_UPDATES,
        default=inspect.signature(MAESN).parameters["outer_update"].default,
        help="the outer step (default: MAESN's)",
    )
    parser.add_argument("--max-kl", type=float, default=0.01, help="TRPO's trust region")
    parser.add_argument(
        "--fisher-subsample", type=float, default=1.0, help="fraction of steps in the Fisher-vector products"
    )
    parser.add_argument(
        "--adapt-gradient",
        choices=("model", "natural", "vanilla"),
        default="model",
        help="the adaptation's latent step: the model's own rule (default) or an override",
    )
    parser.add_argument(
        "--step-scale",
        type=float,
        default=inspect.signature(MAESN.adapt).parameters["step_scale"].default,
        help="adapt's step_scale (1: the reference's)",
    )
    parser.add_argument("--vectorization", choices=("dummy", "native"), default="dummy", help="env backend")
    parser.add_argument(
        "--ortho-init", action="store_true", help="SB3's orthogonal init instead of PyTorch's"
    )
    parser.add_argument(
        "--natural-gradient",
        action="store_true",
        help="natural-gradient latent steps in meta-training and adaptation (default: vanilla)",
    )
    parser.add_argument(
        "--latent-gradient",
        choices=("reparameterization", "score_function"),
        default="reparameterization",
        help="the outer step's latent gradient",
    )
    parser.add_argument("--tag", default="", help="suffix of the result files")
    parser.add_argument("--inner-reward-key", default=None, help="e.g. sparse_reward: inner step on it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        th.set_num_threads(args.threads)

    tasks = TaskSet.from_env(args.env, n_train=args.n_train_tasks, n_test=args.test_tasks, seed=args.seed)
    env = make_meta_vec_env(
        args.env,
        n_tasks=args.n_tasks,
        envs_per_task=args.episodes,
        latent_dim=2,
        seed=args.seed,
        tasks=tasks,
        env_kwargs={"reward_type": "dense"},
        vectorization=args.vectorization,
    )
    algo_kwargs = {
        "outer_update": args.outer_update,
        "kl_coef": args.kl_coef,
        "max_kl": args.max_kl,
        "fisher_subsample": args.fisher_subsample,
        "policy_kwargs": {"ortho_init": args.ortho_init},
        "natural_gradient": args.natural_gradient,
        "latent_gradient": args.latent_gradient,
    }
    if args.algo == "maesn":
        algo_kwargs.update(inner_lr=args.inner_lr, inner_reward_key=args.inner_reward_key)
    algo = MAESN if args.algo == "maesn" else LSBaseline
    model = algo("MlpPolicy", env, task_set=tasks, seed=args.seed, verbose=args.verbose, **algo_kwargs)
    name = f"{args.algo}_{args.env.split('/')[-1]}_kl{args.kl_coef}_seed{args.seed}{args.tag}"
    model.set_logger(configure(str(args.output / name), ["csv"] + (["stdout"] if args.verbose else [])))
    start = time.perf_counter()
    model.learn(total_timesteps=args.timesteps)
    train_time = time.perf_counter() - start
    progress = np.genfromtxt(args.output / name / "progress.csv", delimiter=",", names=True)
    kl_key = "traintrpo_kl" if args.outer_update == "trpo" else "trainapprox_kl"
    share, step_kl = np.nanmean(progress["trainlatent_step_share"]), np.nanmean(progress[kl_key])
    print(f"mean over meta-training: latent share of the outer step {share:.3f}, step KL {step_kl:.4f}")
    print(
        f"{args.algo} meta-training on {args.env}: {model.num_timesteps} env steps in {train_time:.0f} s "
        f"({model.num_timesteps / train_time:.0f} steps/s)"
    )
    print(
        "learned step sizes: mean",
        model.latents.step_size_mean.detach().numpy().round(3),
        "log-std",
        model.latents.step_size_log_std.detach().numpy().round(3),
    )

    test_env = make_meta_vec_env(
        args.env,
        n_tasks=len(tasks.test),
        envs_per_task=args.adapt_episodes,
        latent_dim=2,
        seed=args.seed + 1,
        tasks=tasks.test,
        env_kwargs={"reward_type": "sparse"},
    )
    natural = {"model": None, "natural": True, "vanilla": False}[args.adapt_gradient]
    result = model.adapt(
        test_env,
        n_iterations=args.adapt_iterations,
        seed=args.seed,
        natural_gradient=natural,
        step_scale=args.step_scale,
    )
    print(
        f"\nadaptation on {len(tasks.test)} held-out tasks, sparse reward, "
        f"{args.adapt_episodes} episodes per iteration"
    )
    print(f"{'iter':>4} {'env steps':>10} {'return':>8} {'success':>8} {'det. success':>13}")
    for k in range(args.adapt_iterations + 1):
        print(
            f"{k:>4} {result.env_steps[k]:>10} {result.mean_return[k]:>8.2f} {result.mean_success[k]:>8.2f} "
            f"{result.eval_success[k].mean():>13.2f}"
        )
    np.savez(
        args.output / f"{name}.npz",
        returns=result.returns,
        success=result.success,
        eval_success=result.eval_success,
        env_steps=result.env_steps,
        train_time=train_time,
    )
    model.save(args.output / f"{name}.zip")


if __name__ == "__main__":
    main()
