"""Meta-training speed: MAESN vs SB3 PPO on the same MetaTaskVecEnv, measured side by side.

Both algorithms train on the same env layout (``--n-tasks`` x ``--episodes`` PointNav2D envs); the runs
alternate (MAESN, PPO, MAESN, PPO, ...) so both see the same machine load, and the median env-steps/s
of each is reported, with MAESN's split between sampling and updates.

    python benchmarks/maesn_speed.py
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure

from maesn_sb3 import MAESN, make_meta_vec_env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="maesn_sb3/PointNav2D-v0")
    parser.add_argument("--n-tasks", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=20, help="envs per task")
    parser.add_argument("--timesteps", type=int, default=400_000, help="env steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        th.set_num_threads(args.threads)

    def make_env():
        return make_meta_vec_env(
            args.env, n_tasks=args.n_tasks, envs_per_task=args.episodes, latent_dim=2, seed=0
        )

    horizon = make_env().get_attr("spec", [0])[0].max_episode_steps
    rates: dict[str, list[float]] = {"MAESN": [], "PPO": []}
    split = {"sampling": 0.0, "update": 0.0}
    for _ in range(args.repeats):
        model = MAESN("MlpPolicy", make_env(), seed=0)
        with tempfile.TemporaryDirectory() as folder:
            model.set_logger(configure(folder, ["csv"]))
            start = time.perf_counter()
            model.learn(args.timesteps)
            elapsed = time.perf_counter() - start
            rows = list(csv.DictReader((Path(folder) / "progress.csv").open()))
        rates["MAESN"].append(model.num_timesteps / elapsed)
        split["sampling"] += sum(float(row["time/sampling_s"]) for row in rows)
        split["update"] += sum(float(row["time/update_s"]) for row in rows)

        ppo = PPO(
            "MlpPolicy",
            make_env(),
            n_steps=horizon,
            seed=0,
            policy_kwargs={"net_arch": [100, 100], "activation_fn": th.nn.ReLU},
        )
        start = time.perf_counter()
        ppo.learn(args.timesteps)
        elapsed = time.perf_counter() - start
        rates["PPO"].append(ppo.num_timesteps / elapsed)

    maesn, ppo_rate = statistics.median(rates["MAESN"]), statistics.median(rates["PPO"])
    n_envs = args.n_tasks * args.episodes
    print(
        f"meta-training speed on {args.env}, {n_envs} envs, {args.timesteps} steps per run, "
        f"{args.repeats} interleaved runs each"
    )
    print(f"{'algorithm':<10} {'median steps/s':>15}   runs")
    for name, values in rates.items():
        print(f"{name:<10} {statistics.median(values):>15.0f}   {', '.join(f'{v:.0f}' for v in values)}")
    print(f"MAESN / PPO = {maesn / ppo_rate:.2f} (target >= 1.0)")
    total = split["sampling"] + split["update"]
    print(
        f"MAESN time split: sampling {100 * split['sampling'] / total:.0f}%, "
        f"updates {100 * split['update'] / total:.0f}%"
    )


if __name__ == "__main__":
    main()
