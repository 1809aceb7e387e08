"""The outer step of the meta-algorithms with the model's settings and its logging: one TRPO step
(:func:`~maesn_sb3.common.trpo.trpo_step`) or the proximal step
(:func:`~maesn_sb3.common.proximal.proximal_update`) and its Adam optimizer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm

from maesn_sb3.common.proximal import MinibatchObjective, ProximalStats, proximal_update
from maesn_sb3.common.trpo import KLTerms, TRPOStats, trpo_step
from maesn_sb3.validators import check_threads

__all__ = ["OUTER_UPDATES", "OuterUpdateMixin"]

#: The outer updates of the meta-algorithms: one TRPO step, or epochs of a clipped surrogate (PPO's).
OUTER_UPDATES = ("trpo", "ppo")


class OuterUpdateMixin(BaseAlgorithm):
    """:class:`~maesn_sb3.common.base.MetaAlgorithm`'s outer step: the optimizer of the proximal step
    (``outer_update="ppo"``), one TRPO step and the proximal step, each with the model's settings and
    logged. It reads the model's attributes (``max_kl``, ``n_epochs``, ``logger``, ...)."""

    def _setup_outer_optimizer(self, params: Iterable[th.Tensor] | Iterable[dict[str, Any]]) -> None:
        """The optimizer of the proximal outer step (``outer_update="ppo"``): Adam on ``params`` (tensors,
        or parameter groups whose ``"lr_scale"`` multiplies ``learning_rate``), kept from one
        meta-iteration to the next and saved with the model."""
        if self.outer_update == "ppo":
            self.outer_optimizer = th.optim.Adam(params, lr=self.lr_schedule(1))
            self._scale_outer_learning_rates()

    def _scale_outer_learning_rates(self) -> None:
        """Set each group of ``outer_optimizer`` to the scheduled learning rate times its ``lr_scale``."""
        lr = self.lr_schedule(self._current_progress_remaining)
        for group in self.outer_optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def _outer_save_params(self) -> list[str]:
        """``outer_optimizer`` where the model has one (for ``_get_torch_save_params``)."""
        return ["outer_optimizer"] if self.outer_update == "ppo" else []

    def _trpo_update(
        self,
        params: Sequence[th.Tensor],
        loss_fn: Callable[[], th.Tensor],
        kl_fn: Callable[[], th.Tensor],
        fisher_terms_fn: Callable[[], Sequence[KLTerms]] | None = None,
    ) -> TRPOStats:
        """One TRPO step on ``params`` with the model's trust-region settings, logged."""
        stats = trpo_step(
            list(params),
            loss_fn,
            kl_fn,
            self.max_kl,
            self.cg_max_steps,
            self.cg_damping,
            self.line_search_shrinking_factor,
            self.line_search_max_iter,
            fisher_terms_fn,
            check_threads("n_fisher_threads", self.n_fisher_threads),
        )
        self._n_updates += 1
        log = self.logger.record
        log("train/outer_loss", stats.loss_before)
        log("train/surrogate_improvement", stats.loss_before - stats.loss_after)
        log("train/trpo_kl", stats.kl)
        log("train/line_search_steps", stats.line_search_steps)
        log("train/step_accepted", int(stats.accepted))
        log("train/n_updates", self._n_updates, exclude="tensorboard")
        return stats

    def _proximal_update(
        self,
        params: Sequence[th.Tensor],
        objective: MinibatchObjective,
        n_slots: int,
        after_step: Callable[[], None] | None = None,
    ) -> ProximalStats:
        """The proximal outer step (:func:`~maesn_sb3.common.proximal.proximal_update`) with the model's
        settings, logged."""
        self._update_learning_rate(self.outer_optimizer)  # logs the schedule's value
        self._scale_outer_learning_rates()
        stats = proximal_update(
            list(params),
            self.outer_optimizer,
            objective,
            n_slots,
            self.n_epochs,
            self.n_minibatches,
            self.clip_range,
            self.target_kl,
            self._minibatch_rng,
            after_step,
        )
        self._n_updates += stats.n_steps
        log = self.logger.record
        log("train/outer_loss", stats.loss_before)
        log("train/approx_kl", stats.approx_kl)
        log("train/clip_fraction", stats.clip_fraction)
        log("train/outer_steps", stats.n_steps)
        log("train/stopped_early", int(stats.stopped_early))
        log("train/n_updates", self._n_updates, exclude="tensorboard")
        return stats
