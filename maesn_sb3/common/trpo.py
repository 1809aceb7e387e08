"""One trust-region step on an arbitrary list of parameters (TRPO's natural-gradient update)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch as th
from sb3_contrib.common.utils import conjugate_gradient_solver
from stable_baselines3.common.distributions import Distribution, kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters


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


def _flat_grad(output: th.Tensor, params: Sequence[th.Tensor], create_graph: bool = False) -> th.Tensor:
    grads = th.autograd.grad(output, params, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return th.cat(
        [(th.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params, strict=True)]
    )


def trpo_step(
    params: Sequence[th.nn.Parameter],
    loss_fn: Callable[[], th.Tensor],
    kl_fn: Callable[[], th.Tensor],
    max_kl: float,
    cg_max_steps: int = 10,
    cg_damping: float = 1e-5,
    line_search_shrinking_factor: float = 0.8,
    line_search_max_iter: int = 15,
    fisher_kl_fn: Callable[[], th.Tensor] | None = None,
) -> TRPOStats:
    """Minimise ``loss_fn`` under ``kl_fn() <= max_kl`` with a conjugate-gradient natural step.

    ``kl_fn`` must return the mean KL between the distributions at the parameters when the step
    starts (held constant inside it) and the current ones; the step is found by conjugate gradient
    on its Hessian (sb3-contrib's solver), scaled to the KL limit, then shrunk by a backtracking line
    search until the loss improves and the KL limit holds. Parameters are restored if no step does,
    and on any exception; a loss or gradient that is not finite raises ``FloatingPointError``.
    ``fisher_kl_fn`` (default ``kl_fn``) gives the KL whose Hessian the Fisher-vector products use,
    e.g. on a subsample of the batch (rllab's ``subsample_factor``); the line search always checks
    ``kl_fn``.
    """
    params = list(params)
    old = parameters_to_vector(params).detach().clone()
    try:
        return _trpo_step(
            params,
            old,
            loss_fn,
            kl_fn,
            fisher_kl_fn or kl_fn,
            max_kl,
            cg_max_steps,
            cg_damping,
            line_search_shrinking_factor,
            line_search_max_iter,
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
    fisher_kl_fn: Callable[[], th.Tensor],
    max_kl: float,
    cg_max_steps: int,
    cg_damping: float,
    line_search_shrinking_factor: float,
    line_search_max_iter: int,
) -> TRPOStats:
    loss = loss_fn()
    _check_finite("loss", loss)
    loss_grad = _flat_grad(loss, params)
    _check_finite("loss gradient", loss_grad)
    kl_grad = _flat_grad(fisher_kl_fn(), params, create_graph=True)

    def fisher_vector(vector: th.Tensor) -> th.Tensor:
        return _flat_grad(kl_grad @ vector, params) + cg_damping * vector

    direction = conjugate_gradient_solver(fisher_vector, -loss_grad, max_iter=cg_max_steps)
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
