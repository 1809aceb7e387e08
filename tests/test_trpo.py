"""TRPO's Fisher-vector products and conjugate gradient against closed forms.

A linear policy's Fisher is known analytically: for action means ``W x`` and a state-independent
log-std ``s`` (diagonal Gaussian), the mean KL's Hessian at the old parameters is
``mean_n x_n x_n^T (x) diag(1 / sigma^2)`` on ``W`` and ``2 I`` on ``s``; for logits ``W x`` (categorical)
it is ``mean_n x_n x_n^T (x) (diag(p_n) - p_n p_n^T)``.
"""

from __future__ import annotations

import copy

import pytest
import torch as th
from stable_baselines3.common.distributions import CategoricalDistribution, DiagGaussianDistribution

from maesn_sb3 import MAESN, MAML, LSBaseline, make_meta_vec_env
from maesn_sb3.common import trpo
from maesn_sb3.common.trpo import (
    action_kl,
    conjugate_gradient,
    distribution_tensors,
    gauss_newton_vector_product,
    kl_hessian_vector_product,
    trpo_step,
)
from tests.conftest import DiscretePoint

N, D, A = 64, 3, 2


def linear_problem(kind: str, seed: int = 0) -> tuple[list[th.Tensor], object, object, th.Tensor]:
    """Parameters, the KL (closure), its Gauss-Newton terms (closure) and the closed-form Fisher."""
    generator = th.Generator().manual_seed(seed)
    x = th.randn(N, D, generator=generator, dtype=th.float64)
    weight = th.randn(A, D, generator=generator, dtype=th.float64, requires_grad=True)
    if kind == "gaussian":
        log_std = (0.3 * th.randn(A, generator=generator, dtype=th.float64)).requires_grad_(True)
        params = [weight, log_std]

        def distribution() -> DiagGaussianDistribution:
            return DiagGaussianDistribution(A).proba_distribution(x @ weight.T, log_std)

        precision = th.exp(-2 * log_std.detach())
        fisher_weight = th.einsum("nd,ne,a,ab->adbe", x, x, precision, th.eye(A, dtype=th.float64)) / N
        fisher = th.block_diag(fisher_weight.reshape(A * D, A * D), 2 * th.eye(A, dtype=th.float64))
    else:
        params = [weight]

        def distribution() -> CategoricalDistribution:
            return CategoricalDistribution(A).proba_distribution(x @ weight.T)

        p = th.softmax(x @ weight.detach().T, -1)
        curvature = th.diag_embed(p) - p[:, :, None] * p[:, None, :]
        fisher = th.einsum("nd,ne,nab->adbe", x, x, curvature).reshape(A * D, A * D) / N
    with th.no_grad():
        old = copy.copy(distribution())

    def kl_fn() -> th.Tensor:
        return action_kl(old, distribution()).mean()

    def terms_fn() -> tuple:
        tensors, rebuild = distribution_tensors(distribution())
        return tensors, lambda outputs: action_kl(old, rebuild(outputs)).mean()

    return params, kl_fn, terms_fn, fisher


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("seed", [0, 1])
def test_fisher_vector_products_match_the_closed_form_fisher(kind: str, seed: int) -> None:
    params, kl_fn, terms_fn, fisher = linear_problem(kind, seed)
    gauss_newton = gauss_newton_vector_product(params, terms_fn())
    double_backward = kl_hessian_vector_product(params, kl_fn())
    for k in range(3):
        vector = th.randn(fisher.shape[0], generator=th.Generator().manual_seed(k), dtype=th.float64)
        th.testing.assert_close(gauss_newton(vector), fisher @ vector)
        th.testing.assert_close(double_backward(vector), fisher @ vector)


def test_the_two_products_differ_away_from_the_kl_minimum() -> None:
    """Where the KL's gradient in the distributions' tensors is not zero (here after the stds moved)
    its Hessian has a second term the Gauss-Newton form leaves out: the equality of the two products
    at the step's start (below) is a check, not a tautology of the implementation."""
    params, kl_fn, terms_fn, fisher = linear_problem("gaussian")
    with th.no_grad():
        params[1] += 0.5
    vector = th.ones(fisher.shape[0], dtype=th.float64)
    gauss_newton = gauss_newton_vector_product(params, terms_fn())(vector)
    assert not th.allclose(gauss_newton, kl_hessian_vector_product(params, kl_fn())(vector))


def test_conjugate_gradient_solves_a_small_system_exactly() -> None:
    generator = th.Generator().manual_seed(0)
    root = th.randn(6, 6, generator=generator, dtype=th.float64)
    matrix, b = (
        root @ root.T + 0.1 * th.eye(6, dtype=th.float64),
        th.randn(6, generator=generator, dtype=th.float64),
    )
    calls = []

    def product(vector: th.Tensor) -> th.Tensor:
        calls.append(1)
        return matrix @ vector

    th.testing.assert_close(conjugate_gradient(product, b, max_iter=6), th.linalg.solve(matrix, b))
    assert len(calls) == 6  # one product per iteration, none for the start (x = 0)
    assert th.equal(conjugate_gradient(product, th.zeros(6, dtype=th.float64), max_iter=6), th.zeros(6))


def point_env(**kwargs: object) -> object:
    return make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=2, envs_per_task=3, seed=0,
                             env_kwargs={"max_episode_steps": 6}, **kwargs)  # fmt: skip


def first_step(model: object, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The arguments of the model's first TRPO step, its parameters put back where the step started."""
    import maesn_sb3.common.outer as base

    captured: dict = {}

    def capture(params, loss_fn, kl_fn, max_kl, *args):
        params = list(params)
        captured.update(params=params, loss_fn=loss_fn, kl_fn=kl_fn, max_kl=max_kl, terms_fn=args[-2])
        captured["start"] = [p.detach().clone() for p in params]
        return trpo_step(params, loss_fn, kl_fn, max_kl, *args)

    monkeypatch.setattr(base, "trpo_step", capture)
    model.learn(1)
    with th.no_grad():
        for param, start in zip(captured["params"], captured["start"], strict=True):
            param.copy_(start)
    return captured


@pytest.mark.parametrize(
    ("algo", "kwargs"),
    [
        (MAESN, {"latent_gradient": "reparameterization", "natural_gradient": True}),
        (MAESN, {"latent_gradient": "score_function"}),
        (LSBaseline, {}),
        (MAML, {}),
        (MAML, {"first_order": True, "wrapper_class": DiscretePoint}),
    ],
)
def test_gauss_newton_products_equal_the_double_backward_ones_on_the_algorithms(
    algo: type, kwargs: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through MAESN's inner latent step (and MAML's inner policy step) the Gauss-Newton product at the
    step's start, summed over the batch's chunks, equals the double-backward Hessian-vector product of
    the KL."""
    monkeypatch.setattr(trpo, "FISHER_CHUNK_STEPS", 10)  # 36 steps: MAESN's products in 4 chunks
    env_kwargs = {"wrapper_class": kwargs.pop("wrapper_class")} if "wrapper_class" in kwargs else {}
    env = point_env(**env_kwargs) if algo is MAML else point_env(latent_dim=2, **env_kwargs)
    model = algo("MlpPolicy", env, n_train_tasks=4, seed=0, outer_update="trpo", **kwargs)
    step = first_step(model, monkeypatch)
    params = step["params"]
    chunks = [gauss_newton_vector_product(params, terms) for terms in step["terms_fn"]()]
    assert len(chunks) == (1 if algo is MAML else 4)

    def gauss_newton(vector: th.Tensor) -> th.Tensor:
        return sum(product(vector) for product in chunks)

    double_backward = kl_hessian_vector_product(params, step["kl_fn"]())
    size = sum(p.numel() for p in params)
    for k in range(2):
        vector = th.randn(size, generator=th.Generator().manual_seed(k))
        expected = double_backward(vector)
        assert expected.norm() > 0
        th.testing.assert_close(gauss_newton(vector), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.determinism
def test_fisher_threads_give_the_same_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunks' products computed on two threads are summed in order: the very same step."""
    monkeypatch.setattr(trpo, "FISHER_CHUNK_STEPS", 10)
    model = MAESN("MlpPolicy", point_env(latent_dim=2), n_train_tasks=4, seed=0, outer_update="trpo")
    step = first_step(model, monkeypatch)
    params, results = step["params"], []
    for threads in (1, 2, 3):
        with th.no_grad():
            for param, start in zip(params, step["start"], strict=True):
                param.copy_(start)
        stats = trpo_step(
            params, step["loss_fn"], step["kl_fn"], step["max_kl"],
            fisher_terms_fn=step["terms_fn"], fisher_threads=threads,
        )  # fmt: skip
        assert stats.accepted
        results.append(th.cat([p.detach().flatten() for p in params]))
    assert th.equal(results[0], results[1]) and th.equal(results[0], results[2])
    with pytest.raises(ValueError, match="fisher_threads must be an int >= 1, got 0"):
        trpo_step(params, step["loss_fn"], step["kl_fn"], 0.01, fisher_threads=0)
    model.n_fisher_threads = 0
    with pytest.raises(ValueError, match="n_fisher_threads must be an int >= 1, got 0"):
        model.learn(1)


#: Run in a fresh interpreter, so that neither this suite's conftest (torch at one thread) nor the
#: caller's environment hides what OpenMP does in the Fisher pool's threads.
CLEAN_PROCESS_RUN = """
import sys
import torch as th
from maesn_sb3 import MAESN, make_meta_vec_env
from maesn_sb3.common import trpo
from maesn_sb3.common.trpo import trpo_step

if {main_threads} is not None:
    th.set_num_threads({main_threads})
trpo.FISHER_CHUNK_STEPS = 10
from stable_baselines3.common.logger import configure


def model(fisher_threads):
    env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", 4, 2, latent_dim=2, seed=0)
    made = MAESN("MlpPolicy", env, n_train_tasks=4, seed=0, outer_update="trpo")
    made.n_fisher_threads = fisher_threads
    made.set_logger(configure(None, [""]))
    return made


def parameters(made):
    return th.cat([p.detach().flatten() for p in made.policy.parameters()])


# a whole meta-training run for n_fisher_threads 1 and 2 (learn sets torch to the model's one thread)
runs = []
for fisher_threads in (1, 2):
    made = model(fisher_threads)
    made.learn(2 * 4 * 2 * made.env.horizon)
    runs.append(parameters(made))
# a bare trpo_step outside learn, at the caller's thread count, for 1, 2 and 3 Fisher threads
made, captured = model(1), {{}}
made._trpo_update = lambda *args: captured.update(args=args)
made.learn(1)
params, loss_fn, kl_fn, terms_fn = captured["args"]
params = list(params)
start = [p.detach().clone() for p in params]
steps = []
for fisher_threads in (1, 2, 3):
    with th.no_grad():
        for param, value in zip(params, start):
            param.copy_(value)
    stats = trpo_step(params, loss_fn, kl_fn, 0.01, fisher_terms_fn=terms_fn, fisher_threads=fisher_threads)
    assert stats.accepted
    steps.append(th.cat([p.detach().flatten() for p in params]))
same_step = all(th.equal(steps[0], s) for s in steps[1:])
print("learn", th.equal(runs[0], runs[1]), "step", same_step, len(terms_fn()))
"""


@pytest.mark.determinism
@pytest.mark.parametrize(("omp_num_threads", "main_threads"), [(None, 1), ("3", None)])
def test_the_step_does_not_depend_on_the_fisher_threads_in_a_clean_process(
    omp_num_threads: str | None, main_threads: int | None
) -> None:
    """Whatever ``OMP_NUM_THREADS`` and torch's thread count in the caller: the same step for 1, 2 and 3
    Fisher threads, and the same meta-training for ``n_fisher_threads`` 1 and 2 (bit for bit). Before
    the Fisher pool's threads took the caller's thread count, a bare ``torch.set_num_threads(1)``
    (OpenMP's team size of the calling thread only) left them at OpenMP's default and the step changed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    environment["PYTHONPATH"] = str(root)
    if omp_num_threads is not None:
        environment["OMP_NUM_THREADS"] = omp_num_threads
    done = subprocess.run(
        [sys.executable, "-c", CLEAN_PROCESS_RUN.format(main_threads=main_threads)],
        cwd=root, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    learn, same_learn, step, same_step, n_chunks = done.stdout.split()[-5:]
    assert (learn, step) == ("learn", "step") and int(n_chunks) > 2
    assert same_learn == "True", "meta-training changed with n_fisher_threads"
    assert same_step == "True", "the TRPO step changed with fisher_threads"
