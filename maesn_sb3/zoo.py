"""Run MAESN through RL Zoo (``rl-zoo3``'s ``train``).

rl-zoo3 knows SB3's algorithms only; :func:`register` adds ``maesn`` and ``lsbaseline`` to its
``ALGOS`` table (the dict its ``train`` script and ``ExperimentManager`` share). The zoo builds the
env as usual, ``make_vec_env`` with ``n_envs`` monitored envs, wraps each in the hyperparameter
file's ``env_wrapper`` (a :class:`~wrappers.LatentWrapper`) and the VecEnv in ``vec_env_wrapper``
(:func:`meta_tasks`, which lays the envs out as a :class:`~maesn_sb3.MetaTaskVecEnv`); every other
key is a MAESN argument. The package ships such a file, :data:`HYPERPARAMS`.

Run it (``pip install "maesn-sb3[zoo]"``)::

    python -m maesn_sb3.zoo --algo maesn --env maesn_sb3/PointNav2D-v0 -f logs/
    # options as rl_zoo3's train; -conf defaults to maesn_sb3/hyperparams/maesn.yml,
    # --eval-freq to -1

The zoo's periodic evaluation runs the policy with latents from the prior (no adaptation), on an eval
VecEnv that :func:`meta_tasks` must also lay out: pass ``--eval-freq N`` together with
``--n-eval-envs`` a multiple of ``envs_per_task``. Adapt the saved model with
``maesn-sb3 adapt logs/maesn/<env>_1/<env>.zip --env <env id>``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from stable_baselines3.common.vec_env import VecEnv

from maesn_sb3.maesn import MAESN, LSBaseline
from maesn_sb3.validators import check_int
from maesn_sb3.vec_env import MetaTaskVecEnv

__all__ = ["ALGOS", "HYPERPARAMS", "main", "meta_tasks", "register"]

#: The algorithms this module adds to rl-zoo3, by their ``--algo`` name.
ALGOS = {"maesn": MAESN, "lsbaseline": LSBaseline}
#: The hyperparameter file shipped with the package (one entry per task family).
HYPERPARAMS = str(Path(__file__).resolve().parent / "hyperparams" / "maesn.yml")


def meta_tasks(venv: VecEnv, envs_per_task: int) -> MetaTaskVecEnv:
    """Lay the zoo's VecEnv out as ``num_envs // envs_per_task`` task slots (a ``vec_env_wrapper``).

    :param venv: the zoo's VecEnv; its sub-envs implement the task API and carry a ``LatentWrapper``.
    :param envs_per_task: sub-envs (episodes) per task; must divide ``venv.num_envs`` (the zoo's
        ``n_envs``, or ``--n-eval-envs`` for its eval env).
    """
    check_int("envs_per_task", envs_per_task)
    if venv.num_envs % envs_per_task:
        raise ValueError(
            f"the VecEnv has {venv.num_envs} envs, not a multiple of envs_per_task={envs_per_task}: set "
            "n_envs (training) or --n-eval-envs (the zoo's eval env, or --eval-freq -1) to a multiple of it"
        )
    return MetaTaskVecEnv(venv, n_tasks=venv.num_envs // envs_per_task, envs_per_task=envs_per_task)


def register() -> None:
    """Add :data:`ALGOS` to ``rl_zoo3``'s algorithm table (safe to call twice)."""
    try:
        from rl_zoo3.utils import ALGOS as ZOO_ALGOS
    except ImportError as error:
        raise ImportError("maesn_sb3.zoo needs rl-zoo3: pip install 'maesn-sb3[zoo]'") from error
    ZOO_ALGOS.update(ALGOS)


def main(argv: Sequence[str] | None = None) -> None:
    """rl-zoo3's ``train`` with MAESN registered; ``argv`` as its command line (None: ``sys.argv[1:]``)."""
    register()
    from rl_zoo3.train import train

    args = list(sys.argv[1:] if argv is None else argv)
    if not {"-conf", "--conf-file"} & set(args):
        args += ["-conf", HYPERPARAMS]
    if not {"--eval-freq"} & set(args):
        args += ["--eval-freq", "-1"]
    saved = sys.argv
    sys.argv = [f"{sys.argv[0]} (maesn_sb3.zoo)", *args]
    try:
        train()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
