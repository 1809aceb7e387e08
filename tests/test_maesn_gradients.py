"""MAESN's outer step against answers known independently of the estimator.

The truth test follows the issue's recipe: ``z`` reaches the return only through the policy's actions
(states are the time step alone), rewards are ``r_t = c_t . a_t`` with ``c_t`` switching half-way, so
the expected return is ``sum_t c_t . mean_action(s_t, mu + sigma * eps)`` averaged over ``eps`` and its
gradient in ``mu`` comes from autograd on many ``eps`` (no policy gradient involved).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from maesn_sb3 import MAESN, MAML, RL2, LSBaseline, MetaTaskVecEnv, MultiTaskPPO, make_meta_vec_env
from maesn_sb3.common import trpo
from maesn_sb3.maesn.policies import TaskLatents, gaussian_log_prob
from maesn_sb3.ppo import finetune_ppo, ppo_from_scratch
from wrappers.rl2 import RL2Wrapper

POINT = "maesn_sb3/PointNav2D-v0"

HORIZON = 20
C_EARLY, C_LATE = np.array([1.0, 0.0]), np.array([-0.5, 1.0])


class TimeEnv(gym.Env):
    """Observations are the time step alone; reward ``c_t . a``; actions never change the state."""

    observation_space = gym.spaces.Box(-1.0, 2.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1e3, 1e3, (2,), np.float32)
    max_episode_steps = HORIZON  # it truncates its episodes itself: the collectors need to know

    def __init__(self) -> None:
        self._task, self._t, self._scale = 0, 0, 1.0

    def sample_tasks(self, n: int) -> list[int]:
        return list(range(n))

    def set_task(self, task: int) -> None:
        self._task = task
        self._scale = 100.0 ** (task % 2)  # odd tasks pay 100x: per-task advantage normalisation

    def get_task(self) -> int:
        return self._task

    def _obs(self) -> np.ndarray:
        return np.array([self._t / HORIZON, 1.0], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        c = C_EARLY if self._t < HORIZON // 2 else C_LATE
        reward = self._scale * float(c @ np.asarray(action, dtype=np.float64))
        self._t += 1
        return self._obs(), reward, False, self._t >= HORIZON, {}


def time_env(n_tasks: int = 1, envs_per_task: int = 250, seed: int = 0) -> MetaTaskVecEnv:
    return make_meta_vec_env(TimeEnv, n_tasks=n_tasks, envs_per_task=envs_per_task, seed=seed, latent_dim=2)


def true_latent_gradient(model: MAESN, mean: th.Tensor, log_std: th.Tensor, n: int = 50_000) -> np.ndarray:
    """d/d mu of sum_t E_eps[c_t . mean_action(s_t, mu + sigma * eps)], by autograd over ``n`` draws."""
    mu = mean.detach().clone().requires_grad_(True)
    eps = th.randn(n, 2, generator=th.Generator().manual_seed(123))
    z = mu + th.exp(log_std.detach()) * eps
    total = th.zeros(())
    for t in range(HORIZON):
        state = th.tensor([t / HORIZON, 1.0]).expand(n, 2)
        actions = model.policy.get_distribution(th.cat([state, z], dim=1)).distribution.mean
        c = th.as_tensor(C_EARLY if t < HORIZON // 2 else C_LATE, dtype=th.float32)
        total = total + (actions @ c).mean()
    (grad,) = th.autograd.grad(total, mu)
    return grad.numpy()


def angle(a: np.ndarray, b: np.ndarray) -> float:
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def toy_model(latent_gradient: str, seed: int, linear: bool = False) -> tuple[LSBaseline, th.Tensor]:
    """The latent-space baseline (no inner step: the post-update latents are the table's) on the toy.

    ``linear``: the action mean is ``W s + 0.2 z + b`` (no hidden layer, the latent's weights fixed),
    so the latent's effect is the same at every step and the late rewards' extra weight in the biased
    estimator shows undistorted. Action stds are chosen so that 4,000 episodes pin the direction.
    """
    model = LSBaseline(
        "MlpPolicy",
        time_env(seed=seed),
        n_train_tasks=1,
        episodes_per_task=4_000,
        kl_coef=0.0,
        gamma=1.0,
        gae_lambda=1.0,
        latent_gradient=latent_gradient,
        policy_kwargs={"log_std_init": -0.5, "net_arch": []} if linear else {"log_std_init": -1.5},
        seed=seed,
    )
    if linear:
        with th.no_grad():
            model.policy.action_net.weight[:, 2:] = 0.2 * th.eye(2)
    return model, th.zeros(1, dtype=th.long)


def outer_gradient_and_truth(model: LSBaseline, index: th.Tensor) -> tuple[np.ndarray, np.ndarray, object]:
    mean, log_std = model._pre(index)
    truth = true_latent_gradient(model, mean[0], log_std[0])
    post, _ = model._sample(model.env, mean, log_std, n_rounds=16)
    loss_fn, *_ = model._outer_objective(index, [], post)
    (grad,) = th.autograd.grad(loss_fn(), model.latents.means)
    return -grad[0].numpy(), truth, post  # the loss is minimised: minus its gradient is the ascent


@pytest.mark.parametrize("latent_gradient", ["reparameterization", "score_function"])
@pytest.mark.parametrize(("seed", "linear"), [(0, False), (1, False), (2, False), (0, True), (1, True)])
def test_outer_latent_gradient_points_along_the_true_gradient(
    latent_gradient: str, seed: int, linear: bool
) -> None:
    model, index = toy_model(latent_gradient, seed, linear)
    estimate, truth, _ = outer_gradient_and_truth(model, index)
    assert angle(estimate, truth) < 5.0


@pytest.mark.parametrize("seed", [0, 1])
def test_the_toy_rejects_the_sum_of_advantages_weighting(seed: int) -> None:
    """Weighting the latent's score by the sum of the episode's advantages (the earlier outer
    surrogate, which multiplied every step's ratio by the latent's) over-counts late rewards: the toy
    must tell it apart from the truth, or the test above would prove nothing."""
    model, index = toy_model("score_function", seed, linear=True)
    _, truth, post = outer_gradient_and_truth(model, index)
    mean, log_std = model._pre(index)
    advantages = model._outer_advantages(post)
    weight = th.as_tensor((advantages * post.mask).sum(0), dtype=th.float32)
    mu = mean.detach().clone().requires_grad_(True)
    z = th.as_tensor(post.latents, dtype=th.float32)
    biased = (gaussian_log_prob(z, mu[0], log_std[0].detach()) * weight).mean()
    (grad,) = th.autograd.grad(biased, mu)
    assert angle(grad[0].numpy(), truth) > 10.0


@pytest.mark.parametrize("latent_gradient", ["reparameterization", "score_function"])
def test_trust_region_kl_is_the_action_kl_summed_over_dimensions(
    latent_gradient: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a known change of the action log-std and of the latent mean, the outer step's KL equals
    the closed-form KL of diagonal Gaussians summed over action dimensions (plus, for the score-function
    form, each episode's latent KL spread over its steps)."""
    model, index = toy_model(latent_gradient, seed=0, linear=True)
    mean, log_std = model._pre(index)
    post, _ = model._sample(model.env, mean, log_std, n_rounds=1)
    rows = th.arange(0, int(post.mask.sum()), 7)  # a Fisher subsample: its KL is the mean over its steps
    _, kl_fn, fisher_terms_fn = model._outer_objective(index, [], post, rows)
    assert kl_fn().item() == pytest.approx(0.0, abs=1e-6)
    delta, shift = 0.3, th.tensor([0.5, -1.0])
    with th.no_grad():
        model.policy.log_std += delta
        model.latents.means += shift
    old_var, new_var = np.exp(2 * -0.5), np.exp(2 * (-0.5 + delta))
    per_dim = delta + old_var / (2 * new_var) - 0.5
    if latent_gradient == "reparameterization":  # the action means move by 0.2 * shift
        expected = 2 * per_dim + float(((0.2 * shift) ** 2).sum()) / (2 * new_var)
    else:  # z is held: the actions' means stay; KL(N(mu, 1) || N(mu + shift, 1)) per episode / T
        expected = 2 * per_dim + float((shift**2).sum()) / 2 / HORIZON
    assert kl_fn().item() == pytest.approx(expected, rel=1e-4)
    # the Gauss-Newton form: the KL as a function of its tensors, summed over the chunks' shares
    monkeypatch.setattr(trpo, "FISHER_CHUNK_STEPS", 5)
    chunks = fisher_terms_fn()
    assert len(chunks) == -(-len(rows) // 5)
    assert sum(kl_of(outputs).item() for outputs, kl_of in chunks) == pytest.approx(expected, rel=1e-4)


def test_outer_advantages_are_normalised_per_task() -> None:
    """Two tasks whose rewards differ 100-fold: each task's advantages get zero mean and unit std."""
    model = LSBaseline("MlpPolicy", time_env(n_tasks=2, envs_per_task=20), n_train_tasks=2, seed=0)
    model.env.set_tasks([0, 1])
    mean, log_std = model._pre(th.arange(2))
    post, _ = model._sample(model.env, mean, log_std, n_rounds=1)
    advantages = model._outer_advantages(post)
    for slot in (0, 1):
        values = advantages[:, post.task_slot == slot][post.mask[:, post.task_slot == slot]]
        assert values.mean() == pytest.approx(0.0, abs=1e-6)
        assert values.std() == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("latent_gradient", ["reparameterization", "score_function"])
def test_outer_gradient_matches_finite_differences(latent_gradient: str) -> None:
    """The outer loss's gradient in the step sizes and the pre-update means, through two inner steps
    (each on its own batch), against central differences of the same loss."""
    env = make_meta_vec_env(POINT, n_tasks=2, envs_per_task=4, seed=0, latent_dim=2,
                            env_kwargs={"max_episode_steps": 6})  # fmt: skip
    model = MAESN("MlpPolicy", env, n_train_tasks=4, seed=0, latent_gradient=latent_gradient, inner_steps=2)
    index = th.tensor([1, 3])
    mean, log_std = model._pre(index)
    batches = []
    with th.no_grad():
        for _ in range(2):
            batch, _ = model._sample(env, mean, log_std, n_rounds=1)
            z, adv = model._latent_advantages(batch, 2)
            batches.append((z, adv))
            mean, log_std = model.latents.inner_update(mean, log_std, z, adv)
    post, _ = model._sample(env, mean, log_std, n_rounds=1)
    loss_fn, *_ = model._outer_objective(index, batches, post)
    params = [model.latents.step_size_mean, model.latents.step_size_log_std, model.latents.means]
    grads = th.autograd.grad(loss_fn(), params)
    h = 1e-3  # the loss curves fast in the step sizes; float32 still resolves this step
    for param, grad in zip(params, grads, strict=True):
        for flat in range(param.numel()):
            with th.no_grad():
                param.view(-1)[flat] += h
                up = loss_fn().item()
                param.view(-1)[flat] -= 2 * h
                down = loss_fn().item()
                param.view(-1)[flat] += h
            assert grad.view(-1)[flat].item() == pytest.approx((up - down) / (2 * h), rel=0.05, abs=1e-3)
    assert grads[2][[0, 2]].abs().sum() == 0  # tables of tasks outside the batch get no gradient
    assert grads[0].abs().sum() > 0 and grads[1].abs().sum() > 0


def test_each_inner_step_samples_fresh_episodes() -> None:
    env = make_meta_vec_env(POINT, n_tasks=2, envs_per_task=3, seed=0, latent_dim=2,
                            env_kwargs={"max_episode_steps": 5})  # fmt: skip
    model = MAESN("MlpPolicy", env, n_train_tasks=4, seed=0, inner_steps=3)
    model.learn(1)
    assert model.num_timesteps == 4 * 2 * 3 * 5  # three inner batches and the post-update batch


def _recorded_scales(model: MAESN, monkeypatch: pytest.MonkeyPatch, **adapt_kwargs) -> list[tuple]:
    calls = []
    inner_update = TaskLatents.inner_update

    def record(self, *args, **kwargs):
        calls.append((kwargs.get("scale", 1.0), kwargs.get("natural", False)))
        return inner_update(self, *args, **kwargs)

    monkeypatch.setattr(TaskLatents, "inner_update", record)
    env = make_meta_vec_env(POINT, n_tasks=1, envs_per_task=2, seed=1, latent_dim=2,
                            env_kwargs={"max_episode_steps": 4})  # fmt: skip
    model.adapt(env, n_iterations=5, evaluate=False, **adapt_kwargs)
    return calls


def small_point_model(algo: type = MAESN, **kwargs) -> MAESN:
    env = make_meta_vec_env(POINT, n_tasks=2, envs_per_task=2, seed=0, latent_dim=2,
                            env_kwargs={"max_episode_steps": 4})  # fmt: skip
    return algo("MlpPolicy", env, n_train_tasks=4, seed=0, **kwargs)


def test_adaptation_schedules_are_the_references(monkeypatch: pytest.MonkeyPatch) -> None:
    maesn = _recorded_scales(small_point_model(MAESN), monkeypatch, step_scale=1.0)
    assert [scale for scale, _ in maesn] == [1.0, 1.0, 0.5, 0.25, 0.125]
    baseline = _recorded_scales(small_point_model(LSBaseline), monkeypatch, step_scale=1.0)
    assert [scale for scale, _ in baseline] == [1.0, 1.0, 1.0, 0.5, 0.25]

    lrs = []
    inner_step = MAML._inner_step

    def record(self, params, data, lr, create_graph):
        lrs.append(lr)
        return inner_step(self, params, data, lr, create_graph)

    monkeypatch.setattr(MAML, "_inner_step", record)
    env = make_meta_vec_env(POINT, n_tasks=1, envs_per_task=2, seed=0, env_kwargs={"max_episode_steps": 4})
    maml = MAML("MlpPolicy", env, n_train_tasks=4, seed=0, inner_lr=0.1)
    maml.adapt(env, n_iterations=4)
    assert lrs == pytest.approx([0.1, 0.05, 0.05, 0.05])


@pytest.mark.parametrize("algo", [MAESN, LSBaseline])
def test_step_scale_multiplies_every_adaptation_step(algo: type, monkeypatch: pytest.MonkeyPatch) -> None:
    scaled = _recorded_scales(small_point_model(algo), monkeypatch)  # the default: twice the reference's
    assert [scale for scale, _ in scaled] == [
        2 * scale for scale, _ in _recorded_scales(small_point_model(algo), monkeypatch, step_scale=1.0)
    ]

    # from the prior, the first step is linear in its size: twice the step, twice the move, same batch
    def first_step(step_scale: float) -> tuple[np.ndarray, np.ndarray]:
        env = make_meta_vec_env(POINT, n_tasks=1, envs_per_task=4, seed=1, latent_dim=2,
                                env_kwargs={"max_episode_steps": 4})  # fmt: skip
        result = small_point_model(algo).adapt(
            env, n_iterations=1, evaluate=False, seed=3, step_scale=step_scale
        )
        return result.latent_means[1], result.latent_log_stds[1]

    (mean, log_std), (mean2, log_std2) = first_step(1.0), first_step(2.0)
    assert (
        np.abs(mean).max() > 0
        and np.allclose(mean2, 2 * mean, atol=1e-6)
        and np.allclose(log_std2, 2 * log_std, atol=1e-6)
    )
    with pytest.raises(ValueError, match="step_scale must be a finite number > 0, got 0"):
        small_point_model(algo).adapt(
            make_meta_vec_env(POINT, n_tasks=1, envs_per_task=2, seed=1, latent_dim=2), step_scale=0
        )


def test_natural_gradient_governs_meta_training_and_adaptation(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    model = small_point_model(MAESN, natural_gradient=True)
    calls = []
    inner_update = TaskLatents.inner_update

    def record(self, *args, **kwargs):
        calls.append(kwargs.get("natural", False))
        return inner_update(self, *args, **kwargs)

    monkeypatch.setattr(TaskLatents, "inner_update", record)
    model.learn(1)
    assert calls and all(calls)  # the sampling step and the outer graph's inner step
    model.save(tmp_path / "model")
    loaded = MAESN.load(tmp_path / "model", env=model.env)
    assert loaded.natural_gradient
    monkeypatch.undo()
    assert all(natural for _, natural in _recorded_scales(loaded, monkeypatch))
    assert not any(natural for _, natural in _recorded_scales(loaded, monkeypatch, natural_gradient=False))
    with pytest.raises(TypeError, match="natural_gradient must be a bool"):
        small_point_model(MAESN, natural_gradient="yes")
    with pytest.raises(ValueError, match="latent_gradient must be one of"):
        small_point_model(MAESN, latent_gradient="pathwise")


def test_equal_budgets_give_equal_env_steps() -> None:
    """Every method's adaptation curve counts env steps per task slot: the same budget, the same steps."""
    horizon, slots, episodes, iterations = 4, 2, 4, 2
    kwargs = {"n_tasks": slots, "envs_per_task": 2, "seed": 0, "env_kwargs": {"max_episode_steps": horizon}}
    adapt = {"n_iterations": iterations, "episodes_per_iteration": episodes, "seed": 0}
    curves = {}
    for algo in (MAESN, LSBaseline):
        env = make_meta_vec_env(POINT, latent_dim=2, **kwargs)
        curves[algo.__name__] = algo("MlpPolicy", env, n_train_tasks=4, seed=0).adapt(
            env, evaluate=False, **adapt
        )
    env = make_meta_vec_env(POINT, **kwargs)
    curves["MAML"] = MAML("MlpPolicy", env, n_train_tasks=4, seed=0).adapt(env, **adapt)
    env = make_meta_vec_env(POINT, vectorization="dummy", **kwargs)  # one PPO per slot: single envs
    mtppo = MultiTaskPPO("MlpPolicy", env, n_train_tasks=4, seed=0, n_steps=horizon, batch_size=8)
    curves["finetune_ppo"] = finetune_ppo(mtppo, env, **adapt)
    curves["ppo_from_scratch"] = ppo_from_scratch(env, **adapt)
    rl2_env = make_meta_vec_env(POINT, wrapper_class=RL2Wrapper,
                                wrapper_kwargs={"episodes_per_trial": iterations + 1}, **kwargs)  # fmt: skip
    rl2 = RL2("MlpLstmPolicy", rl2_env, n_train_tasks=4, seed=0, n_steps=12)
    curves["RL2"] = rl2.adapt(rl2_env, episodes_per_iteration=episodes, seed=0)
    expected = horizon * episodes * np.arange(1, iterations + 2)
    for name, curve in curves.items():
        np.testing.assert_array_equal(curve.env_steps, expected, err_msg=name)


@pytest.mark.determinism
def test_fisher_subsample_keeps_the_trust_region_and_reproduces(tmp_path) -> None:
    from stable_baselines3.common.logger import configure

    def run() -> tuple[MAESN, np.ndarray]:
        model = small_point_model(MAESN, fisher_subsample=0.25, max_kl=0.01, outer_update="trpo")
        model.set_logger(configure(str(tmp_path), ["csv"]))
        model.learn(200)
        progress = np.genfromtxt(tmp_path / "progress.csv", delimiter=",", names=True)
        return model, np.atleast_1d(progress["traintrpo_kl"])

    first, kls = run()
    assert np.all(kls <= 0.01 + 1e-9)  # the line search checks the KL on every step
    second, _ = run()
    for a, b in zip(first.policy.parameters(), second.policy.parameters(), strict=True):
        th.testing.assert_close(a, b)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="fisher_subsample"):
            small_point_model(MAESN, fisher_subsample=bad)
