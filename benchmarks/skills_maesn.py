"""MAESN vs MAESN over DIAYN skills vs MAESN with a mixed (task + skill) reward, on held-out sparse goals.

All three meta-train on PointNav2D's dense reward for the same number of env steps (``--timesteps``;
the hierarchical variant takes ``timesteps / skill_steps`` skill actions, and its DIAYN pre-training
costs ``--diayn-timesteps`` more env steps, reported apart), with the same training and held-out
goals, then adapt only their latent on the held-out goals with the sparse reward:
``--adapt-episodes`` episodes per goal and iteration, learned step sizes halved every iteration
(natural gradient, as ``make demo``). The table gives the success rate of each iteration's
exploration episodes at equal env steps (counted by the sub-envs' Monitors, so the hierarchical
variant's low-level steps count).

- ``maesn``: MAESN, policy on (x, y, latent), Gaussian actions.
- ``skills``: DIAYN pre-training of a ``--skills`` skill SAC policy (skill reward only), then MAESN
  meta-trains a categorical high level over the frozen skills (``SkillActionVecEnv``, one skill for
  ``--skill-steps`` env steps), conditioned on the latent.
- ``mixed``: MAESN whose policy also sees a per-episode skill (``SkillWrapper``, ``--mixed-skills``)
  and is rewarded ``r_dense + intrinsic_coef * (log q(z | x, y) - log p(z))`` (``VecSkillReward``);
  adaptation uses the sparse task reward alone.

Usage::

    python benchmarks/skills_maesn.py                         # 3 seeds x 3 variants, ~15 min on one core
    python benchmarks/skills_maesn.py --timesteps 200000 --variants maesn skills

Measured on 2026-11-22, before the gradient fixes of the CHANGELOG, with the TRPO outer step and the
reference's meta-test steps (now ``--outer-update trpo --step-scale 1``; the defaults are MAESN's),
on this project's shared 2-core CPU machine (torch 1 thread; defaults: 2M meta-training env
steps, 20 tasks x 20 episodes per phase, 10 DIAYN skills / 10 env steps per skill action, 4 skills and
intrinsic_coef 0.1 for the mixed reward; 20 held-out goals, 20 episodes per goal and iteration;
seeds 0, 1, 2; 13 min in all). Success rate of the exploration episodes, mean (std) over seeds:

    iteration  env steps           maesn          skills           mixed
            0      20000   0.247 (0.044)   0.287 (0.102)   0.228 (0.022)
            1      40000   0.429 (0.081)   0.383 (0.149)   0.345 (0.090)
            2      60000   0.542 (0.055)   0.462 (0.200)   0.424 (0.132)
            3      80000   0.616 (0.071)   0.478 (0.201)   0.445 (0.145)
            4     100000   0.627 (0.071)   0.492 (0.212)   0.479 (0.148)
            5     120000   0.628 (0.056)   0.514 (0.220)   0.453 (0.158)

Per seed, final iteration: maesn 0.60 / 0.71 / 0.58, skills 0.21 / 0.62 / 0.71, mixed 0.32 / 0.68 / 0.36.

- On PointNav2D plain MAESN adapts best on average and most reliably. A likely reason: its Gaussian actions
  are already the right primitive for a point mass, so skills add no control the task lacks.
- MAESN over skills explores best before adaptation (iteration 0: 0.29 vs 0.25, with the highest
  seed at 0.37) and beats MAESN on seed 2 (0.71 vs 0.58), but it varies the most between seeds: on seed 0
  (DIAYN accuracy 0.94, against 0.98 for seeds 1 and 2) it stays near 0.2. A likely cause: ten 10-step
  skills, pre-trained from the origin only, are too coarse to land inside the 0.2 goal radius reliably.
  Its meta-training is ~3x faster in wall-clock (26-44 s vs 75-123 s for 2M env steps: the batched
  low level runs once per env step for all 400 sub-envs, the high level once per 10). Its DIAYN
  pre-training costs 30k more env steps.
  Single-seed probes (seed 0, ``--seeds 0 --variants skills``): 4x the meta-training
  (``--timesteps 8000000``, 114 s) ends at 0.28, and 5-step skills (``--skill-steps 5``) at 0.26,
  against 0.21 with the defaults. Both help a little; neither closes the gap to MAESN (0.60).
- The mixed reward does not help here: it is below MAESN at every iteration on average. Probes on seed 0
  (``--seeds 0 --variants mixed --intrinsic-coef c``): c = 0.02 / 0.1 / 0.5 ends at 0.40 / 0.32 / 0.15,
  against MAESN's 0.60. The skill reward competes with the task reward, and 0.5 clearly hurts.
  The skill reward alone, though, does make the skills distinguishable through MAESN (see the learning
  test in tests/test_skills_maesn.py: discriminator accuracy ~0.3 -> ~0.9 within 56k env steps).
- Where skills should help is where low-level control is hard (AntGoal, WheeledNav). That is not
  measured here: DIAYN on WheeledNav reaches 0.84 accuracy in 200k steps, but its skills stay within
  ~0.7 of the start while the goals lie at 2 (benchmarks/diayn.py).
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from maesn_sb3 import MAESN, MetaTaskVecEnv, TaskSet, make_meta_vec_env
from maesn_sb3.benchmark.skills import EnvStepCounter, mixed_discriminator, skill_meta_env, train_skills
from maesn_sb3.common.outer import OUTER_UPDATES
from maesn_sb3.skills import SkillRewardCallback

ENV_ID = "maesn_sb3/PointNav2D-v0"
VARIANTS = ("maesn", "skills", "mixed")


def build_env(
    variant: str, tasks: list, envs_per_task: int, reward_type: str, seed: int, ctx: dict[str, Any]
) -> MetaTaskVecEnv:
    if variant == "maesn":
        return make_meta_vec_env(
            ENV_ID, n_tasks=len(tasks), envs_per_task=envs_per_task, seed=seed, tasks=tasks, latent_dim=2,
            env_kwargs={"reward_type": reward_type}, vectorization="dummy",  # Monitors count the env steps
        )  # fmt: skip
    return skill_meta_env(variant, ENV_ID, tasks, envs_per_task, reward_type, seed, ctx)


def run_variant(variant: str, tasks: TaskSet, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "skill_steps": args.skill_steps,
        "mixed_skills": args.mixed_skills,
        "intrinsic_coef": args.intrinsic_coef,
    }
    out: dict[str, Any] = {}
    start = time.perf_counter()
    if variant == "skills":
        ctx["low"], out["diayn_accuracy"] = train_skills(ENV_ID, args.skills, args.diayn_timesteps, seed)
        out["diayn_env_steps"] = args.diayn_timesteps
        out["diayn_seconds"] = round(time.perf_counter() - start, 1)
    if variant == "mixed":
        ctx["disc"] = mixed_discriminator(ENV_ID, args.mixed_skills, seed)
    env = build_env(variant, tasks.train[: args.n_tasks], args.episodes, "dense", seed, ctx)
    model = MAESN(
        "MlpPolicy",
        env,
        task_set=tasks,
        seed=seed,
        natural_gradient=args.natural_gradient,
        outer_update=args.outer_update,
    )
    start = time.perf_counter()
    budget = args.timesteps // args.skill_steps if variant == "skills" else args.timesteps
    model.learn(budget, callback=SkillRewardCallback() if variant == "mixed" else None)
    out["meta_train_seconds"] = round(time.perf_counter() - start, 1)
    out["meta_train_env_steps"] = int(sum(env.env_method("get_total_steps")))
    if variant == "mixed":
        out["discriminator_updates"] = ctx["disc"].n_updates

    test_env = build_env(variant, tasks.test, args.adapt_episodes, "sparse", seed + 1, ctx)
    counter = EnvStepCounter(test_env)
    result = model.adapt(
        test_env,
        n_iterations=args.adapt_iterations,
        seed=seed + 1,
        evaluate=False,
        callback=counter,
        step_scale=args.step_scale,
    )
    out["adapt_env_steps"] = counter.steps
    out["success"] = result.mean_success.round(4).tolist()
    out["return"] = result.mean_return.round(4).tolist()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument(
        "--timesteps", type=int, default=2_000_000, help="meta-training env steps per variant"
    )
    parser.add_argument("--n-tasks", type=int, default=20, help="tasks per meta-iteration")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and phase")
    parser.add_argument("--skills", type=int, default=10, help="DIAYN skills of the hierarchical variant")
    parser.add_argument("--diayn-timesteps", type=int, default=30_000)
    parser.add_argument("--skill-steps", type=int, default=10, help="env steps per skill action")
    parser.add_argument("--mixed-skills", type=int, default=4, help="skills of the mixed-reward variant")
    parser.add_argument("--intrinsic-coef", type=float, default=0.1, help="skill reward weight (mixed)")
    parser.add_argument("--test-tasks", type=int, default=20, help="held-out goals")
    parser.add_argument("--adapt-iterations", type=int, default=5)
    parser.add_argument("--adapt-episodes", type=int, default=20, help="episodes per goal and iteration")
    parser.add_argument(
        "--vanilla-gradient", dest="natural_gradient", action="store_false",
        help="adapt with the vanilla latent gradient (default: natural gradient)",
    )  # fmt: skip
    parser.add_argument(
        "--outer-update",
        choices=OUTER_UPDATES,
        default=inspect.signature(MAESN).parameters["outer_update"].default,
        help="the outer step (default: MAESN's)",
    )
    parser.add_argument(
        "--step-scale",
        type=float,
        default=inspect.signature(MAESN.adapt).parameters["step_scale"].default,
        help="adapt's step_scale (1: the reference's)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one full run per seed")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "skills_maesn.json"
    )
    args = parser.parse_args()
    if 50 % args.skill_steps:
        parser.error(f"--skill-steps must divide the horizon 50 (equal env steps), got {args.skill_steps}")
    th.set_num_threads(1)

    results: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    }
    success: dict[str, list[list[float]]] = {v: [] for v in args.variants}
    reference = None
    for seed in args.seeds:
        tasks = TaskSet.from_env(ENV_ID, n_train=100, n_test=args.test_tasks, seed=seed)
        results[f"seed{seed}"] = runs = {}
        for variant in args.variants:
            runs[variant] = run_variant(variant, tasks, args, seed)
            success[variant].append(runs[variant]["success"])
            summary = {k: v for k, v in runs[variant].items() if k not in ("return", "adapt_env_steps")}
            print(f"seed {seed} {variant}: {json.dumps(summary)}", flush=True)
            if reference is None:
                reference = runs[variant]["adapt_env_steps"]
            if runs[variant]["adapt_env_steps"] != reference:
                raise RuntimeError(
                    f"unequal adaptation env steps: {runs[variant]['adapt_env_steps']} {reference}"
                )

    print(f"\nadaptation to {args.test_tasks} held-out goals, sparse reward, {args.adapt_episodes} episodes "
          f"per goal and iteration: success rate of the exploration episodes, mean (std) over seeds "
          f"{args.seeds}")  # fmt: skip
    print(f"{'iteration':>9} {'env steps':>10}" + "".join(f" {v:>15}" for v in args.variants))
    for k in range(args.adapt_iterations + 1):
        row = "".join(
            f" {np.mean(np.array(success[v])[:, k]):>7.3f} ({np.std(np.array(success[v])[:, k]):.3f})"
            for v in args.variants
        )
        print(f"{k:>9} {reference[k]:>10}{row}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1))
    print(f"\nwritten: {args.output}")


if __name__ == "__main__":
    main()
