"""Peak resident memory of one MAESN meta-iteration, for growing batches.

Uses the paper's batch (20 tasks x 50 episodes x 200 steps per phase) on an env with AntGoal-sized
observations and actions (a synthetic numpy task env, so only the algorithm's memory is measured),
and half and a quarter of it, each in a fresh process, to show the growth is linear.

    python benchmarks/maesn_memory.py
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import gymnasium as gym
import numpy as np

OBS_DIM, ACTION_DIM, HORIZON = 113, 8, 200


class AntSizedTaskEnv(gym.Env):
    """A cheap random-walk task env with the ant's observation and action sizes."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self._goal = np.zeros(2)
        self._state = np.zeros(OBS_DIM, dtype=np.float32)

    def sample_tasks(self, n: int) -> list[dict[str, np.ndarray]]:
        return [{"goal": g} for g in self.np_random.normal(size=(n, 2))]

    def set_task(self, task: dict[str, np.ndarray]) -> None:
        self._goal = np.asarray(task["goal"])

    def get_task(self) -> dict[str, np.ndarray]:
        return {"goal": self._goal}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._state[:] = 0.0
        return self._state.copy(), {}

    def step(self, action):
        self._state[:ACTION_DIM] += 0.01 * np.clip(action, -1, 1)
        reward = -float(np.linalg.norm(self._state[:2] - self._goal))
        return self._state.copy(), reward, False, False, {}


def measure(episodes: int, n_tasks: int) -> dict[str, float]:
    import torch as th

    from maesn_sb3 import MAESN, make_meta_vec_env

    th.set_num_threads(1)
    gym.register("bench/AntSized-v0", entry_point=AntSizedTaskEnv, max_episode_steps=HORIZON)
    env = make_meta_vec_env(
        "bench/AntSized-v0", n_tasks=n_tasks, envs_per_task=episodes, latent_dim=2, seed=0
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # one meta-iteration: two phases and the TRPO update (the outer step of the documented figures)
    MAESN("MlpPolicy", env, seed=0, outer_update="trpo").learn(1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "episodes": episodes,
        "steps_per_phase": n_tasks * episodes * HORIZON,
        "peak_mb": peak,
        "before_mb": before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-tasks", type=int, default=20)
    parser.add_argument("--episodes", type=int, nargs="+", default=[12, 25, 50])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.n_tasks)))
        return
    rows = []
    for episodes in args.episodes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(episodes), "--n-tasks", str(args.n_tasks)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(
        f"MAESN peak resident memory, one meta-iteration, obs {OBS_DIM}, actions {ACTION_DIM}, "
        f"horizon {HORIZON}, {args.n_tasks} tasks"
    )
    header = f"{'episodes/task':>13} {'steps/phase':>12} {'after setup MB':>15} {'peak MB':>9}"
    print(f"{header} {'MB per 1k steps':>16}")
    for row in rows:
        growth = (row["peak_mb"] - row["before_mb"]) / (row["steps_per_phase"] / 1000)
        print(
            f"{row['episodes']:>13} {row['steps_per_phase']:>12} {row['before_mb']:>15.0f} "
            f"{row['peak_mb']:>9.0f} {growth:>16.2f}"
        )
    print(f"target: peak < 2048 MB at {args.n_tasks} x 50 x {HORIZON}")


if __name__ == "__main__":
    main()
