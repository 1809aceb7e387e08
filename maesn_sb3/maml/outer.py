"""MAML's outer step on the post-update episodes: TRPO through the inner step (second order) or around
it (first order), or ProMP's proximal step with its adaptive inner-KL penalty."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.distributions import Distribution

from maesn_sb3.common.proximal import clipped_surrogate
from maesn_sb3.common.rollouts import map_obs
from maesn_sb3.common.trpo import KLTerms, action_kl, distribution_tensors, draw_fisher_rows
from maesn_sb3.maml.policies import Params


class MAMLOuterStep:
    """:class:`~maesn_sb3.MAML`'s outer update, mixed into it: it uses the model's functional policy
    (``_stacked``, ``_distribution``, ``_log_prob``, ``_inner_step``) and settings."""

    def _slot_kl(self, params: Params, data: dict[str, Any], old: Distribution) -> th.Tensor:
        """Per slot, the mean over its valid steps of KL(old || the policy of ``params``), ``(n_slots,)``."""
        kl = action_kl(old, self._distribution(params, data["obs"])).reshape(data["mask"].shape)
        return (kl * data["mask"]).sum(1) / data["mask"].sum(1)

    def _clipped_objective(
        self, pre: dict[str, Any], post: dict[str, Any], n_slots: int
    ) -> tuple[Callable[[np.ndarray], tuple[th.Tensor, th.Tensor]], Callable[[], float]]:
        """ProMP's objective on a minibatch of task slots, ``slots -> (loss, log-ratios)``, and the mean
        inner KL of the current weights (for the penalty's weight).

        Per slot: the inner step (:meth:`_pg_loss`, in ``inner_estimator``'s form; differentiated through
        unless ``first_order``), then PPO's clipped surrogate of the adapted policy against the one
        that sampled the post-update episodes. The loss is minus its mean over the minibatch's
        post-update steps (MAML-TRPO's weighting; ProMP averages per task first, the same where the
        tasks' episodes are equally long) plus ``inner_kl_coef`` times the mean over the minibatch's
        slots of the KL of the sampling policy to the current one on the pre-update steps."""
        start = {k: v.detach() for k, v in self.actor_parameters().items()}
        stacked = self._stacked(n_slots, start)
        sampled = self._inner_step(  # the weights that sampled the post-update episodes
            {k: v.requires_grad_(True) for k, v in self._stacked(n_slots, start).items()},
            {k: v for k, v in pre.items() if k != "old_log_prob"},
            self.inner_lr,
            create_graph=False,
        )
        with th.no_grad():
            pre_old = self._distribution(stacked, pre["obs"])
            post = {**post, "old_log_prob": self._log_prob(sampled, post)}

        def rows(data: dict[str, Any], slots: th.Tensor) -> dict[str, Any]:
            return {k: (map_obs(lambda x: x[slots], v) if k == "obs" else v[slots]) for k, v in data.items()}

        def objective(slots: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
            chosen = th.as_tensor(slots, device=self.device)
            pre_s, post_s = rows(pre, chosen), rows(post, chosen)
            params = self._stacked(len(slots))
            adapted = self._inner_step(params, pre_s, self.inner_lr, create_graph=not self.first_order)
            if self.first_order:
                adapted = {k: params[k] - (params[k] - v).detach() for k, v in adapted.items()}
            log_ratio = self._log_prob(adapted, post_s) - post_s["old_log_prob"]
            terms = clipped_surrogate(th.exp(log_ratio), post_s["advantages"], self.clip_range)
            surrogate = (terms * post_s["mask"]).sum() / post_s["mask"].sum()
            with th.no_grad():
                old = self._distribution(self._stacked(len(slots), start), pre_s["obs"])
            inner_kl = self._slot_kl(params, pre_s, old).mean()
            return -surrogate + self.inner_kl_coef * inner_kl, log_ratio[post_s["mask"].bool()]

        def inner_kl() -> float:
            with th.no_grad():
                return float(self._slot_kl(self._stacked(n_slots), pre, pre_old).mean())

        return objective, inner_kl

    def _outer_update(self, pre: dict[str, Any], post: dict[str, Any], n_slots: int) -> None:
        """The outer update on the post-update episodes: TRPO through the inner step (second order) or
        around it, or ProMP's proximal step (``outer_update="ppo"``)."""
        params = self.actor_parameters()
        if self.inner_estimator == "lvc":
            with th.no_grad():
                pre = {**pre, "old_log_prob": self._log_prob(self._stacked(n_slots), pre)}
        if self.outer_update == "ppo":
            objective, inner_kl = self._clipped_objective(pre, post, n_slots)
            self._proximal_update(params.values(), objective, n_slots)
            kl = inner_kl()
            if self.target_inner_kl is not None:
                if kl < self.target_inner_kl / 1.5:
                    self.inner_kl_coef /= 2
                elif kl > self.target_inner_kl * 1.5:
                    self.inner_kl_coef *= 2
            self.logger.record("train/inner_kl", kl)
            self.logger.record("train/inner_kl_coef", self.inner_kl_coef)
            return
        if self.first_order:
            with th.no_grad():
                fixed = self._stacked(n_slots, {k: v.detach() for k, v in params.items()})
            step = {
                k: fixed[k] - v
                for k, v in self._inner_step(
                    {k: v.requires_grad_(True) for k, v in fixed.items()}, pre, self.inner_lr, False
                ).items()
            }
            step = {k: v.detach() for k, v in step.items()}

            def adapted() -> Params:
                return {k: v - step[k] for k, v in self._stacked(n_slots).items()}
        else:

            def adapted() -> Params:
                with th.enable_grad():  # the line search runs under no_grad; the inner step needs a graph
                    return self._inner_step(self._stacked(n_slots), pre, self.inner_lr, create_graph=True)

        adv, n_valid = post["advantages"], post["mask"].sum()
        old_params = {k: v.detach() for k, v in adapted().items()}
        with th.no_grad():
            old = self._distribution(old_params, post["obs"])
            old_log_prob = self._log_prob(old_params, post)

        def loss_fn() -> th.Tensor:
            log_prob = self._log_prob(adapted(), post)
            return -(th.exp(log_prob - old_log_prob) * adv).sum() / n_valid

        def kl_terms(data: dict[str, Any], old: Distribution) -> KLTerms:
            """The KL in Gauss-Newton form: the action distributions' tensors and the KL of them."""
            tensors, rebuild = distribution_tensors(self._distribution(adapted(), data["obs"]))
            weights = data["mask"] / data["mask"].sum()
            return tensors, lambda outputs: (
                action_kl(old, rebuild(outputs)).reshape(weights.shape) * weights
            ).sum()

        def kl_fn() -> th.Tensor:
            outputs, kl_of = kl_terms(post, old)
            return kl_of(outputs)

        fisher_data, fisher_old = self._fisher_subsample(post, old_params, old)
        self._trpo_update(params.values(), loss_fn, kl_fn, lambda: [kl_terms(fisher_data, fisher_old)])

    def _fisher_subsample(
        self, post: dict[str, Any], old_params: Params, old: Distribution
    ) -> tuple[dict[str, Any], Distribution]:
        """The grouped steps of the Fisher-vector products (a uniform draw of ``fisher_subsample`` of
        the valid steps, each slot's padded to the largest slot's count and masked) and their old
        distributions."""
        if self.fisher_subsample == 1:
            return post, old
        valid = post["mask"].nonzero()  # (slot, step) pairs in order
        chosen = valid[th.as_tensor(draw_fisher_rows(self._fisher_rng, len(valid), self.fisher_subsample))]
        slot, step = chosen.unbind(1)
        counts = th.bincount(slot, minlength=len(post["mask"]))
        column = th.arange(len(chosen), device=slot.device) - (th.cumsum(counts, 0) - counts)[slot]
        width = int(counts.max())
        index = slot.new_zeros(len(counts), width).index_put_((slot, column), step)
        sub_mask = post["mask"].new_zeros(len(counts), width).index_put_((slot, column), th.ones(()))
        rows = th.arange(len(counts), device=slot.device)[:, None]
        post = {"obs": map_obs(lambda x: x[rows, index], post["obs"]), "mask": sub_mask}
        with th.no_grad():
            return post, self._distribution(old_params, post["obs"])
