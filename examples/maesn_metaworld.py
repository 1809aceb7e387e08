"""MAESN on Meta-World, scored with Meta-World's meta-learning evaluation protocol.

ML1 (one environment, 50 training goals and 50 held-out goals: ``--env reach-v3`` or ``push-v3``) or
ML10 (``--benchmark ML10``: 10 training environments, 5 held-out ones). MAESN meta-trains on the
benchmark's training tasks, then ``maesn_sb3.metaworld.metalearning_evaluation`` gives Meta-World's
test envs the held-out tasks, lets MAESN adapt its latent for a few episodes per env and counts, per
env, the episodes that reach success (beside Meta-World 3.1's own count, which inflates ML1). Needs
``pip install "maesn-sb3[metaworld]"`` (MuJoCo 3.3).

Run: ``python examples/maesn_metaworld.py [--benchmark ML1 --env push-v3] [--timesteps 200000]``
(the default takes about half an hour on one core; published Meta-World results use 10^7 to 10^8
steps).
"""

from __future__ import annotations

import argparse

import torch as th

from maesn_sb3 import MAESN
from maesn_sb3.cli import HelpFormatter
from maesn_sb3.metaworld import (
    make_metaworld_env,
    metalearning_evaluation,
    metaworld_agent,
    metaworld_task_set,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--benchmark", default="ML1", choices=["ML1", "ML10", "ML45"])
    parser.add_argument("--env", default="reach-v3", help="the environment of ML1")
    parser.add_argument("--timesteps", type=int, default=200_000, help="meta-training env steps")
    parser.add_argument("--tasks-per-iteration", type=int, default=10)
    parser.add_argument("--envs-per-task", type=int, default=2, help="episodes per task and phase")
    parser.add_argument("--max-episode-steps", type=int, default=500, help="Meta-World's horizon is 500")
    parser.add_argument("--meta-batch-size", type=int, default=10, help="Meta-World's test envs")
    parser.add_argument("--num-evals", type=int, default=1, help="evaluation rounds (Meta-World's: 10)")
    parser.add_argument("--adaptation-episodes", type=int, default=2, help="per test env (Meta-World's: 10)")
    parser.add_argument("--evaluation-episodes", type=int, default=3, help="per test env")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)
    env_name = args.env if args.benchmark == "ML1" else None

    # the benchmark's own split: Meta-World's train tasks to meta-train on, its test tasks held out
    tasks = metaworld_task_set(args.benchmark, env_name)
    env = make_metaworld_env(
        args.benchmark,
        env_name,
        n_tasks=args.tasks_per_iteration,
        envs_per_task=args.envs_per_task,
        seed=args.seed,
        tasks=tasks,
        latent_dim=2,
        max_episode_steps=args.max_episode_steps,
    )
    model = MAESN("MlpPolicy", env, task_set=tasks, seed=args.seed)
    model.learn(args.timesteps)
    env.close()
    print(f"meta-trained on {len(tasks.train)} training tasks for {model.num_timesteps:,} env steps")

    score = metalearning_evaluation(
        metaworld_agent(model, seed=args.seed),
        args.benchmark,
        env_name,
        meta_batch_size=args.meta_batch_size,
        num_evals=args.num_evals,
        adaptation_episodes=args.adaptation_episodes,
        evaluation_episodes=args.evaluation_episodes,
        max_episode_steps=args.max_episode_steps,
    )
    print(f"Meta-World meta-test success: {score.success_rate:.1%} (mean return {score.mean_return:.1f})")
    by_name = score.success_rate_by_name
    print(f"  Meta-World 3.1's own count of the same episodes (per env name): {by_name:.1%}")
    for name, rate in sorted(score.success_per_task.items()):
        print(f"  {name}: {rate:.1%}")


if __name__ == "__main__":
    main()
