"""Two meta-iterations of MAESN and MAML on PointNav2D (dummy and native, with the TRPO and the proximal
outer step): the sum and the sum of squares of every end parameter tensor.

``python tests/_reference_run.py OUT.json [trpo|ppo ...]`` writes them, with whatever ``maesn_sb3`` is
first on the path. ``tests/test_architecture.py`` runs it with the code of commit 37fe46a (before the
VecEnv/cli/skills refactor of issue 27; the TRPO runs) and 365ce92 (the proximal step's runs, when it
was the default, before the merge), taken from git, and with the current code, on the same machine,
and asks for the same floats: stored figures do not serve, as runs on other CPUs part ways after a
few steps (another machine's sums differed by up to 15 %), while one machine's runs of both commits
and of main are bit-identical.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch as th

from maesn_sb3 import MAESN, MAML, make_meta_vec_env

SMALL = {"n_tasks": 2, "envs_per_task": 3, "env_kwargs": {"max_episode_steps": 8}, "seed": 5}
ENV_ID = "maesn_sb3/PointNav2D-v0"


def run(algo: type, vectorization: str, outer_update: str) -> dict[str, int | list[float]]:
    """The step count and each parameter tensor's ``[sum, sum of squares]`` after 2 meta-iterations."""
    th.set_num_threads(1)
    latent = {"latent_dim": 2} if algo is not MAML else {}
    env = make_meta_vec_env(ENV_ID, vectorization=vectorization, **SMALL, **latent)
    steps_per_iteration = 2 * SMALL["n_tasks"] * SMALL["envs_per_task"] * 8
    model = algo("MlpPolicy", env, n_train_tasks=4, seed=5, outer_update=outer_update)
    model.learn(2 * steps_per_iteration)
    sums: dict[str, int | list[float]] = {"num_timesteps": model.num_timesteps}
    for part, state in model.get_parameters().items():
        for name, value in state.items():
            if isinstance(value, th.Tensor):
                data = value.detach().cpu().numpy().astype(np.float64)
                sums[f"{part}.{name}"] = [float(data.sum()), float((data**2).sum())]
    env.close()
    return sums


def run_all(outer_updates: tuple[str, ...] = ("trpo", "ppo")) -> dict[str, dict[str, int | list[float]]]:
    return {
        f"{algo.__name__}-{vec}{'' if outer == 'trpo' else '-ppo'}": run(algo, vec, outer)
        for algo in (MAESN, MAML)
        for vec in ("dummy", "native")
        for outer in outer_updates
    }


if __name__ == "__main__":
    with open(sys.argv[1], "w") as file:
        json.dump(run_all(tuple(sys.argv[2:]) or ("trpo", "ppo")), file, indent=1, sort_keys=True)
