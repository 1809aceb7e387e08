"""MAESN's per-task latent distributions (the policies are the shared ones of ``common/policies.py``)."""

from __future__ import annotations

import torch as th
from torch import nn

from maesn_sb3.common.policies import MAESN_POLICY_DEFAULTS, MlpPolicy, MultiInputPolicy

__all__ = [
    "MAESN_POLICY_DEFAULTS",
    "MlpPolicy",
    "MultiInputPolicy",
    "TaskLatents",
    "gaussian_log_prob",
    "latent_kl",
]


def gaussian_log_prob(z: th.Tensor, mean: th.Tensor, log_std: th.Tensor) -> th.Tensor:
    """log N(z | mean, exp(log_std)^2 I), summed over the last axis."""
    var = th.exp(2 * log_std)
    return (-0.5 * (z - mean) ** 2 / var - log_std - 0.5 * th.log(th.tensor(2 * th.pi))).sum(-1)


def latent_kl(mean_p: th.Tensor, log_std_p: th.Tensor, mean_q: th.Tensor, log_std_q: th.Tensor) -> th.Tensor:
    """KL(N(mean_p, std_p) || N(mean_q, std_q)) of diagonal Gaussians, summed over the last axis."""
    var_p, var_q = th.exp(2 * log_std_p), th.exp(2 * log_std_q)
    return (log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5).sum(-1)


def _inner_loss(mean: th.Tensor, log_std: th.Tensor, z: th.Tensor, advantages: th.Tensor) -> th.Tensor:
    """REINFORCE on one task's latent: -mean_j log N(z_j | mean, std) * A_j."""
    return -(gaussian_log_prob(z, mean, log_std) * advantages).mean()


_inner_grads = th.func.vmap(th.func.grad(_inner_loss, argnums=(0, 1)))


class TaskLatents(nn.Module):
    """Per-training-task latent distributions and the learned inner step sizes.

    :param n_tasks: number of training tasks (rows of the tables).
    :param latent_dim: size of the latent.
    :param inner_lr: initial value of both step-size vectors.
    :param learn_step_sizes: whether the step sizes are meta-trained.
    :param generator: draws the initial means from N(0, 1).
    """

    def __init__(
        self,
        n_tasks: int,
        latent_dim: int,
        inner_lr: float,
        learn_step_sizes: bool = True,
        generator: th.Generator | None = None,
    ) -> None:
        super().__init__()
        self.means = nn.Parameter(th.randn(n_tasks, latent_dim, generator=generator))
        self.log_stds = nn.Parameter(th.zeros(n_tasks, latent_dim))
        self.step_size_mean = nn.Parameter(
            th.full((latent_dim,), float(inner_lr)), requires_grad=learn_step_sizes
        )
        self.step_size_log_std = nn.Parameter(
            th.full((latent_dim,), float(inner_lr)), requires_grad=learn_step_sizes
        )

    def inner_update(
        self,
        mean: th.Tensor,
        log_std: th.Tensor,
        z: th.Tensor,
        advantages: th.Tensor,
        scale: float = 1.0,
        step_sizes: th.Tensor | None = None,
        natural: bool = False,
    ) -> tuple[th.Tensor, th.Tensor]:
        """One gradient step on a batch of tasks' latents, differentiable in every input.

        :param mean: ``(n_tasks, latent_dim)``; :param log_std: the same shape.
        :param z: ``(n_tasks, n_episodes, latent_dim)`` the episodes' latents.
        :param advantages: ``(n_tasks, n_episodes)`` their advantages.
        :param scale: multiplies the step sizes (adaptation's schedule).
        :param step_sizes: one step-size vector used for both means and log-stds instead of the learned ones.
        :param natural: precondition with the inverse Fisher information of the Gaussian (the mean's
            gradient times ``std**2``, the log-std's times 1/2), so steps stay bounded as the std shrinks.
        """
        step_mean = self.step_size_mean if step_sizes is None else step_sizes
        step_log_std = self.step_size_log_std if step_sizes is None else step_sizes
        grad_mean, grad_log_std = _inner_grads(mean, log_std, z, advantages)
        if natural:
            grad_mean, grad_log_std = grad_mean * th.exp(2 * log_std), grad_log_std / 2
        return mean - scale * step_mean * grad_mean, log_std - scale * step_log_std * grad_log_std
