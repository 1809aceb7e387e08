"""Exploration coverage (maesn_sb3.evaluation.exploration_coverage) on a policy whose exploration is
known: its mean action is a fixed multiple of the latent, its action noise nil."""

from __future__ import annotations

import torch as th

from maesn_sb3 import MAESN, make_meta_vec_env
from maesn_sb3.evaluation import exploration_coverage


def test_latents_that_steer_cover_the_goals_and_no_action_noise_covers_none() -> None:
    """PointNav2D (goals on the unit semicircle, radius 0.2): the point moves along 0.3 z per step, so
    latents drawn from the prior head out in every direction and 40 of them find most goals, while the
    prior's mean latent (z = 0) with no action noise never leaves the origin."""
    env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=10, envs_per_task=40, latent_dim=2, seed=0)
    model = MAESN(
        "MlpPolicy", env, n_train_tasks=10, seed=0, policy_kwargs={"net_arch": [], "log_std_init": -20.0}
    )
    with th.no_grad():
        model.policy.action_net.weight.zero_()
        model.policy.action_net.weight[:, 2:] = 0.3 * th.eye(2)
        model.policy.action_net.bias.zero_()
    coverage = exploration_coverage(model, env, seed=0)
    assert coverage.action_noise == 0.0
    assert coverage.latents >= 0.6
    assert coverage == exploration_coverage(model, env, seed=0)  # seeded: the same draws
