"""The proximal outer step (``outer_update="ppo"``) of MAESN, LSBaseline and MAML: the clipped surrogate
against its closed form, its gradient at ratio 1 against TRPO's surrogate, the latent gradient against
the toy's true gradient, early stopping, the reduction to a vanilla step, exact resume."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch as th

from maesn_sb3 import MAESN, MAML, LSBaseline, make_meta_vec_env
from maesn_sb3.common.proximal import approx_kl, clipped_surrogate
from tests.test_maesn_gradients import angle, toy_model, true_latent_gradient

ENV_ID = "maesn_sb3/PointNav2D-v0"
pytestmark = pytest.mark.filterwarnings(r"ignore:learn\(\) runs whole meta-iterations")


def small_env(latent: bool, seed: int = 0, n_tasks: int = 4) -> Any:
    kwargs = {"latent_dim": 2} if latent else {}
    return make_meta_vec_env(
        ENV_ID, n_tasks=n_tasks, envs_per_task=3, seed=seed, env_kwargs={"max_episode_steps": 10}, **kwargs
    )


def parameters(model: Any) -> th.Tensor:
    tensors = [p.detach().flatten() for p in model.policy.parameters()]
    if hasattr(model, "latents"):
        tensors += [p.detach().flatten() for p in model.latents.parameters()]
    return th.cat(tensors)


# -- the clipped surrogate ----------------------------------------------------------------------------------
def test_clipped_surrogate_gradient_is_the_closed_form() -> None:
    """d/dr min(r A, clip(r, 1-c, 1+c) A) is A, except 0 where r is past 1 + c with A > 0 or below 1 - c
    with A < 0 (the ratio's push past the clip range stops); clip_range=inf is r A."""
    ratio = th.tensor([0.5, 0.9, 1.0, 1.1, 1.5, 0.5, 0.9, 1.0, 1.1, 1.5], requires_grad=True)
    advantages = th.tensor([2.0] * 5 + [-3.0] * 5)
    (grad,) = th.autograd.grad(clipped_surrogate(ratio, advantages, 0.2).sum(), ratio)
    expected = th.tensor([2.0, 2.0, 2.0, 2.0, 0.0, 0.0, -3.0, -3.0, -3.0, -3.0])
    assert th.equal(grad, expected)
    (grad,) = th.autograd.grad(clipped_surrogate(ratio, advantages, math.inf).sum(), ratio)
    assert th.equal(grad, advantages)
    values = clipped_surrogate(ratio.detach(), advantages, 0.2)
    assert th.allclose(values[[4, 5]], th.tensor([1.2 * 2.0, 0.8 * -3.0]))


def test_approx_kl_is_schulmans_estimator() -> None:
    """mean((r - 1) - log r): 0 at r = 1, and for samples from N(0, 1) with the new law N(m, 1), the
    expectation is KL(N(0, 1) || N(m, 1)) = m^2 / 2."""
    assert approx_kl(th.zeros(5)) == 0.0
    x = th.randn(200_000, generator=th.Generator().manual_seed(0))
    m = 0.3
    log_ratio = -0.5 * (x - m) ** 2 + 0.5 * x**2
    assert approx_kl(log_ratio) == pytest.approx(m**2 / 2, rel=0.03)


# -- at ratio 1, the proximal objective's gradient is TRPO's --------------------------------------------
def captured_objectives(model: Any) -> tuple[list[th.Tensor], Any, Any, int, tuple]:
    """TRPO's loss and the proximal objective of the model's next meta-iteration (same batch), and the
    arguments of its outer update (the model is left with ``outer_update="ppo"``)."""
    captured: dict[str, Any] = {}
    update = model._outer_update
    model._outer_update = lambda *args: captured.update(args=args)
    model.learn(1)
    model._outer_update = update

    def take_trpo(params: Any, loss_fn: Any, *rest: Any) -> None:
        captured.update(params=list(params), loss_fn=loss_fn)

    def take_proximal(params: Any, objective: Any, n_slots: int, after_step: Any = None) -> None:
        captured.update(objective=objective, n_slots=n_slots)

    model._trpo_update, model._proximal_update = take_trpo, take_proximal
    model.outer_update = "trpo"
    model._outer_update(*captured["args"])
    model.outer_update = "ppo"
    model._outer_update(*captured["args"])
    del model._trpo_update, model._proximal_update
    return (
        captured["params"],
        captured["loss_fn"],
        captured["objective"],
        captured["n_slots"],
        captured["args"],
    )


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (MAESN, {"latent_gradient": "reparameterization"}),
        (MAESN, {"latent_gradient": "score_function", "inner_steps": 2}),
        (LSBaseline, {}),
        (MAML, {}),  # second order, through ProMP's LVC inner step
        (MAML, {"first_order": True}),
    ],
)
def test_at_ratio_one_the_clipped_gradient_is_trpos(cls: type, kwargs: dict) -> None:
    """First epoch, first minibatch (all task slots): every parameter group (policy, latent tables, step
    sizes) gets the gradient of TRPO's surrogate, MAML's policy through its inner step; with 2 of 4
    slots, the gradient of those slots' share of it."""
    latent = cls is not MAML
    extra = {} if latent else {"inner_estimator": "lvc"}  # the same inner step for both updates
    model = cls("MlpPolicy", small_env(latent), n_train_tasks=6, seed=0, **kwargs, **extra)
    params, loss_fn, objective, n_slots, _ = captured_objectives(model)
    trpo = th.autograd.grad(loss_fn(), params, allow_unused=True)
    loss, log_ratio = objective(np.arange(n_slots))
    assert float(log_ratio.abs().max()) < 1e-5  # ratio 1 (up to rounding of the same maths)
    proximal = th.autograd.grad(loss, params, allow_unused=True)
    assert len(params) >= (8 if cls is MAESN else 6)
    for expected, got in zip(trpo, proximal, strict=True):
        assert expected is not None and float(expected.abs().max()) > 0
        th.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)
    if cls is MAESN:  # a minibatch's loss: its slots' share, rescaled to a mean over its slots
        half, _ = objective(np.array([0, 2]))
        other, _ = objective(np.array([1, 3]))
        th.testing.assert_close((half + other) / 2, loss, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("latent_gradient", ["reparameterization", "score_function"])
def test_clipped_latent_gradient_points_along_the_true_gradient(latent_gradient: str) -> None:
    """The closed-form truth test of the TRPO surrogate, on the proximal objective at ratio 1."""
    model, index = toy_model(latent_gradient, seed=0)
    model.outer_update = "ppo"
    mean, log_std = model._pre(index)
    truth = true_latent_gradient(model, mean[0], log_std[0])
    post, _ = model._sample(model.env, mean, log_std, n_rounds=16)
    loss, _ = model._clipped_objective(index, [], post)(np.array([0]))
    (grad,) = th.autograd.grad(loss, model.latents.means)
    assert angle(-grad[0].numpy(), truth) < 5.0


# -- the update's mechanics ---------------------------------------------------------------------------------
def record_stats(model: Any) -> list:
    stats: list = []
    update = model._proximal_update

    def recorded(*args: Any, **kwargs: Any) -> Any:
        stats.append(update(*args, **kwargs))
        return stats[-1]

    model._proximal_update = recorded
    return stats


@pytest.mark.parametrize("cls", [MAESN, MAML])
def test_target_kl_stops_the_update_early(cls: type) -> None:
    latent = cls is not MAML
    model = cls("MlpPolicy", small_env(latent), n_train_tasks=6, seed=0, outer_update="ppo", target_kl=1e-9)
    stats = record_stats(model)
    model.learn(1)
    assert stats[0].stopped_early and stats[0].n_steps == 1  # the first minibatch is at ratio 1
    model = cls("MlpPolicy", small_env(latent), n_train_tasks=6, seed=0, outer_update="ppo", target_kl=None)
    stats = record_stats(model)
    model.learn(1)
    assert not stats[0].stopped_early and stats[0].n_steps == model.n_epochs * 4  # 5 minibatches of 4 slots


def test_one_epoch_without_clipping_is_one_vanilla_step() -> None:
    """n_epochs=1, one minibatch, clip_range=inf and SGD: the parameters move by -lr times the gradient
    of TRPO's surrogate."""
    model = MAESN(
        "MlpPolicy", small_env(True), n_train_tasks=6, seed=0, outer_update="ppo",
        n_epochs=1, n_minibatches=1, clip_range=math.inf, target_kl=None,
    )  # fmt: skip
    lr = 0.05
    model.outer_optimizer = th.optim.SGD(model._outer_parameters(), lr=lr)
    model.lr_schedule = lambda _: lr
    params, loss_fn, _, _, args = captured_objectives(model)
    before = [p.detach().clone() for p in params]
    gradient = th.autograd.grad(loss_fn(), params)
    model._outer_update(*args)
    for start, p, g in zip(before, params, gradient, strict=True):
        th.testing.assert_close(p.detach(), start - lr * g, rtol=1e-5, atol=1e-7)


def test_adam_leaves_the_latent_rows_of_tasks_not_drawn_alone() -> None:
    """After an update has given Adam momentum on some rows, the next update moves only the rows of the
    tasks it drew."""
    model = MAESN("MlpPolicy", small_env(True), n_train_tasks=8, seed=0, outer_update="ppo")
    model.learn(1)
    *_, args = captured_objectives(model)
    index = args[0].numpy()
    tables = [model.latents.means, model.latents.log_stds]
    before = [t.detach().clone() for t in tables]
    model._outer_update(*args)
    undrawn = np.setdiff1d(np.arange(8), index)
    assert len(undrawn) > 0
    for table, start in zip(tables, before, strict=True):
        assert th.equal(table.detach()[undrawn], start[undrawn])
        assert not th.equal(table.detach()[index], start[index])


@pytest.mark.parametrize("cls", [MAESN, LSBaseline])
def test_latent_tables_move_at_the_latent_learning_rate(cls: type) -> None:
    """Adam's first step moves every parameter with a gradient by its group's rate (``lr * sign(g)``):
    the policy by ``learning_rate``, the drawn latent rows by ``latent_learning_rate``; both follow the
    schedule in proportion."""
    lr, latent_lr = 1e-3, 0.05
    model = cls(
        "MlpPolicy", small_env(True), n_train_tasks=6, seed=0, outer_update="ppo", n_epochs=1,
        n_minibatches=1, target_kl=None, learning_rate=lambda progress: lr * progress,
        latent_learning_rate=latent_lr,
    )  # fmt: skip
    *_, args = captured_objectives(model)
    index = args[0]
    model._current_progress_remaining = 0.5
    policy = [p for p in model._actor_parameters() if p.requires_grad]
    before = [p.detach().clone() for p in [*policy, model.latents.means]]
    model._outer_update(*args)
    steps = [(p.detach() - b).abs() for p, b in zip([*policy, model.latents.means], before, strict=True)]
    policy_step = th.cat([s.flatten() for s in steps[:-1]])
    assert policy_step.max().item() == pytest.approx(0.5 * lr, rel=1e-3)
    assert steps[-1][index].max().item() == pytest.approx(0.5 * latent_lr, rel=1e-3)
    assert [g["lr"] for g in model.outer_optimizer.param_groups] == pytest.approx([0.5 * lr, 0.5 * latent_lr])


@pytest.mark.parametrize("cls", [MAESN, MAML])
def test_save_load_learn_continues_exactly(cls: type, tmp_path) -> None:
    """The optimizer's state, the minibatch generator and MAML's inner KL weight travel with the model."""
    latent = cls is not MAML

    def model() -> Any:
        return cls("MlpPolicy", small_env(latent), n_train_tasks=6, seed=0, outer_update="ppo")

    budget = 2 * 4 * 3 * 10
    straight = model().learn(budget)
    straight.save(tmp_path / "model")
    straight.learn(budget, reset_num_timesteps=False)
    resumed = cls.load(tmp_path / "model", env=small_env(latent))
    assert resumed.outer_update == "ppo" and len(resumed.outer_optimizer.state) > 0
    resumed.learn(budget, reset_num_timesteps=False)
    assert th.equal(parameters(resumed), parameters(straight))
    if cls is MAML:
        assert resumed.inner_kl_coef == straight.inner_kl_coef


def test_bad_proximal_settings_are_refused() -> None:
    env = small_env(True)
    for name, value, message in [
        ("outer_update", "sgd", r"outer_update must be one of \('trpo', 'ppo'\), got 'sgd'"),
        ("n_epochs", 0, "n_epochs must be an int >= 1, got 0"),
        ("n_minibatches", 1.5, "n_minibatches must be an int >= 1, got 1.5"),
        ("clip_range", 0, r"clip_range must be a number > 0 \(inf: no clipping\), got 0"),
        ("target_kl", -1, "target_kl must be a finite number > 0, got -1"),
        ("latent_learning_rate", 0, "latent_learning_rate must be a finite number > 0, got 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            MAESN("MlpPolicy", env, n_train_tasks=4, **{"outer_update": "ppo", name: value})
    with pytest.raises(ValueError, match="inner_estimator must be 'reinforce', 'lvc' or None, got 'x'"):
        MAML("MlpPolicy", small_env(False), n_train_tasks=4, inner_estimator="x")
