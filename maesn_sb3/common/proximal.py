"""A proximal outer step: epochs of a first-order optimizer over minibatches of whole task slots on a
clipped likelihood-ratio surrogate (PPO's, as ProMP applies it to meta-learning)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch as th

#: ``objective(slots)`` for a minibatch of task slots: its loss (the mean over those slots of each
#: slot's clipped surrogate, plus any penalty) and the log-ratios of new to old probabilities of its
#: samples (for the early stop's KL estimate).
MinibatchObjective = Callable[[np.ndarray], tuple[th.Tensor, th.Tensor]]


@dataclass
class ProximalStats:
    """What one proximal outer update did."""

    loss_before: float  #: the first minibatch's loss before any step
    approx_kl: float  #: mean over the minibatches stepped on of the KL estimate before their step
    clip_fraction: float  #: mean over them of the fraction of ratios outside the clip range
    n_steps: int  #: optimizer steps taken
    stopped_early: bool  #: whether ``target_kl`` stopped the epochs


def clipped_surrogate(ratio: th.Tensor, advantages: th.Tensor, clip_range: float) -> th.Tensor:
    """PPO's per-sample objective ``min(r A, clip(r, 1 - c, 1 + c) A)`` (to be maximised): its gradient
    in ``r`` is ``A`` except where the ratio has already moved past the clip range in the direction the
    advantage favours, where it is 0. With ``clip_range=inf`` it is ``r A`` itself."""
    if math.isinf(clip_range):
        return ratio * advantages
    return th.min(ratio * advantages, ratio.clamp(1 - clip_range, 1 + clip_range) * advantages)


def approx_kl(log_ratio: th.Tensor) -> float:
    """SB3's estimate of KL(old || new) from the samples' log-ratios: ``mean((r - 1) - log r)``
    (Schulman's low-variance estimator, >= 0)."""
    with th.no_grad():
        return float(((th.exp(log_ratio) - 1) - log_ratio).mean())


def proximal_update(
    params: list[th.Tensor],
    optimizer: th.optim.Optimizer,
    objective: MinibatchObjective,
    n_slots: int,
    n_epochs: int,
    n_minibatches: int,
    clip_range: float,
    target_kl: float | None,
    rng: np.random.Generator,
    after_step: Callable[[], None] | None = None,
) -> ProximalStats:
    """``n_epochs`` passes over the ``n_slots`` task slots in ``n_minibatches`` minibatches of whole slots
    (a fresh permutation from ``rng`` each epoch): per minibatch, one ``optimizer`` step on
    ``objective(slots)``, then ``after_step()``. As SB3's PPO, the update stops before a step whose
    minibatch estimates the KL to the sampling policy above ``1.5 * target_kl`` (None: never). A loss
    or gradient that is not finite raises ``FloatingPointError`` with ``params`` restored.
    ``clip_range`` only enters the statistics (the objective clips)."""
    start = [p.detach().clone() for p in params]
    loss_before, kls, clipped, stopped = math.nan, [], [], False
    try:
        for _ in range(n_epochs):
            for slots in np.array_split(rng.permutation(n_slots), min(n_minibatches, n_slots)):
                loss, log_ratio = objective(np.sort(slots))
                kl = approx_kl(log_ratio)
                if not kls:
                    loss_before = float(loss.detach())
                if target_kl is not None and kl > 1.5 * target_kl:
                    stopped = True
                    break
                _check_finite("loss", loss)
                optimizer.zero_grad()
                loss.backward()
                for p in params:
                    if p.grad is not None:
                        _check_finite("gradient", p.grad)
                optimizer.step()
                if after_step is not None:
                    after_step()
                kls.append(kl)
                with th.no_grad():
                    clipped.append(float((th.abs(th.exp(log_ratio) - 1) > clip_range).float().mean()))
            if stopped:
                break
    except FloatingPointError:
        with th.no_grad():
            for p, value in zip(params, start, strict=True):
                p.copy_(value)
        raise
    kl, clip_fraction = (float(np.mean(x)) if x else 0.0 for x in (kls, clipped))
    return ProximalStats(loss_before, kl, clip_fraction, len(kls), stopped)


def _check_finite(name: str, value: th.Tensor) -> None:
    if not bool(th.isfinite(value).all()):
        raise FloatingPointError(
            f"the proximal outer step's {name} is not finite; the parameters were left as they were "
            "before the update. Rewards or advantages too large for float32, or a learning rate too "
            "large, are the usual causes."
        )
