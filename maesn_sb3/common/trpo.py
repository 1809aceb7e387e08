"""One trust-region step on an arbitrary list of parameters (TRPO's natural-gradient update)."""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch as th
from stable_baselines3.common.distributions import Distribution, kl_divergence
from torch.distributions import Categorical, Normal
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from maesn_sb3.validators import check_int

#: A KL in Gauss-Newton form: the tensors it depends on the parameters through (evaluated at the
#: step's start) and the KL as a function of tensors of their shapes.
KLTerms = tuple[list[th.Tensor], Callable[[Sequence[th.Tensor]], th.Tensor]]


@dataclass
class TRPOStats:
    """What one trust-region step did."""

    loss_before: float
    loss_after: float
    kl: float
    accepted: bool
    line_search_steps: int


def action_kl(old: Distribution, new: Distribution) -> th.Tensor:
    """KL(old || new) per sample, summed over action dimensions (rllab's diagonal-Gaussian KL)."""
    kl = kl_divergence(old, new)
    return kl.sum(-1) if kl.dim() > 1 else kl


def distribution_tensors(
    distribution: Distribution,
) -> tuple[list[th.Tensor], Callable[[Sequence[th.Tensor]], Distribution]]:
    """The tensors an SB3 action distribution is built from (a diagonal Gaussian's means and stds, a
    categorical's logits) and a function that rebuilds it from tensors of the same shapes."""
    inner = distribution.distribution
    if isinstance(inner, Normal):
        names = ("loc", "scale")
    elif isinstance(inner, Categorical):
        names = ("logits",)
    else:
        raise TypeError(f"no Gauss-Newton form for {type(distribution).__name__} ({type(inner).__name__})")

    def rebuild(tensors: Sequence[th.Tensor]) -> Distribution:
        rebuilt = copy.copy(distribution)
        rebuilt.distribution = type(inner)(**dict(zip(names, tensors, strict=True)), validate_args=False)
        return rebuilt

    return [getattr(inner, name) for name in names], rebuild


#: Steps per chunk of the Fisher-vector products: the batch's Gauss-Newton matrix is summed over
#: chunks of this many steps, each with its own graphs, so a product's temporaries stay small. A
#: whole TRPO step of MAESN on PointNav2D's 20,000 steps ((100, 100) MLP, one thread) took 0.99 s in
#: one chunk, 0.92 s in chunks of 10,000, 0.68 s of 6,667, 0.72 s of 4,096 and 0.85 s of 2,048
#: (CPU time, medians of 11 rounds); the products agree to float rounding.
FISHER_CHUNK_STEPS = 4096


def fisher_chunks(
    n_steps: int, rows: th.Tensor | None = None, device: th.device | str = "cpu"
) -> list[th.Tensor]:
    """The steps of the Fisher-vector products (``rows``; None: all ``n_steps``) in chunks of
    :data:`FISHER_CHUNK_STEPS`."""
    rows = th.arange(n_steps, device=device) if rows is None else rows
    return list(rows.split(FISHER_CHUNK_STEPS))


def draw_fisher_rows(rng: np.random.Generator, n_steps: int, fraction: float) -> np.ndarray | None:
    """Sorted indices of ``round(fraction * n_steps)`` steps (at least one) drawn without replacement
    for the Fisher-vector products (rllab's ``subsample_factor``); None (every step) for ``fraction`` 1."""
    if fraction >= 1:
        return None
    return np.sort(rng.choice(n_steps, max(1, round(fraction * n_steps)), replace=False))


def fisher_pool(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` Python threads for the chunks' Fisher-vector products, each running torch
    at the calling thread's intra-op thread count. OpenMP keeps the team size per thread: a new thread
    starts at OpenMP's default (``OMP_NUM_THREADS``, else one per core) whatever ``torch.set_num_threads``
    said in the caller, so without this its reductions split differently and the step changed with the
    machine's core count."""
    return ThreadPoolExecutor(threads, initializer=th.set_num_threads, initargs=(th.get_num_threads(),))


def _flat_grad(output: th.Tensor, params: Sequence[th.Tensor], create_graph: bool = False) -> th.Tensor:
    grads = th.autograd.grad(output, params, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return _flat(grads, params)


def _flat(grads: Sequence[th.Tensor | None], like: Sequence[th.Tensor]) -> th.Tensor:
    return th.cat(
        [(th.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, like, strict=True)]
    )


def kl_hessian_vector_product(params: Sequence[th.Tensor], kl: th.Tensor) -> Callable[[th.Tensor], th.Tensor]:
    """``v -> H v`` with ``H`` the Hessian of ``kl`` in ``params`` (double backward; any graph)."""
    kl_grad = _flat_grad(kl, params, create_graph=True)
    return lambda vector: _flat_grad(kl_grad @ vector, params)


def gauss_newton_vector_product(
    params: Sequence[th.Tensor], terms: KLTerms
) -> Callable[[th.Tensor], th.Tensor]:
    """``v -> J^T M J v``: the KL's Hessian in Gauss-Newton form, ``J`` the Jacobian of the KL's
    tensors ``y`` in ``params`` and ``M`` the KL's Hessian in ``y`` (the Fisher information of the
    distributions' own parameters; elementwise, hence cheap). Equal to the Hessian of the KL at the
    parameters where the KL is at its minimum (its gradient in ``y`` vanishes), i.e. TRPO's Fisher.

    Both graphs are built once: ``J v`` is the derivative of ``J^T u`` in ``u`` (the double-backward
    form of a Jacobian-vector product) and ``J^T w`` a backward pass, against a double backward
    through the KL's gradient for :func:`kl_hessian_vector_product`.
    """
    outputs, kl_of = terms
    leaves = [y.detach().requires_grad_(True) for y in outputs]
    kl_grad = th.autograd.grad(kl_of(leaves), leaves, create_graph=True)
    active = [i for i, y in enumerate(outputs) if y.requires_grad]  # the others are constants
    outputs, kl_grad = [outputs[i] for i in active], [kl_grad[i] for i in active]
    leaves = [leaves[i] for i in active]
    probes = [th.zeros_like(y, requires_grad=True) for y in outputs]
    vjp = th.autograd.grad(outputs, params, probes, create_graph=True, allow_unused=True)  # u -> J^T u
    used = [i for i, g in enumerate(vjp) if g is not None and g.requires_grad]
    sizes = [p.numel() for p in params]

    def product(vector: th.Tensor) -> th.Tensor:
        chunks = vector.split(sizes)
        tangents = [chunks[i].view_as(params[i]) for i in used]
        jv = th.autograd.grad([vjp[i] for i in used], probes, tangents, retain_graph=True, allow_unused=True)
        mjv = th.autograd.grad(kl_grad, leaves, _zeros_for_none(jv, probes), retain_graph=True)
        return _flat(th.autograd.grad(outputs, params, mjv, retain_graph=True, allow_unused=True), params)

    return product


def _zeros_for_none(grads: Sequence[th.Tensor | None], like: Sequence[th.Tensor]) -> list[th.Tensor]:
    return [th.zeros_like(p) if g is None else g for g, p in zip(grads, like, strict=True)]


def conjugate_gradient(
    matrix_vector: Callable[[th.Tensor], th.Tensor], b: th.Tensor, max_iter: int, residual_tol: float = 1e-10
) -> th.Tensor:
    """Solve ``A x = b`` by conjugate gradient from ``x = 0``, as rllab's ``krylov.cg`` (the reference's):
    ``max_iter`` products with ``A`` at most (sb3-contrib's solver starts from a random ``x``, which
    costs one product more and a draw from torch's global generator)."""
    x = th.zeros_like(b)
    residual, direction = b.clone(), b.clone()
    residual_norm = residual @ residual
    for _ in range(max_iter):
        if residual_norm < residual_tol:
            break
        product = matrix_vector(direction)
        alpha = residual_norm / (direction @ product)
        x += alpha * direction
        residual -= alpha * product
        new_norm = residual @ residual
        direction = residual + (new_norm / residual_norm) * direction
        residual_norm = new_norm
    return x


def trpo_step(
    params: Sequence[th.nn.Parameter],
    loss_fn: Callable[[], th.Tensor],
    kl_fn: Callable[[], th.Tensor],
    max_kl: float,
    cg_max_steps: int = 10,
    cg_damping: float = 1e-5,
    line_search_shrinking_factor: float = 0.8,
    line_search_max_iter: int = 15,
    fisher_terms_fn: Callable[[], Sequence[KLTerms]] | None = None,
    fisher_threads: int = 1,
) -> TRPOStats:
    """Minimise ``loss_fn`` under ``kl_fn() <= max_kl`` with a conjugate-gradient natural step.

    ``kl_fn`` must return the mean KL between the distributions at the parameters when the step
    starts (held constant inside it) and the current ones; the step is found by conjugate gradient
    on its Hessian (:func:`conjugate_gradient`), scaled to the KL limit, then shrunk by a backtracking line
    search until the loss improves and the KL limit holds. Parameters are restored if no step does,
    and on any exception; a loss or gradient that is not finite raises ``FloatingPointError``.
    ``fisher_terms_fn`` gives the KL whose Hessian the Fisher-vector products use in Gauss-Newton
    form (:func:`gauss_newton_vector_product`; the same matrix, cheaper) as a sum of terms, one per
    chunk of the batch (:func:`fisher_chunks`), possibly on a subsample of it (rllab's
    ``subsample_factor``); without it they double-backward through ``kl_fn``
    (:func:`kl_hessian_vector_product`). The line search always checks ``kl_fn``. ``fisher_threads``
    Python threads compute the chunks' products in parallel (torch releases the GIL), each at the
    caller's torch thread count (:func:`fisher_pool`); the chunks are summed in order, so the result
    does not depend on it.
    """
    fisher_threads = check_int("fisher_threads", fisher_threads)
    params = list(params)
    old = parameters_to_vector(params).detach().clone()
    try:
        return _trpo_step(
            params,
            old,
            loss_fn,
            kl_fn,
            fisher_terms_fn,
            max_kl,
            cg_max_steps,
            cg_damping,
            line_search_shrinking_factor,
            line_search_max_iter,
            fisher_threads,
        )
    except BaseException:
        with th.no_grad():
            vector_to_parameters(old, params)  # never leave a half-taken step behind
        raise


def _check_finite(name: str, value: th.Tensor) -> None:
    if not bool(th.isfinite(value).all()):
        raise FloatingPointError(
            f"the TRPO step's {name} is not finite (it holds {'nan' if th.isnan(value).any() else 'inf'}); "
            "the parameters were left unchanged. Rewards or advantages too large for float32 are the "
            "usual cause: scale or clip the env's rewards (VecNormalize, a reward wrapper)."
        )


def _trpo_step(
    params: list[th.nn.Parameter],
    old: th.Tensor,
    loss_fn: Callable[[], th.Tensor],
    kl_fn: Callable[[], th.Tensor],
    fisher_terms_fn: Callable[[], Sequence[KLTerms]] | None,
    max_kl: float,
    cg_max_steps: int,
    cg_damping: float,
    line_search_shrinking_factor: float,
    line_search_max_iter: int,
    fisher_threads: int,
) -> TRPOStats:
    loss = loss_fn()
    _check_finite("loss", loss)
    loss_grad = _flat_grad(loss, params)
    _check_finite("loss gradient", loss_grad)
    terms = None if fisher_terms_fn is None else list(fisher_terms_fn())
    threads = 1 if terms is None else min(fisher_threads, len(terms))
    with fisher_pool(threads) if threads > 1 else contextlib.nullcontext() as pool:
        each = map if pool is None else pool.map
        if terms is None:
            products = [kl_hessian_vector_product(params, kl_fn())]
        else:
            products = list(each(functools.partial(gauss_newton_vector_product, params), terms))

        def fisher_vector(vector: th.Tensor) -> th.Tensor:
            total = cg_damping * vector
            for part in each(lambda product: product(vector), products):
                total = total + part
            return total

        direction = conjugate_gradient(fisher_vector, -loss_grad, cg_max_steps)
        curvature = (direction @ fisher_vector(direction)).clamp_min(1e-12)
    full_step = th.sqrt(2 * max_kl / curvature) * direction
    loss_before = loss.item()
    with th.no_grad():
        for step in range(line_search_max_iter):
            vector_to_parameters(old + full_step * line_search_shrinking_factor**step, params)
            try:
                new_loss, kl = float(loss_fn()), float(kl_fn())
            except ValueError:  # a trial so far off that torch refuses its distributions (NaN): shrink
                continue
            if new_loss < loss_before and kl <= max_kl:  # False for NaN: the step is not taken
                return TRPOStats(loss_before, new_loss, kl, True, step + 1)
        vector_to_parameters(old, params)
    return TRPOStats(loss_before, loss_before, 0.0, False, line_search_max_iter)
