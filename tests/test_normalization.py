"""Observation normalisation inside the policy (normalize_observations=True) and the advantages'
indifference to the reward's scale (why rewards are not normalised)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch as th

from maesn_sb3 import MAESN, MAML, make_meta_vec_env
from maesn_sb3.common.policies import RunningNormalization
from tests.conftest import DictPoint

ENV_ID = "maesn_sb3/PointNav2D-v0"
pytestmark = pytest.mark.filterwarnings(r"ignore:learn\(\) runs whole meta-iterations")


def env(latent: bool, seed: int = 0, **kwargs):
    return make_meta_vec_env(
        ENV_ID, n_tasks=2, envs_per_task=3, seed=seed, env_kwargs={"max_episode_steps": 10},
        **({"latent_dim": 2} if latent else {}), **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("cls", [MAESN, MAML])
def test_statistics_are_the_observed_ones_saved_and_applied(cls: type, tmp_path) -> None:
    latent = cls is MAESN
    model = cls("MlpPolicy", env(latent), n_train_tasks=4, seed=0, normalize_observations=True)
    extractor = model.policy.features_extractor
    assert isinstance(extractor, RunningNormalization) and len(extractor.mean) == 2  # the position only
    seen = []
    collect = model._collect

    def recorded(*args, **kwargs):
        batch, completed = collect(*args, **kwargs)
        if (args[3:] and args[3] is not None) or kwargs.get("callback") is not None:
            seen.append(batch.observations[batch.mask.astype(bool)][:, :2])
        return batch, completed

    model._collect = recorded
    model.learn(2 * 2 * 2 * 3 * 10)  # two meta-iterations
    observed = np.concatenate(seen)
    assert float(extractor.count) == pytest.approx(len(observed) + 1e-4)
    np.testing.assert_allclose(extractor.mean.numpy(), observed.mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(extractor.var.numpy(), observed.var(0), rtol=1e-3, atol=1e-6)
    # predict sees normalised positions (and the raw latent)
    obs = np.array([[0.3, -0.2, 0.5, 1.0]] if latent else [[0.3, -0.2]], dtype=np.float32)
    normalised = (obs[:, :2] - extractor.mean.numpy()) / np.sqrt(extractor.var.numpy() + 1e-8)
    features = extractor(th.as_tensor(obs)).numpy()
    np.testing.assert_allclose(features[:, :2], normalised, rtol=1e-5)
    np.testing.assert_array_equal(features[:, 2:], obs[:, 2:])
    action = model.predict(obs, deterministic=True)[0]
    model.save(tmp_path / "model")
    loaded = cls.load(tmp_path / "model")
    assert th.equal(loaded.policy.features_extractor.mean, extractor.mean)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], action, atol=1e-6)


def test_normalisation_needs_a_box_space() -> None:
    dict_env = env(False, wrapper_class=DictPoint)
    with pytest.raises(
        ValueError, match="normalize_observations=True needs a Box observation space, got Dict"
    ):
        MAML("MultiInputPolicy", dict_env, n_train_tasks=4, normalize_observations=True)
    with pytest.raises(TypeError, match="normalize_observations must be a bool, got 'yes'"):
        MAML("MlpPolicy", env(False), n_train_tasks=4, normalize_observations="yes")


def test_the_outer_advantages_do_not_depend_on_the_reward_scale() -> None:
    """Per-task normalisation after a baseline fit that scales with the rewards: a reward scale (what
    RL Zoo's reward normalisation divides by) cancels, so the outer and inner steps are unchanged."""
    model = MAESN("MlpPolicy", env(True), n_train_tasks=4, seed=0)
    model.env.set_tasks(model.task_set.train[:2])
    mean, log_std = model._pre(th.arange(2))
    post, _ = model._sample(model.env, mean, log_std, n_rounds=2)
    scaled = dataclasses.replace(post, rewards=post.rewards * 250.0)
    np.testing.assert_allclose(model._outer_advantages(scaled), model._outer_advantages(post), atol=1e-4)
    _, inner = model._latent_advantages(post, 2)
    _, inner_scaled = model._latent_advantages(scaled, 2)
    th.testing.assert_close(inner_scaled, inner, atol=1e-4, rtol=1e-4)
