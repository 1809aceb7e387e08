"""MAML-TRPO: SB3's generic algorithm checks, the per-task inner step, first/second order, adaptation."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from maesn_sb3 import MAML, TaskSet, make_meta_vec_env
from maesn_sb3.common.trpo import action_kl
from tests.conftest import ENV_ID, DictPoint, DiscretePoint
from tests.conftest import small_meta_env as small_env


def small_model(seed: int = 0, **kwargs) -> MAML:
    return MAML("MlpPolicy", small_env(seed), n_train_tasks=6, seed=seed, **kwargs)


@pytest.mark.parametrize("first_order", [False, True])
def test_save_load_round_trip(first_order, tmp_path):
    model = small_model(first_order=first_order).learn(300)
    obs = model.env.reset()
    actions, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "maml")
    loaded = MAML.load(tmp_path / "maml", env=small_env())
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], actions)
    assert loaded.first_order == first_order and loaded.inner_lr == model.inner_lr
    for saved, original in zip(loaded.task_set.train, model.task_set.train, strict=True):
        np.testing.assert_array_equal(saved["goal"], original["goal"])
    loaded.learn(100)
    with pytest.raises(ValueError):
        loaded.set_parameters({"not_a_module": {}}, exact_match=True)


@pytest.mark.determinism
def test_same_seed_same_training_and_learn_changes_the_weights():
    first = small_model(seed=3)
    before = th.nn.utils.parameters_to_vector(first.policy.parameters()).clone()
    first.learn(300)
    second = small_model(seed=3).learn(300)
    after = th.nn.utils.parameters_to_vector(first.policy.parameters())
    th.testing.assert_close(after, th.nn.utils.parameters_to_vector(second.policy.parameters()))
    assert not th.allclose(before, after)


def test_callback_can_stop_training_and_predict_shapes():
    class StopAfter(BaseCallback):
        def _on_step(self) -> bool:
            return self.n_calls < 3

    model = small_model().learn(10_000, callback=StopAfter())
    assert model.num_timesteps == 3 * 6  # stopped at the third vectorised step of the first rollout
    obs = model.env.reset()
    assert model.predict(obs)[0].shape == (6, 2)
    assert model.predict(obs[0])[0].shape == (2,)


def test_bad_env_and_arguments():
    with pytest.raises(ValueError, match="LatentWrapper"):
        MAML("MlpPolicy", small_env(latent_dim=2))
    with pytest.raises(TypeError, match="MetaTaskVecEnv"):
        MAML("MlpPolicy", DummyVecEnv([lambda: gym.make(ENV_ID)]))
    for kwargs, name in (
        ({"inner_lr": 0}, "inner_lr"),
        ({"max_kl": -1}, "max_kl"),
        ({"gamma": 1.5}, "gamma"),
        ({"episodes_per_task": 4}, "episodes_per_task"),
        ({"task_set": [1, 2]}, "task_set"),
    ):
        with pytest.raises((ValueError, TypeError), match=name):
            small_model(**kwargs)
    model = small_model()
    with pytest.raises(ValueError, match="episodes_per_iteration"):
        model.adapt(small_env(), n_iterations=1, episodes_per_iteration=4)
    with pytest.raises(ValueError, match="n_iterations"):
        model.adapt(small_env(), n_iterations=-1)


def test_inner_step_adapts_each_slot_on_its_own_episodes():
    """The batched inner step equals a REINFORCE step computed on one slot's episodes alone."""
    model = small_model(inner_lr=0.5)
    env = model.env
    env.set_tasks(model.task_set.train[:2])
    batch, _ = model._sample(env, None, 1)
    data = model._grouped(batch, 2)
    adapted = model._inner_step(model._stacked(2), data, 0.5, create_graph=False)
    for slot in range(2):
        alone = {k: v[slot : slot + 1] for k, v in data.items() if k != "obs"}
        alone["obs"] = data["obs"][slot : slot + 1]
        params = model.actor_parameters()
        log_prob = model._log_prob(model._stacked(1), alone)
        loss = -(log_prob * alone["advantages"]).sum() / alone["mask"].sum()
        grads = th.autograd.grad(loss, list(params.values()))
        for (name, param), grad in zip(params.items(), grads, strict=True):
            th.testing.assert_close(adapted[name][slot], param - 0.5 * grad, rtol=1e-4, atol=1e-5)
        assert data["advantages"][slot][data["mask"][slot] > 0].std() == pytest.approx(1.0, abs=0.05)


def test_inner_reward_key_drives_the_inner_step():
    """With the sparse reward (always 0 in 8 steps: the goals are 1 away), the inner step stays put."""
    model = small_model(inner_reward_key="sparse_reward")
    model.env.set_tasks(model.task_set.train[:2])
    batch, _ = model._sample(model.env, None, 1, reward_key=model.inner_reward_key)
    assert not batch.info_rewards.any() and batch.rewards.min() < 0
    dense = dataclasses.replace(batch, info_rewards=None)
    for data, moves in ((model._grouped(batch, 2), False), (model._grouped(dense, 2), True)):
        adapted = model._inner_step(model._stacked(2), data, 0.5, create_graph=False)
        stacked = model._stacked(2)
        assert any(not th.equal(adapted[k], stacked[k]) for k in adapted) == moves
    assert model.learn(100).num_timesteps >= 100
    with pytest.raises(TypeError, match="inner_reward_key"):
        small_model(inner_reward_key=3)


def test_second_order_meta_gradient_differs_from_first_order():
    model = small_model(inner_lr=0.5)
    env = model.env
    env.set_tasks(model.task_set.train[:2])
    pre = model._grouped(model._sample(env, None, 1)[0], 2)
    post = model._grouped(model._sample(env, None, 1)[0], 2)
    params = list(model.actor_parameters().values())

    def meta_grad(create_graph: bool) -> th.Tensor:
        adapted = model._inner_step(model._stacked(2), pre, 0.5, create_graph=create_graph)
        if not create_graph:  # first order: the inner gradient is a constant
            adapted = {
                k: model._stacked(2)[k] + (v - model._stacked(2)[k]).detach() for k, v in adapted.items()
            }
        loss = -(model._log_prob(adapted, post) * post["advantages"]).sum()
        return th.cat([g.reshape(-1) for g in th.autograd.grad(loss, params)])

    second, first = meta_grad(True), meta_grad(False)
    assert th.isfinite(second).all() and not th.allclose(second, first)
    assert th.nn.functional.cosine_similarity(second, first, dim=0) > 0.5  # the same leading term


@pytest.mark.parametrize("wrapper", [DiscretePoint, DictPoint])
def test_discrete_actions_and_dict_observations(wrapper):
    env = small_env(wrapper_class=wrapper)
    policy = "MultiInputPolicy" if wrapper is DictPoint else "MlpPolicy"
    for first_order in (False, True):
        model = MAML(policy, env, n_train_tasks=4, seed=0, first_order=first_order).learn(200)
    result = model.adapt(small_env(seed=1, wrapper_class=wrapper), n_iterations=1)
    assert result.returns.shape == (2, 2)


def test_adapt_is_reproducible_leaves_weights_alone_and_predicts_with_adapted_weights():
    model = small_model().learn(300)
    before = th.nn.utils.parameters_to_vector(model.policy.parameters()).clone()
    tasks = TaskSet.from_env(ENV_ID, n_train=1, n_test=2, seed=5).test
    first = model.adapt(small_env(seed=2, tasks=tasks), n_iterations=2, episodes_per_iteration=6, seed=1)
    second = model.adapt(small_env(seed=2, tasks=tasks), n_iterations=2, episodes_per_iteration=6, seed=1)
    np.testing.assert_array_equal(first.returns, second.returns)
    th.testing.assert_close(th.nn.utils.parameters_to_vector(model.policy.parameters()), before)
    assert first.returns.shape == first.success.shape == (3, 2)
    np.testing.assert_array_equal(first.env_steps, [48, 96, 144])  # 6 episodes x 8 steps per slot
    obs = np.zeros((2, 2), dtype=np.float32)
    adapted = np.stack(
        [p.predict(obs[i], deterministic=True)[0] for i, p in enumerate(model.adapted_policies)]
    )
    np.testing.assert_allclose(model.predict(obs, deterministic=True)[0], adapted)
    assert not np.allclose(adapted, model.policy.predict(obs, deterministic=True)[0])
    with pytest.raises(ValueError, match="adapted policies"):
        model.predict(np.zeros((3, 2), dtype=np.float32))
    single = model.adapt(gym.make(ENV_ID, max_episode_steps=8), n_iterations=1)
    assert single.returns.shape == (2, 1) and len(model.adapted_policies) == 1


def test_meta_training_improves_post_update_return():
    """MAML-TRPO learns on PointNav2D (dense): the adapted return on held-out goals rises with training."""
    tasks = TaskSet.from_env(ENV_ID, n_train=20, n_test=4, seed=0)
    env = make_meta_vec_env(ENV_ID, n_tasks=8, envs_per_task=10, seed=0, tasks=tasks)
    model = MAML("MlpPolicy", env, task_set=tasks, seed=0, inner_lr=0.1)

    def adapted_return() -> float:
        test = make_meta_vec_env(ENV_ID, n_tasks=4, envs_per_task=10, seed=1, tasks=tasks.test)
        return float(model.adapt(test, n_iterations=1, seed=0).mean_return[-1])

    before = adapted_return()
    model.learn(120_000)
    after = adapted_return()
    print(f"held-out post-update return (dense): {before:.1f} -> {after:.1f}")
    assert after > before + 5


def test_fisher_subsample_is_validated_saved_and_reproducible(tmp_path):
    from stable_baselines3.common.logger import configure

    for bad in (0.0, 1.5, "half"):
        with pytest.raises((ValueError, TypeError), match="fisher_subsample"):
            small_model(fisher_subsample=bad)

    def run() -> tuple[MAML, np.ndarray]:
        model = small_model(fisher_subsample=0.25, outer_update="trpo")
        model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
        model.learn(300)
        progress = np.genfromtxt(tmp_path / "log" / "progress.csv", delimiter=",", names=True)
        return model, np.atleast_1d(progress["traintrpo_kl"])

    first, kls = run()
    assert np.all(kls <= first.max_kl + 1e-9)  # the line search checks the KL on every step
    second, _ = run()
    for a, b in zip(first.policy.parameters(), second.policy.parameters(), strict=True):
        th.testing.assert_close(a, b)
    first.save(tmp_path / "maml")
    assert MAML.load(tmp_path / "maml", env=small_env()).fisher_subsample == 0.25


@pytest.mark.parametrize("fraction", [0.3, 1.0])
def test_fisher_subsample_draws_valid_steps_and_averages_over_them(fraction):
    """The subsample holds round(fraction * valid steps) distinct valid steps of the right slots, and
    its KL is their mean: after the action log-std moves by ``delta`` every step's KL is
    ``A (delta + exp(-2 delta) / 2 - 1/2)``, so the subsample's KL must equal that too."""
    model = small_model(fisher_subsample=fraction, outer_update="trpo")
    generator = th.Generator().manual_seed(0)
    mask = (th.rand(3, 10, generator=generator) < 0.7).float()
    obs = th.arange(30, dtype=th.float32).reshape(3, 10, 1).expand(3, 10, 2).contiguous()  # step ids
    params = {k: v.detach() for k, v in model._stacked(3).items()}
    grouped = {"obs": obs, "mask": mask}
    data, old = model._fisher_subsample(grouped, params, model._distribution(params, obs))
    n_valid = int(mask.sum())
    chosen = data["obs"][..., 0][data["mask"].bool()].long()
    assert len(chosen) == max(1, round(fraction * n_valid)) and len(set(chosen.tolist())) == len(chosen)
    assert mask.flatten()[chosen].all()  # valid steps only, each from its own slot
    assert th.equal(chosen // 10, data["mask"].nonzero()[:, 0])
    delta = 0.4
    with th.no_grad():
        model.policy.log_std += delta
        kl = action_kl(old, model._distribution(model._stacked(3), data["obs"]))
    weights = data["mask"].flatten() / data["mask"].sum()
    expected = 2 * (delta + np.exp(-2 * delta) / 2 - 0.5)
    assert float((kl * weights).sum()) == pytest.approx(expected, rel=1e-5)
