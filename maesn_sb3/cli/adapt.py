"""``maesn-sb3 adapt``: adapt a run's model to held-out tasks."""

from __future__ import annotations

import argparse
import time

from maesn_sb3 import runs
from maesn_sb3.cli._common import (
    ADAPT_TASKS,
    CLIError,
    _adapt_estimate,
    _adapt_output,
    _Bar,
    _check_writable,
    _format_adaptation,
    _model_on_tasks,
    _show_progress,
)
from maesn_sb3.runs import (
    ADAPT_FILE,
)
from maesn_sb3.validators import check_float


def cmd_adapt(args: argparse.Namespace) -> int:
    episodes = args.envs_per_task if args.episodes is None else args.episodes
    if episodes % args.envs_per_task:
        raise CLIError(
            f"--episodes must be a multiple of --envs-per-task = {args.envs_per_task}, got {episodes}"
        )
    if args.step_scale is not None:  # before any work; MAESN.adapt checks it the same way
        try:
            check_float("--step-scale", args.step_scale, 0.0, strict=True)
        except ValueError as error:
            raise CLIError(str(error)) from None
    output = _adapt_output(args) or runs.find_run(args.run)[0] / ADAPT_FILE
    _check_writable(output, "--output" if args.output else "the run folder's curve")
    folder, model_path, model, env_id, env_kwargs, tasks, env = _model_on_tasks(
        args, args.envs_per_task, ADAPT_TASKS
    )
    from stable_baselines3.common.callbacks import BaseCallback

    n_episodes = len(tasks) * episodes * (args.iterations + 1)
    print(
        f"adapting {model_path} on {len(tasks)} {args.split} task(s) x {episodes} episodes x "
        f"{args.iterations + 1} iterations (before and after each of {args.iterations} updates): "
        f"{n_episodes:,} episodes{_adapt_estimate(env, n_episodes, runs.training_speed(folder))}",
        flush=True,
    )
    bar = _Bar(args.iterations + 1, "adapting", _show_progress(args))
    start = time.perf_counter()

    class Progress(BaseCallback):
        def _on_step(self) -> bool:
            bar.update()
            if self.locals["iteration"] == 0 and args.iterations > 0:
                first = time.perf_counter() - start
                print(
                    f"first iteration {first:.1f} s: about {first * (args.iterations + 1):.0f} s in all",
                    flush=True,
                )
            return True

    result = model.adapt(
        env,
        n_iterations=args.iterations,
        episodes_per_iteration=args.episodes,
        seed=args.seed,
        natural_gradient=args.natural_gradient,
        callback=Progress(),
        **({} if args.step_scale is None else {"step_scale": args.step_scale}),
    )
    bar.close()
    env.close()
    print(
        f"adaptation of {model_path} to {len(tasks)} {args.split} task(s) of {env_id} "
        f"(reward {env_kwargs.get('reward_type', 'default')}):"
    )
    print(_format_adaptation(result))
    output, csv_path = runs.save_adaptation(result, output)
    print(f"curve saved to {output} and {csv_path}")
    return 0
