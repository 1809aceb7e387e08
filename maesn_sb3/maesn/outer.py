"""MAESN's outer step on the post-update episodes, through the inner step into the latent tables and
step sizes: the TRPO objective (surrogate, trust-region KL, its Gauss-Newton terms), the proximal step's
clipped objective, the update itself and the value function's fit."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.utils import obs_as_tensor

from maesn_sb3.common.advantages import discounted_returns, gae_advantages, normalize_per_task
from maesn_sb3.common.proximal import clipped_surrogate
from maesn_sb3.common.rollouts import EpisodeBatch, map_obs, state_features
from maesn_sb3.common.trpo import KLTerms, action_kl, distribution_tensors, draw_fisher_rows, fisher_chunks
from maesn_sb3.maesn.policies import gaussian_log_prob, latent_kl
from wrappers.latent import replace_latent


@dataclass
class _OuterBatch:
    """The post-update episodes as MAESN's outer objectives use them: per step (the batch's valid steps
    in ``mask`` order) and per episode, with the sampling policy's probabilities."""

    n_steps: int
    step_slot: np.ndarray  # the task slot of each step
    episode_slot: np.ndarray  # the task slot of each episode
    step_weight: th.Tensor  # 1 / (tasks * the task's steps): the per-task mean, then the mean over tasks
    episode_weight: th.Tensor  # the same weight per episode
    advantages: th.Tensor  # per step
    first_advantages: th.Tensor  # per episode: its first step's
    actions: th.Tensor
    slot: th.Tensor  # episode_slot on the device
    z: th.Tensor  # each episode's latent
    old_mean: th.Tensor  # the post-update latent distributions that sampled, per slot
    old_log_std: th.Tensor
    policy_obs: Callable[..., Any]  # (mean, log_std, rows=None) -> the policy's input for those steps
    old_distribution: Any
    old_log_prob: th.Tensor  # per step
    old_latent_log_prob: th.Tensor  # per episode


class MAESNOuterStep:
    """:class:`~maesn_sb3.MAESN`'s outer update, mixed into it: it uses the model's latents (``_pre``,
    ``_post``), policy and settings."""

    def _actor_parameters(self) -> list[th.nn.Parameter]:
        return [p for name, p in self.policy.named_parameters() if "value_net" not in name]

    def _outer_parameters(self) -> list[th.nn.Parameter]:
        """What the outer update changes: the actor, the latent tables and (when learned) the step sizes."""
        params = [*self._actor_parameters(), self.latents.means, self.latents.log_stds]
        if self.learn_step_sizes:
            params += [self.latents.step_size_mean, self.latents.step_size_log_std]
        return params

    def _outer_advantages(self, post: EpisodeBatch) -> np.ndarray:
        """GAE advantages ``(T, E)`` of the post-update episodes, centred and scaled per task."""
        returns = discounted_returns(post.rewards, post.mask, self.gamma)
        if self.baseline == "linear":
            states = state_features(post.observations, self.latent_dim)
            values = self._baseline.fit_predict(states, returns, post.mask, post.task_slot, self.env.n_tasks)
        else:
            mask = post.mask.astype(bool)
            obs = obs_as_tensor(map_obs(lambda x: x[mask], post.observations), self.device)
            with th.no_grad():
                values = np.zeros_like(returns)
                values[mask] = self.policy.predict_values(obs).squeeze(-1).cpu().numpy()
        advantages = gae_advantages(post.rewards, values, post.mask, self.gamma, self.gae_lambda)
        return normalize_per_task(advantages, post.mask, post.task_slot)

    def _outer_batch(
        self, index: th.Tensor, inner_batches: Sequence[tuple[th.Tensor, th.Tensor]], post: EpisodeBatch
    ) -> _OuterBatch:
        """The post-update episodes as the outer objectives use them (see :meth:`_outer_objective`)."""
        mask = post.mask.astype(bool)
        advantages = self._outer_advantages(post)
        steps_per_slot = np.bincount(post.task_slot, weights=post.episode_lengths)
        episode_weight = 1.0 / (np.count_nonzero(steps_per_slot) * steps_per_slot[post.task_slot])
        step_episode = np.nonzero(mask)[1]  # the episode of each step, in the order of x[mask]

        def tensor(x: np.ndarray) -> th.Tensor:
            return th.as_tensor(x, dtype=self.latents.means.dtype, device=self.device)

        obs = obs_as_tensor(map_obs(lambda x: x[mask], post.observations), self.device)
        actions = th.as_tensor(post.actions[mask], device=self.device)
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        slot = th.as_tensor(post.task_slot, device=self.device)
        z = tensor(post.latents)
        with th.no_grad():
            old_mean, old_log_std = self._post(index, inner_batches)
        reparameterize = self.latent_gradient == "reparameterization"
        if reparameterize:
            old_std = th.exp(old_log_std)[slot]
            eps = th.where(old_std > 0, (z - old_mean[slot]) / old_std, th.zeros(()))
            step_episode_t = th.as_tensor(step_episode, device=self.device)

            def policy_obs(mean: th.Tensor, log_std: th.Tensor, rows: th.Tensor | None = None) -> Any:
                latents = (mean[slot] + th.exp(log_std)[slot] * eps)[step_episode_t]
                if rows is None:
                    return replace_latent(obs, latents)
                return replace_latent(map_obs(lambda x: x[rows], obs), latents[rows])
        else:

            def policy_obs(mean: th.Tensor, log_std: th.Tensor, rows: th.Tensor | None = None) -> Any:
                return obs if rows is None else map_obs(lambda x: x[rows], obs)

        with th.no_grad():
            old_distribution = copy.copy(self.policy.get_distribution(policy_obs(old_mean, old_log_std)))
        return _OuterBatch(
            n_steps=int(mask.sum()),
            step_slot=post.task_slot[step_episode],
            episode_slot=post.task_slot,
            step_weight=tensor(episode_weight[step_episode]),
            episode_weight=tensor(episode_weight),
            advantages=tensor(advantages[mask]),
            first_advantages=tensor(advantages[0]),
            actions=actions,
            slot=slot,
            z=z,
            old_mean=old_mean,
            old_log_std=old_log_std,
            policy_obs=policy_obs,
            old_distribution=old_distribution,
            old_log_prob=old_distribution.log_prob(actions).detach(),
            old_latent_log_prob=gaussian_log_prob(z, old_mean[slot], old_log_std[slot]).detach(),
        )

    def _outer_objective(
        self,
        index: th.Tensor,
        inner_batches: Sequence[tuple[th.Tensor, th.Tensor]],
        post: EpisodeBatch,
        fisher_rows: th.Tensor | None = None,
    ) -> tuple[Callable[[], th.Tensor], Callable[[], th.Tensor], Callable[[], list[KLTerms]]]:
        """TRPO's outer loss, the trust region's mean KL, and that KL in Gauss-Newton form on the steps
        ``fisher_rows`` only (None: all; for the Fisher-vector products, in chunks), on the
        post-update episodes.

        Each task contributes the mean over its steps of ``ratio * A`` (the reference's per-task mean).
        ``latent_gradient="reparameterization"`` (the reference's): the episode's latent is rebuilt as
        ``z = mu' + sigma' * eps`` from the post-update distribution with ``eps`` fixed by the sampled
        ``z``, so the gradient reaches the latents and step sizes through the policy's input, and the
        KL is the action KL (summed over action dimensions, averaged over steps) with ``z`` inside it.
        ``"score_function"``: ``z`` is held fixed in the action ratio, and each episode adds
        ``q'(z) / q(z)`` times its first-step advantage; the KL adds each episode's latent KL spread over
        the steps (the per-step KL of the joint law of ``z`` and the actions). Both estimate the
        gradient of the expected return without bias. Plus ``kl_coef`` times the pre-update latents'
        KL to the prior.
        """
        batch = self._outer_batch(index, inner_batches, post)
        n_steps, slot, z, policy_obs = batch.n_steps, batch.slot, batch.z, batch.policy_obs
        old_mean, old_log_std, old_distribution = batch.old_mean, batch.old_log_std, batch.old_distribution
        reparameterize = self.latent_gradient == "reparameterization"

        def loss_fn() -> th.Tensor:
            mean, log_std = self._post(index, inner_batches)
            log_prob = self.policy.get_distribution(policy_obs(mean, log_std)).log_prob(batch.actions)
            surrogate = (batch.step_weight * th.exp(log_prob - batch.old_log_prob) * batch.advantages).sum()
            if not reparameterize:
                latent_log_prob = gaussian_log_prob(z, mean[slot], log_std[slot])
                latent_ratio = th.exp(latent_log_prob - batch.old_latent_log_prob)
                surrogate = surrogate + (batch.episode_weight * latent_ratio * batch.first_advantages).sum()
            prior_kl = latent_kl(*self._pre(index), th.zeros(()), th.zeros(())).mean()
            return -surrogate + self.kl_coef * prior_kl

        old_tensors, rebuild_old = distribution_tensors(old_distribution)

        def kl_terms(rows: th.Tensor | None, n_rows: int, with_latent: bool) -> KLTerms:
            """The KL's share of the steps ``rows`` (None: all) in Gauss-Newton form: the action
            distributions' tensors (and, for the score-function form's ``with_latent`` share, the
            post-update latent distributions) and the sum of those steps' KLs over ``n_rows``."""
            old = old_distribution if rows is None else rebuild_old([t[rows] for t in old_tensors])
            mean, log_std = self._post(index, inner_batches)
            tensors, rebuild = distribution_tensors(
                self.policy.get_distribution(policy_obs(mean, log_std, rows))
            )
            n_actions, latent_share = len(tensors), with_latent and not reparameterize

            def kl_of(outputs: Sequence[th.Tensor]) -> th.Tensor:
                kl = action_kl(old, rebuild(outputs[:n_actions])).sum() / n_rows
                if latent_share:
                    new_mean, new_log_std = outputs[n_actions:]
                    latent = latent_kl(old_mean[slot], old_log_std[slot], new_mean[slot], new_log_std[slot])
                    kl = kl + latent.sum() / n_steps
                return kl

            return ([*tensors, mean, log_std] if latent_share else tensors), kl_of

        def kl_fn() -> th.Tensor:
            outputs, kl_of = kl_terms(None, n_steps, True)
            return kl_of(outputs)

        def fisher_terms_fn() -> list[KLTerms]:
            n_rows = n_steps if fisher_rows is None else len(fisher_rows)
            chunks = fisher_chunks(n_steps, fisher_rows, self.device)
            return [kl_terms(rows, n_rows, k == 0) for k, rows in enumerate(chunks)]

        return loss_fn, kl_fn, fisher_terms_fn

    def _clipped_objective(
        self, index: th.Tensor, inner_batches: Sequence[tuple[th.Tensor, th.Tensor]], post: EpisodeBatch
    ) -> Callable[[np.ndarray], tuple[th.Tensor, th.Tensor]]:
        """The proximal step's objective on a minibatch of task slots: ``slots -> (loss, log-ratios)``.

        The TRPO surrogate of :meth:`_outer_objective` restricted to the steps (and, for
        ``"score_function"``, the episodes) of ``slots``, each likelihood ratio clipped as PPO's
        (:func:`~maesn_sb3.common.proximal.clipped_surrogate`; the score-function form clips the latent's
        ratio too), the per-task means averaged over the minibatch's tasks, plus ``kl_coef`` times their
        pre-update latents' KL to the prior. With every slot and ``clip_range=inf`` it is TRPO's loss.
        The ratios are taken to the policy that sampled (the post-update latents before the update).
        """
        batch = self._outer_batch(index, inner_batches, post)
        reparameterize = self.latent_gradient == "reparameterization"

        def objective(slots: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
            rows = th.as_tensor(np.flatnonzero(np.isin(batch.step_slot, slots)), device=self.device)
            share = len(np.unique(batch.step_slot)) / len(np.intersect1d(batch.step_slot, slots))
            mean, log_std = self._post(index, inner_batches)
            distribution = self.policy.get_distribution(batch.policy_obs(mean, log_std, rows))
            log_ratio = distribution.log_prob(batch.actions[rows]) - batch.old_log_prob[rows]
            ratio_terms = clipped_surrogate(th.exp(log_ratio), batch.advantages[rows], self.clip_range)
            surrogate = share * (batch.step_weight[rows] * ratio_terms).sum()
            if not reparameterize:
                episodes = np.flatnonzero(np.isin(batch.episode_slot, slots))
                episodes = th.as_tensor(episodes, device=self.device)
                slot = batch.slot[episodes]
                latent_log_ratio = (
                    gaussian_log_prob(batch.z[episodes], mean[slot], log_std[slot])
                    - batch.old_latent_log_prob[episodes]
                )
                latent_terms = clipped_surrogate(
                    th.exp(latent_log_ratio), batch.first_advantages[episodes], self.clip_range
                )
                surrogate = surrogate + share * (batch.episode_weight[episodes] * latent_terms).sum()
                log_ratio = th.cat([log_ratio, latent_log_ratio])
            chosen = index[th.as_tensor(slots, device=self.device)]
            prior_kl = latent_kl(*self._pre(chosen), th.zeros(()), th.zeros(())).mean()
            return -surrogate + self.kl_coef * prior_kl, log_ratio

        return objective

    def _outer_update(
        self, index: th.Tensor, inner_batches: Sequence[tuple[th.Tensor, th.Tensor]], post: EpisodeBatch
    ) -> None:
        """The outer update on the post-update episodes, through the inner step into latents and step
        sizes: one TRPO step, or the proximal step (``outer_update="ppo"``)."""
        params = self._outer_parameters()
        before = [p.detach().clone() for p in params]
        if self.outer_update == "ppo":
            undrawn = th.ones(len(self.latents.means), dtype=th.bool, device=self.device)
            undrawn[index] = False
            tables = [self.latents.means, self.latents.log_stds]
            held = [table.detach()[undrawn].clone() for table in tables]

            def hold_undrawn_rows() -> None:
                """Adam's momentum would move the rows of tasks not drawn: keep them where they were."""
                with th.no_grad():
                    for table, rows in zip(tables, held, strict=True):
                        table[undrawn] = rows

            objective = self._clipped_objective(index, inner_batches, post)
            with th.no_grad():
                pre_before = self._pre(index)
            self._proximal_update(params, objective, self.env.n_tasks, hold_undrawn_rows)
            with th.no_grad():  # how far the inner step's data (sampled with pre_before) now lie off-policy
                moved = latent_kl(*pre_before, *self._pre(index)).mean()
            self.logger.record("train/pre_latent_kl", float(moved))
        else:
            rows = draw_fisher_rows(self._fisher_rng, int(post.mask.sum()), self.fisher_subsample)
            rows = None if rows is None else th.as_tensor(rows, device=self.device)
            self._trpo_update(params, *self._outer_objective(index, inner_batches, post, rows))
        if self.baseline == "value":
            mask = post.mask.astype(bool)
            returns = discounted_returns(post.rewards, post.mask, self.gamma)
            obs = obs_as_tensor(map_obs(lambda x: x[mask], post.observations), self.device)
            self._fit_value_function(obs, th.as_tensor(returns[mask], device=self.device))
        with th.no_grad():
            prior_kl = latent_kl(*self._pre(index), th.zeros(()), th.zeros(())).mean()
        log = self.logger.record
        log("train/latent_prior_kl", float(prior_kl))
        # how much of the accepted step moved the latent tables and step sizes rather than the policy
        moves = [float((p.detach() - b).pow(2).sum()) for p, b in zip(params, before, strict=True)]
        n_policy = len(params) - (4 if self.learn_step_sizes else 2)
        log("train/latent_step_share", sum(moves[n_policy:]) / max(sum(moves), 1e-30))
        for name in ("step_size_mean", "step_size_log_std"):
            for dim, value in enumerate(getattr(self.latents, name).detach().cpu().numpy()):
                log(f"train/{name}_{dim}", float(value))

    def _fit_value_function(self, obs: th.Tensor | dict[str, th.Tensor], returns: th.Tensor) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        for _ in range(self.n_critic_updates):
            loss = th.nn.functional.mse_loss(self.policy.predict_values(obs).squeeze(-1), returns)
            self.policy.optimizer.zero_grad()
            loss.backward()
            self.policy.optimizer.step()
        self.policy.set_training_mode(False)
        self.logger.record("train/value_loss", loss.item())
