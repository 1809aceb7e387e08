"""MAESN and LSBaseline: SB3's generic algorithm checks, the maths, adaptation and a learning test."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from maesn_sb3 import MAESN, LSBaseline, TaskSet, make_meta_vec_env
from maesn_sb3.common import LinearFeatureBaseline, discounted_returns, gae_advantages
from maesn_sb3.maesn.policies import TaskLatents, gaussian_log_prob, latent_kl
from tests.conftest import ENV_ID, DictPoint, DiscretePoint
from tests.conftest import SMALL as SMALL_ENV

SMALL = {**SMALL_ENV, "latent_dim": 2}


def small_env(seed: int = 0, **overrides) -> object:
    return make_meta_vec_env(ENV_ID, seed=seed, **{**SMALL, **overrides})


def small_model(algo=MAESN, seed: int = 0, **kwargs) -> MAESN:
    return algo("MlpPolicy", small_env(seed), n_train_tasks=6, seed=seed, **kwargs)


ALGOS = [MAESN, LSBaseline]


# -- SB3's generic checks ------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ALGOS)
def test_save_load_round_trip(algo, tmp_path):
    model = small_model(algo).learn(400)
    obs = model.env.reset()
    actions, _ = model.predict(obs, deterministic=True)
    params = model.get_parameters()
    model.save(tmp_path / "model.zip")
    loaded = algo.load(tmp_path / "model.zip", env=small_env())
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], actions)
    for name, state in params.items():
        for key, value in state.items():
            if isinstance(value, th.Tensor):
                th.testing.assert_close(loaded.get_parameters()[name][key], value)
    for saved, original in zip(loaded.task_set.train, model.task_set.train, strict=True):
        np.testing.assert_array_equal(saved["goal"], original["goal"])
    loaded.learn(200)  # training continues after load


@pytest.mark.parametrize("algo", ALGOS)
def test_load_then_adapt_reproduces_adaptation(algo, tmp_path):
    model = small_model(algo).learn(400)
    model.save(tmp_path / "model")
    first = model.adapt(small_env(seed=5, n_tasks=1), n_iterations=2, seed=3)
    second = algo.load(tmp_path / "model").adapt(small_env(seed=5, n_tasks=1), n_iterations=2, seed=3)
    np.testing.assert_array_equal(first.returns, second.returns)
    np.testing.assert_array_equal(first.latent_means, second.latent_means)


def test_set_parameters_errors():
    model = small_model()
    params = model.get_parameters()
    with pytest.raises(ValueError):
        model.set_parameters({"policy": params["policy"]}, exact_match=True)
    bad = {**params, "policy": {**params["policy"], "not_a_weight": th.zeros(1)}}
    with pytest.raises(RuntimeError, match="not_a_weight"):
        model.set_parameters(bad, exact_match=True)
    model.set_parameters({"latents": params["latents"]}, exact_match=False)


def test_save_exclude_include(tmp_path):
    model = small_model(verbose=2)
    model.save(tmp_path / "model", exclude=["verbose"])
    assert MAESN.load(tmp_path / "model").verbose == 0  # the constructor's default, not the saved 2
    model.save(tmp_path / "model2", include=["env"])
    assert MAESN.load(tmp_path / "model2").env is not None


def test_policy_only_save_load(tmp_path):
    model = small_model()
    obs = model.env.reset()
    model.policy.save(tmp_path / "policy.pth")
    policy = type(model.policy).load(tmp_path / "policy.pth")
    np.testing.assert_allclose(
        policy.predict(obs, deterministic=True)[0], model.policy.predict(obs, deterministic=True)[0]
    )


def test_set_env():
    model = small_model()
    model.set_env(small_env(seed=1))
    model.learn(200)
    with pytest.raises(TypeError, match="MetaTaskVecEnv"):
        model.set_env(DummyVecEnv([lambda: gym.make(ENV_ID)]))
    with pytest.raises(ValueError, match="latent_dim"):
        model.set_env(small_env(latent_dim=3))


@pytest.mark.determinism
@pytest.mark.parametrize("algo", ALGOS)
def test_same_seed_same_training(algo):
    rewards = []
    for _ in range(2):
        model = small_model(algo, seed=7).learn(600)
        obs = model.env.reset()
        rewards.append((model.predict(obs)[0], model.latents.means.detach().clone(), model.num_timesteps))
    np.testing.assert_array_equal(rewards[0][0], rewards[1][0])
    th.testing.assert_close(rewards[0][1], rewards[1][1])
    different = small_model(algo, seed=8).learn(600)
    assert not th.equal(different.latents.means, rewards[0][1])


def test_predict_shapes():
    model = small_model()
    obs_space = model.observation_space
    single = obs_space.sample()
    action, state = model.predict(single)
    assert action.shape == (2,) and state is None
    batch = np.stack([obs_space.sample() for _ in range(5)])
    assert model.predict(batch)[0].shape == (5, 2)
    # observations without the latent get the held one
    assert model.predict(np.zeros(2, dtype=np.float32))[0].shape == (2,)
    assert model.predict(np.zeros((4, 2), dtype=np.float32), deterministic=True)[0].shape == (4, 2)
    with pytest.raises(ValueError, match="features"):
        model.predict(np.zeros(3, dtype=np.float32))


def test_predict_adds_the_latent_to_dict_observations_without_one():
    env = make_meta_vec_env(ENV_ID, seed=0, wrapper_class=DictPoint, **SMALL)
    model = MAESN("MultiInputPolicy", env, n_train_tasks=4, seed=0)
    position = np.zeros(2, dtype=np.float32)
    assert model.predict({"position": position}, deterministic=True)[0].shape == (2,)
    batch = {"position": np.zeros((3, 2), dtype=np.float32)}
    assert model.predict(batch, deterministic=True)[0].shape == (3, 2)
    with_latent = {"position": position, "latent": np.zeros(2, dtype=np.float32)}
    np.testing.assert_array_equal(
        model.predict(with_latent, deterministic=True)[0],
        model.predict({"position": position}, deterministic=True)[0],
    )


def test_callback_can_stop_training():
    class StopAfter(BaseCallback):
        def _on_step(self) -> bool:
            return self.n_calls < 5

    model = small_model()
    callback = StopAfter()
    model.learn(10_000, callback=callback)
    assert callback.n_calls == 5
    assert model.num_timesteps < 10_000


@pytest.mark.parametrize(
    ("outer_update", "outer_keys"),
    [
        ("trpo", ("train/surrogate_improvement", "train/trpo_kl")),
        ("ppo", ("train/approx_kl", "train/clip_fraction", "train/outer_steps", "train/pre_latent_kl")),
    ],
)
def test_logger_records_meta_training_scalars(tmp_path, outer_update, outer_keys):
    from stable_baselines3.common.logger import configure

    model = small_model(outer_update=outer_update)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(400)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in (
        "rollout/pre_update_return",
        "rollout/post_update_return",
        "rollout/pre_update_success",
        "rollout/post_update_success",
        "train/latent_prior_kl",
        "train/latent_step_share",
        "train/step_size_mean_0",
        "train/inner_loss",
        "train/outer_loss",
        *outer_keys,
        "time/sampling_s",
        "time/update_s",
    ):
        assert key in header, key


def test_progress_bar_runs():
    small_model().learn(200, progress_bar=True)


# -- bad input -----------------------------------------------------------------------------------
def test_env_must_be_meta_task_vec_env_with_latent():
    with pytest.raises(TypeError, match="MetaTaskVecEnv"):
        MAESN("MlpPolicy", DummyVecEnv([lambda: gym.make(ENV_ID)]))
    with pytest.raises(TypeError, match=r"task API|sample_tasks"):
        MAESN("MlpPolicy", gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match="LatentWrapper"):
        MAESN("MlpPolicy", small_env(latent_dim=None))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline": "quadratic"}, "baseline"),
        ({"kl_coef": -1.0}, "kl_coef"),
        ({"max_kl": 0.0}, "max_kl"),
        ({"inner_steps": 0}, "inner_steps"),
        ({"episodes_per_task": 4}, "episodes_per_task"),
        ({"gamma": 1.5}, "gamma"),
        ({"inner_lr": float("nan")}, "inner_lr"),
        ({"line_search_shrinking_factor": 1.0}, "line_search_shrinking_factor"),
        ({"n_train_tasks": 0}, "n_train_tasks"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MAESN("MlpPolicy", small_env(), **kwargs)


def test_lsbaseline_rejects_inner_step_arguments():
    with pytest.raises(TypeError, match="inner_lr"):
        LSBaseline("MlpPolicy", small_env(), inner_lr=1.0)


def test_adapt_bad_input():
    model = small_model()
    with pytest.raises(ValueError, match="episodes_per_iteration"):
        model.adapt(small_env(), episodes_per_iteration=4)
    with pytest.raises(ValueError, match="n_iterations"):
        model.adapt(small_env(), n_iterations=-1)
    with pytest.raises(TypeError, match="MetaTaskVecEnv or"):
        model.adapt(DummyVecEnv([lambda: gym.make(ENV_ID)]))


@pytest.mark.parametrize("algo", [MAESN, LSBaseline])
def test_one_episode_per_task_is_an_error_before_any_episode(algo, monkeypatch):
    """Advantages centred per task are all 0 with one episode: adapt refuses rather than not moving."""
    model = algo("MlpPolicy", small_env(), n_train_tasks=4, seed=0)
    assert model.adapt(small_env(envs_per_task=1), n_iterations=0).returns.shape == (1, 2)  # no step: fine
    monkeypatch.setattr(model, "_sample", lambda *args, **kwargs: pytest.fail("an episode was sampled"))
    with pytest.raises(ValueError, match=r"needs >= 2 episodes per task .*got 1: pass episodes_per_iter"):
        model.adapt(small_env(envs_per_task=1), n_iterations=1)


# -- adaptation and prediction -------------------------------------------------------------------
def test_adapt_is_reproducible_and_leaves_weights_alone():
    model = small_model().learn(400)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    latents_before = {k: v.clone() for k, v in model.latents.state_dict().items()}
    first = model.adapt(small_env(seed=3), n_iterations=3, seed=11)
    second = model.adapt(small_env(seed=3), n_iterations=3, seed=11)
    np.testing.assert_array_equal(first.returns, second.returns)
    np.testing.assert_array_equal(first.latent_means, second.latent_means)
    for key, value in model.policy.state_dict().items():
        th.testing.assert_close(value, before[key])
    for key, value in model.latents.state_dict().items():
        th.testing.assert_close(value, latents_before[key])
    assert first.returns.shape == (4, 2) and first.success.shape == (4, 2)
    assert first.latent_means.shape == (4, 2, 2)
    np.testing.assert_array_equal(first.latent_means[0], 0.0)
    assert np.all(np.diff(first.env_steps) == 3 * 8)  # per task slot


def test_adapt_on_a_single_gym_env_and_predict_with_the_adapted_latent():
    model = small_model().learn(400)
    env = gym.make(ENV_ID, reward_type="sparse", max_episode_steps=8)
    result = model.adapt(env, n_iterations=2, episodes_per_iteration=3, seed=0)
    assert result.returns.shape == (3, 1)
    obs = np.zeros(2, dtype=np.float32)
    with_latent = np.concatenate([obs, model.adapted_latent_mean[0]]).astype(np.float32)
    np.testing.assert_allclose(
        model.predict(obs, deterministic=True)[0], model.predict(with_latent, deterministic=True)[0]
    )


def test_adaptation_step_sizes_are_halved():
    """LSBaseline adapts with a fixed step 1, halved each iteration: check it against a hand step."""
    model = small_model(LSBaseline)
    latents = model.latents
    z = th.tensor([[[1.0], [-1.0]]])
    advantages = th.tensor([[1.0, -1.0]])
    zero = th.zeros(1, 1)
    mean, _ = latents.inner_update(zero, zero, z, advantages, scale=0.25, step_sizes=th.ones(1))
    # grad of -mean(A log N(z|0,1)) wrt mean = -mean(A z) = -1 -> mean += 0.25 * 1
    th.testing.assert_close(mean, th.tensor([[0.25]]))


@pytest.mark.parametrize("policy", ["MlpPolicy", "MultiInputPolicy"])
def test_discrete_and_dict_spaces(policy):
    wrapper = DiscretePoint if policy == "MlpPolicy" else DictPoint
    env = make_meta_vec_env(ENV_ID, seed=0, wrapper_class=wrapper, **SMALL)
    model = MAESN(policy, env, n_train_tasks=4, seed=0, baseline="value").learn(400)
    result = model.adapt(make_meta_vec_env(ENV_ID, seed=1, wrapper_class=wrapper, **SMALL), n_iterations=1)
    assert np.isfinite(result.returns).all()
    obs = env.reset()
    assert model.predict(obs)[0].shape[0] == env.num_envs


# -- maths against hand computation --------------------------------------------------------------
def test_inner_update_of_a_1d_latent_matches_hand_computation():
    latents = TaskLatents(1, 1, inner_lr=0.5)
    mean, log_std = th.tensor([[0.2]]), th.tensor([[np.log(2.0)]], dtype=th.float32)
    z = th.tensor([[[1.0], [-0.5], [0.4]]])
    adv = th.tensor([[1.0, -2.0, 0.5]])
    new_mean, new_log_std = latents.inner_update(mean, log_std, z, adv)
    mu, sigma, zs, a = 0.2, 2.0, np.array([1.0, -0.5, 0.4]), np.array([1.0, -2.0, 0.5])
    grad_mu = -np.mean(a * (zs - mu) / sigma**2)
    grad_log_sigma = -np.mean(a * ((zs - mu) ** 2 / sigma**2 - 1))
    np.testing.assert_allclose(new_mean.item(), mu - 0.5 * grad_mu, rtol=1e-5)
    np.testing.assert_allclose(new_log_std.item(), np.log(sigma) - 0.5 * grad_log_sigma, rtol=1e-5)


def test_meta_gradient_wrt_step_sizes_matches_finite_differences():
    th.manual_seed(0)
    latents = TaskLatents(3, 2, inner_lr=0.7).double()
    z, adv = th.randn(3, 5, 2, dtype=th.float64), th.randn(3, 5, dtype=th.float64)
    z_post, adv_post = th.randn(3, 4, 2, dtype=th.float64), th.randn(3, 4, dtype=th.float64)

    def post_loss() -> th.Tensor:
        mean, log_std = latents.inner_update(latents.means, latents.log_stds, z, adv)
        return -(gaussian_log_prob(z_post, mean[:, None], log_std[:, None]) * adv_post).mean()

    loss = post_loss()
    grads = th.autograd.grad(loss, [latents.step_size_mean, latents.step_size_log_std, latents.means])
    eps = 1e-6
    for param, grad in zip(
        [latents.step_size_mean, latents.step_size_log_std, latents.means], grads, strict=True
    ):
        flat = param.data.view(-1)
        for i in range(flat.numel()):
            flat[i] += eps
            up = post_loss().item()
            flat[i] -= 2 * eps
            down = post_loss().item()
            flat[i] += eps
            np.testing.assert_allclose(grad.view(-1)[i].item(), (up - down) / (2 * eps), rtol=1e-5, atol=1e-8)


def test_latent_kl_to_the_prior():
    mean, log_std = th.tensor([[0.5, -1.0]]), th.tensor([[np.log(2.0), 0.0]], dtype=th.float32)
    expected = sum(
        np.log(1 / s) + (s**2 + m**2) / 2 - 0.5 for m, s in zip([0.5, -1.0], [2.0, 1.0], strict=True)
    )
    np.testing.assert_allclose(
        latent_kl(mean, log_std, th.zeros(()), th.zeros(())).item(), expected, rtol=1e-6
    )
    assert latent_kl(mean, log_std, mean, log_std).item() == pytest.approx(0.0, abs=1e-7)


def test_linear_baseline_fit_matches_least_squares():
    rng = np.random.default_rng(0)
    states = rng.normal(size=(20, 8, 3))
    returns = rng.normal(size=(20, 8)).astype(np.float32)
    mask = np.ones((20, 8), dtype=np.float32)
    mask[14:, 1] = 0
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    baseline = LinearFeatureBaseline(reg_coeff=1e-5)
    predictions = baseline.fit_predict(states, returns, mask, groups, 2)
    features = baseline.features(states)
    for group in (0, 1):
        episodes = np.flatnonzero(groups == group)
        x = (features[:, episodes] * mask[:, episodes, None]).reshape(-1, features.shape[-1])
        y = (returns[:, episodes] * mask[:, episodes]).reshape(-1)
        ridge_x = np.concatenate([x, np.sqrt(1e-5) * np.eye(x.shape[1])])  # ridge as plain least squares
        weights = np.linalg.lstsq(ridge_x, np.concatenate([y, np.zeros(x.shape[1])]), rcond=None)[0]
        expected = (features[:, episodes] @ weights) * mask[:, episodes]
        np.testing.assert_allclose(predictions[:, episodes], expected, atol=1e-3)
    assert np.all(predictions[14:, 1] == 0)


def test_returns_and_gae():
    rewards = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    mask = np.array([[1, 1], [1, 0], [1, 0]], dtype=np.float32)
    returns = discounted_returns(rewards, mask, 0.5)
    np.testing.assert_allclose(returns[:, 0], [1.75, 1.5, 1.0])
    np.testing.assert_allclose(returns[:, 1], [1.0, 0.0, 0.0])
    values = np.zeros_like(rewards)
    np.testing.assert_allclose(gae_advantages(rewards, values, mask, 0.5, 1.0), returns)


# -- learning ------------------------------------------------------------------------------------
def test_inner_step_improves_return_on_point_nav(tmp_path):
    """A few meta-iterations: the post-update return beats the pre-update return on average."""
    import csv

    from stable_baselines3.common.logger import configure

    tasks = TaskSet.from_env(ENV_ID, n_train=20, n_test=0, seed=0)
    env = make_meta_vec_env(
        ENV_ID,
        n_tasks=10,
        envs_per_task=10,
        latent_dim=2,
        seed=0,
        tasks=tasks,
        env_kwargs={"max_episode_steps": 20},
    )
    model = MAESN("MlpPolicy", env, task_set=tasks, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(16 * 2 * 100 * 20)
    rows = list(csv.DictReader((tmp_path / "progress.csv").open()))
    pre = [float(row["rollout/pre_update_return"]) for row in rows]
    post = [float(row["rollout/post_update_return"]) for row in rows]
    assert len(post) == 16
    assert np.mean(post) > np.mean(pre)


def test_inner_step_on_a_reward_from_info():
    from maesn_sb3.common import collect_episodes

    env = small_env()
    batch, _ = collect_episodes(env, small_model().policy, 1, reward_key="sparse_reward")
    assert batch.info_rewards.shape == batch.rewards.shape
    assert set(np.unique(batch.info_rewards)) <= {0.0, 1.0} and batch.rewards.min() < 0  # dense env reward
    model = MAESN("MlpPolicy", env, n_train_tasks=6, seed=0, inner_reward_key="sparse_reward").learn(200)
    assert model.num_timesteps >= 200
    with pytest.raises(KeyError, match="not_in_info"):
        MAESN("MlpPolicy", small_env(), n_train_tasks=6, inner_reward_key="not_in_info").learn(100)
    with pytest.raises(TypeError, match="inner_reward_key"):
        MAESN("MlpPolicy", small_env(), inner_reward_key=3)
