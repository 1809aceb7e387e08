"""Can every task of the MuJoCo families be solved within the horizon? Prints success rates.

- WheeledNav and BlockPush: the hand-written controllers of :mod:`maesn_sb3.envs.scripted` (they
  are given the task) run once on each of the 100 held-out tasks (``TaskSet.from_env(..., seed)``).
- AntGoal: SB3 PPO is trained for a fixed budget on the dense reward of the 100 training tasks,
  with the goal appended to its observation (a goal-conditioned policy: the point is to show
  that the goals can be reached by the body, not to solve the meta-RL problem), then evaluated
  deterministically once on each of the 100 held-out tasks. A zero-action policy is evaluated
  beside it as the floor.

Usage::

    python benchmarks/reachability.py                        # scripted checks only (seconds)
    python benchmarks/reachability.py --ant --ant-timesteps 1000000 --n-envs 8
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import gymnasium as gym
import numpy as np

import maesn_sb3
from maesn_sb3.envs.scripted import BlockPushController, WheeledNavController

SCRIPTED = {
    "maesn_sb3/WheeledNav-v0": WheeledNavController,
    "maesn_sb3/BlockPush-v0": BlockPushController,
}


def scripted_success(env_id: str, tasks: list[Any], seed: int = 0) -> dict[str, float]:
    """Run the family's scripted controller once per task; success rate and steps to success."""
    env = gym.make(env_id)
    controller_cls = SCRIPTED[env_id]
    successes, first_hits = [], []
    for k, task in enumerate(tasks):
        env.unwrapped.set_task(task)
        obs, _ = env.reset(seed=seed + k)
        controller = controller_cls(task)
        hit = None
        for t in range(1, env.spec.max_episode_steps + 1):
            obs, _, terminated, truncated, info = env.step(controller(obs))
            if hit is None and info["is_success"]:
                hit = t
            if terminated or truncated:
                break
        successes.append(bool(info["is_success"]))
        if hit is not None:
            first_hits.append(hit)
    env.close()
    return {
        "success_rate": float(np.mean(successes)),
        "median_steps_to_success": float(np.median(first_hits)) if first_hits else float("nan"),
        "max_steps_to_success": float(np.max(first_hits)) if first_hits else float("nan"),
        "horizon": float(env.spec.max_episode_steps),
    }


class GoalInObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Appends the task's goal to the observation and draws a task from ``tasks`` at every reset.

    For the reachability check only: the MAESN agent never sees the goal.

    Example:
        >>> env = GoalInObservation(gym.make("maesn_sb3/AntGoal-v0"), tasks=[{"goal": np.array([0.0, 2.0])}])
    """

    def __init__(self, env: gym.Env, tasks: list[dict[str, Any]]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, tasks=tasks)
        gym.ObservationWrapper.__init__(self, env)
        if not tasks:
            raise ValueError("tasks must hold at least one task, got an empty list")
        self.tasks = list(tasks)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (space.shape[0] + 2,), np.float32)
        self._goal = np.zeros(2, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None:
            self.env.reset(seed=seed)  # seeds np_random before the task draw
        task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        self.env.unwrapped.set_task(task)
        self._goal = np.asarray(task["goal"], dtype=np.float32)
        return super().reset(options=options)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.concatenate([observation, self._goal]).astype(np.float32)


def ant_ppo(
    timesteps: int, n_envs: int, seed: int, tasks: maesn_sb3.TaskSet, subprocess: bool = False
) -> dict[str, Any]:
    """Train goal-conditioned PPO on AntGoal's dense reward; success on the held-out goals."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize

    torch.set_num_threads(1)  # a small MLP: threads only contend with the env stepping
    env_id = "maesn_sb3/AntGoal-v0"
    venv = make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        wrapper_class=GoalInObservation,
        wrapper_kwargs={"tasks": tasks.train},
        vec_env_cls=SubprocVecEnv if subprocess else None,
        vec_env_kwargs={"start_method": "forkserver"} if subprocess else None,
    )
    venv = VecNormalize(venv, gamma=0.99)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=512,
        batch_size=256,
        n_epochs=10,
        learning_rate=3e-4,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range=0.2,
        ent_coef=0.0,
        policy_kwargs={"net_arch": [128, 128], "log_std_init": -0.5},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    train_s = time.perf_counter() - start
    venv.training = False

    def evaluate(policy: str) -> dict[str, float]:
        # all held-out tasks side by side, one batched policy call per step
        envs = [gym.make(env_id) for _ in tasks.test]
        obs = np.empty((len(envs), envs[0].observation_space.shape[0]), dtype=np.float32)
        goals = np.array([task["goal"] for task in tasks.test], dtype=np.float32)
        closest, final = np.empty(len(envs)), np.empty(len(envs))
        success, running = np.zeros(len(envs), dtype=bool), np.ones(len(envs), dtype=bool)
        for k, (env, task) in enumerate(zip(envs, tasks.test, strict=True)):
            env.unwrapped.set_task(task)
            obs[k], info = env.reset(seed=seed + 10_000 + k)
            closest[k] = final[k] = info["distance"]
        for _ in range(envs[0].spec.max_episode_steps):
            if policy == "ppo":
                full = venv.normalize_obs(np.concatenate([obs, goals], axis=1))
                actions, _ = model.predict(full, deterministic=True)
            else:
                actions = np.zeros((len(envs), *envs[0].action_space.shape), dtype=np.float32)
            for k in np.flatnonzero(running):
                obs[k], _, terminated, truncated, info = envs[k].step(actions[k])
                final[k] = info["distance"]
                closest[k] = min(closest[k], final[k])
                success[k] = info["is_success"]
                running[k] = not (terminated or truncated)
        return {
            "success_rate": float(np.mean(success)),
            "mean_final_distance": float(np.mean(final)),
            "mean_closest_distance": float(np.mean(closest)),
        }

    return {
        "timesteps": timesteps,
        "n_envs": n_envs,
        "train_seconds": round(train_s, 1),
        "ppo": evaluate("ppo"),
        "zero_action": evaluate("zero"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the task split and of PPO")
    parser.add_argument("--ant", action="store_true", help="also train and evaluate PPO on AntGoal")
    parser.add_argument("--ant-timesteps", type=int, default=1_000_000)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--subproc", action="store_true", help="run the PPO envs in SubprocVecEnv workers")
    parser.add_argument("--output", default="benchmarks/results", help="folder for reachability.json")
    args = parser.parse_args(argv)
    if args.ant_timesteps < 1 or args.n_envs < 1:
        parser.error(f"--ant-timesteps and --n-envs must be >= 1, got {args.ant_timesteps}, {args.n_envs}")

    results: dict[str, Any] = {}
    print(
        f"{'family':<36} {'held-out tasks':>14} {'success':>8} {'median steps':>13} "
        f"{'max steps':>10} {'horizon':>8}"
    )
    for env_id in SCRIPTED:
        tasks = maesn_sb3.TaskSet.from_env(env_id, n_train=100, n_test=100, seed=args.seed)
        res = scripted_success(env_id, tasks.test, seed=args.seed)
        results[env_id] = res
        print(
            f"{env_id + ' (scripted)':<36} {len(tasks.test):>14} {res['success_rate']:>8.2f} "
            f"{res['median_steps_to_success']:>13.0f} {res['max_steps_to_success']:>10.0f} "
            f"{res['horizon']:>8.0f}"
        )
    if args.ant:
        tasks = maesn_sb3.TaskSet.from_env("maesn_sb3/AntGoal-v0", n_train=100, n_test=100, seed=args.seed)
        res = ant_ppo(args.ant_timesteps, args.n_envs, args.seed, tasks, subprocess=args.subproc)
        results["maesn_sb3/AntGoal-v0"] = res
        for name in ("ppo", "zero_action"):
            r = res[name]
            print(
                f"AntGoal ({name}, {res['timesteps']} PPO steps, {res['train_seconds']} s): success "
                f"{r['success_rate']:.2f} on 100 held-out goals, mean final distance "
                f"{r['mean_final_distance']:.2f}, mean closest {r['mean_closest_distance']:.2f} (radius 0.8)"
            )
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "reachability.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
