"""MAESN: Model-Agnostic Exploration with Structured Noise (Gupta et al., NeurIPS 2018)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import obs_as_tensor

from maesn_sb3.common.advantages import discounted_returns, gae_advantages, normalize_per_task
from maesn_sb3.common.base import AdaptationCurve, MetaAlgorithm
from maesn_sb3.common.proximal import clipped_surrogate
from maesn_sb3.common.rollouts import EpisodeBatch, map_obs, state_features
from maesn_sb3.common.trpo import (
    KLTerms,
    action_kl,
    distribution_tensors,
    draw_fisher_rows,
    fisher_chunks,
)
from maesn_sb3.maesn.policies import TaskLatents, gaussian_log_prob, latent_kl
from maesn_sb3.tasks import TaskSet
from maesn_sb3.validators import (
    check_float,
    check_int,
    check_latent_adaptation_episodes,
    check_unit_interval,
)
from maesn_sb3.vec_env import MetaTaskVecEnv
from wrappers.latent import LATENT_KEY, LatentWrapper, append_latent, replace_latent

__all__ = ["MAESN", "AdaptationResult", "LSBaseline"]

SelfMAESN = TypeVar("SelfMAESN", bound="MAESN")
LATENT_GRADIENTS = ("reparameterization", "score_function")


@dataclass(kw_only=True)
class AdaptationResult(AdaptationCurve):
    """The curve of one call to :meth:`MAESN.adapt`, for each task slot of the adaptation env.

    Row ``k`` of every array describes the latent after ``k`` adaptation steps (row 0: the prior).
    ``returns`` and ``success`` are the means over that iteration's exploration episodes;
    ``eval_returns`` and ``eval_success`` (when evaluated) come from deterministic episodes with the
    mean latent and mean actions. ``env_steps[k]`` counts the exploration steps taken up to and
    including iteration ``k`` (evaluation episodes are not counted). ``latent_means`` and
    ``latent_log_stds`` hold each slot's latent distribution at every iteration.
    """

    latent_means: np.ndarray
    latent_log_stds: np.ndarray


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


class MAESN(MetaAlgorithm):
    """MAESN: a policy conditioned on a per-episode latent whose per-task distribution is meta-learned.

    Every training task ``i`` has a latent distribution N(mu_i, sigma_i). A meta-iteration draws one
    task per slot of the :class:`~maesn_sb3.MetaTaskVecEnv`, samples episodes with ``z ~ N(mu_i, sigma_i)``
    (one ``z`` per episode, shown to the policy by the env's :class:`~wrappers.LatentWrapper`), takes
    one REINFORCE step on each task's latent only (with learned per-dimension step sizes), samples
    again with the updated latents, and updates the policy, the latent tables and the step sizes by
    TRPO on the post-update episodes, plus ``kl_coef * KL(N(mu_i, sigma_i) || N(0, I))``. At test time,
    :meth:`adapt` starts from the prior and adapts only the latent on a new task.

    Example:
        >>> from maesn_sb3 import MAESN, make_meta_vec_env
        >>> env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=4, envs_per_task=5,
        ...                         latent_dim=2, seed=0)
        >>> model = MAESN("MlpPolicy", env, n_train_tasks=10, seed=0).learn(total_timesteps=4_000)

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or an ``ActorCriticPolicy`` class.
    :param env: a :class:`~maesn_sb3.MetaTaskVecEnv` whose sub-envs carry a ``LatentWrapper``; its
        ``n_tasks`` is the number of tasks per meta-iteration and each phase samples ``episodes_per_task``
        episodes per task. An env id or a single task env also works, as in SB3: it becomes
        ``make_meta_vec_env(env_id, n_tasks=20, envs_per_task=20, latent_dim=2, seed=seed)``
        (:data:`~maesn_sb3.common.base.META_ENV_DEFAULTS`).
    :param task_set: the training tasks (``task_set.train``); None draws ``n_train_tasks`` from the env.
    :param n_train_tasks: number of training tasks drawn when ``task_set`` is None.
    :param episodes_per_task: episodes per task and phase; a multiple of ``env.envs_per_task``
        (None: ``envs_per_task``, one round).
    :param inner_lr: initial value of the inner step sizes.
    :param learn_step_sizes: meta-train the step sizes.
    :param inner_steps: inner gradient steps on the latent, each on freshly sampled episodes.
    :param inner_reward_key: take the inner step's rewards from ``info[inner_reward_key]`` instead of the
        env's reward, e.g. ``"sparse_reward"`` to meta-train the adaptation on the sparse reward it will
        meet at test time while the outer update keeps the dense reward (None: the env's reward).
    :param natural_gradient: precondition the latent's inner step with the Gaussian's inverse Fisher
        information, in meta-training and in :meth:`adapt` alike (False: the reference's vanilla step).
    :param latent_gradient: how the outer step's gradient reaches the latents and step sizes:
        ``"reparameterization"`` (the reference's: ``z = mu' + sigma' * eps`` inside the policy) or
        ``"score_function"`` (the latent's likelihood ratio times each episode's first-step advantage);
        both estimate the outer gradient without bias.
    :param kl_coef: weight of the KL of the pre-update latents to the prior.
    :param outer_update: ``"ppo"`` (the default, ProMP's proximal step: ``n_epochs`` passes of Adam at
        ``learning_rate`` over ``n_minibatches`` minibatches of whole tasks, on the clipped surrogate of
        the post-update episodes, differentiated through the inner step; see :meth:`_clipped_objective`)
        or ``"trpo"`` (the reference's: one trust-region step per meta-iteration). The proximal step
        learnt more from the same steps in the paper tier (``docs/paper.md``).
    :param latent_learning_rate: the proximal step's learning rate for the per-task latent tables,
        following ``learning_rate``'s schedule in proportion (None: ``learning_rate``). A task's row
        only moves in the meta-iterations that draw it (about ``n_tasks / n_train_tasks`` of them), so it
        needs a larger rate than the policy and step sizes, which every meta-iteration updates.
    :param n_epochs: passes over the batch of the proximal step.
    :param n_minibatches: minibatches of whole task slots per pass of the proximal step.
    :param clip_range: the proximal step's clip range of the likelihood ratios (``inf``: no clipping).
    :param target_kl: stop the proximal step's epochs before a minibatch whose estimated KL to the
        sampling policy exceeds ``1.5 * target_kl``, as SB3's PPO (None: run them all).
    :param normalize_observations: normalise the policy's observations by running statistics, as RL Zoo
        does for MuJoCo (:class:`~maesn_sb3.common.policies.RunningNormalization`, the latent left out);
        the statistics are updated after each meta-iteration, saved with the policy and applied by
        ``predict`` and ``adapt``. Rewards are not rescaled: the advantages are normalised per task.
    :param max_kl: TRPO's limit on the mean KL of a step.
    :param gamma: discount factor.
    :param gae_lambda: GAE's lambda for the outer advantages.
    :param baseline: ``"linear"`` (the reference's linear feature baseline, refit per task) or ``"value"``
        (the policy's learned value function).
    :param learning_rate: learning rate of the proximal step's Adam (``outer_update="ppo"``) and of the
        value function (``baseline="value"``).
    :param n_critic_updates: value-function gradient steps per iteration (``baseline="value"``).
    :param cg_max_steps: conjugate-gradient iterations.
    :param cg_damping: damping added to the Fisher-vector products.
    :param line_search_shrinking_factor: step shrink factor of the backtracking line search.
    :param line_search_max_iter: maximum line-search steps.
    :param fisher_subsample: fraction of the post-update steps (drawn afresh each update) whose KL
        gives TRPO's Fisher-vector products (rllab's ``subsample_factor``); the line search checks
        the KL on every step. 1: all steps, exact; smaller values make the update cheaper.
    :param adapt_lr: a fixed latent step size for :meth:`adapt` (None: the learned step sizes).
    :param stats_window_size: window of the rollout logging averages.
    :param tensorboard_log: tensorboard log folder (None: no logging).
    :param policy_kwargs: extra arguments for the policy.
    :param verbose: 0 silent, 1 training info.
    :param seed: seed of every random draw (tasks, latents, actions).
    :param device: torch device.
    """

    uses_latent: ClassVar[bool] = True
    _env_id_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 2}

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | None,
        task_set: TaskSet | None = None,
        n_train_tasks: int = 100,
        episodes_per_task: int | None = None,
        inner_lr: float = 1.0,
        learn_step_sizes: bool = True,
        inner_steps: int = 1,
        inner_reward_key: str | None = None,
        natural_gradient: bool = False,
        latent_gradient: str = "reparameterization",
        kl_coef: float = 0.1,
        outer_update: str = "ppo",
        latent_learning_rate: float | None = 0.01,
        n_epochs: int = 10,
        n_minibatches: int = 5,
        clip_range: float = 0.2,
        target_kl: float | None = 0.03,
        normalize_observations: bool = False,
        max_kl: float = 0.01,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        baseline: str = "linear",
        learning_rate: float | Schedule = 3e-4,
        n_critic_updates: int = 10,
        cg_max_steps: int = 10,
        cg_damping: float = 1e-5,
        line_search_shrinking_factor: float = 0.8,
        line_search_max_iter: int = 15,
        fisher_subsample: float = 1.0,
        adapt_lr: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy,
            env,
            task_set=task_set,
            n_train_tasks=n_train_tasks,
            episodes_per_task=episodes_per_task,
            max_kl=max_kl,
            gamma=gamma,
            gae_lambda=gae_lambda,
            cg_max_steps=cg_max_steps,
            cg_damping=cg_damping,
            line_search_shrinking_factor=line_search_shrinking_factor,
            line_search_max_iter=line_search_max_iter,
            inner_reward_key=inner_reward_key,
            learning_rate=learning_rate,
            outer_update=outer_update,
            n_epochs=n_epochs,
            n_minibatches=n_minibatches,
            clip_range=clip_range,
            target_kl=target_kl,
            normalize_observations=normalize_observations,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
        )
        if baseline not in ("linear", "value"):
            raise ValueError(f"baseline must be 'linear' or 'value', got {baseline!r}")
        self.latent_dim = self.env.latent_dim if self.env is not None else None
        self.inner_lr = check_float("inner_lr", inner_lr, 0.0)
        self.learn_step_sizes = bool(learn_step_sizes)
        self.inner_steps = check_int("inner_steps", inner_steps)
        if not isinstance(natural_gradient, (bool, np.bool_)):
            raise TypeError(f"natural_gradient must be a bool, got {natural_gradient!r}")
        self.natural_gradient = bool(natural_gradient)
        if latent_gradient not in LATENT_GRADIENTS:
            raise ValueError(f"latent_gradient must be one of {LATENT_GRADIENTS}, got {latent_gradient!r}")
        self.latent_gradient = latent_gradient
        self.kl_coef = check_float("kl_coef", kl_coef, 0.0)
        self.latent_learning_rate = (
            None
            if latent_learning_rate is None
            else check_float("latent_learning_rate", latent_learning_rate, 0.0, strict=True)
        )
        self.baseline = baseline
        self.n_critic_updates = check_int("n_critic_updates", n_critic_updates)
        self.fisher_subsample = check_unit_interval("fisher_subsample", fisher_subsample, open_low=True)
        self.adapt_lr = None if adapt_lr is None else check_float("adapt_lr", adapt_lr, 0.0)
        self.adapted_latent_mean: np.ndarray | None = None
        self.adapted_latent_log_std: np.ndarray | None = None
        if _init_setup_model:
            self._setup_model()

    # -- setup ----------------------------------------------------------------------------------
    @property
    def _has_inner_phase(self) -> bool:
        return self.learn_step_sizes or self.inner_lr > 0

    def _setup_model(self) -> None:
        self._setup_meta_model()
        generator = th.Generator().manual_seed(
            self.seed if self.seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        )
        self.latents = TaskLatents(
            len(self.task_set.train), self.latent_dim, self.inner_lr, self.learn_step_sizes, generator
        ).to(self.device)
        if getattr(self, "_predict_rng", None) is None:
            self._predict_rng = np.random.default_rng(None if self.seed is None else self.seed + 1)
        if getattr(self, "_fisher_rng", None) is None:
            self._fisher_rng = np.random.default_rng(None if self.seed is None else self.seed + 2)
        self._predict_latents: np.ndarray | None = None
        latent_lr = self.latent_learning_rate
        tables = {  # the per-task rows: each moves only when its task is drawn
            "params": [self.latents.means, self.latents.log_stds],
            "lr_scale": 1.0 if latent_lr is None else latent_lr / self.lr_schedule(1),
        }
        shared = [p for p in self._outer_parameters() if all(p is not t for t in tables["params"])]
        self._setup_outer_optimizer([{"params": shared}, tables])

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "latents", "policy.optimizer", *self._outer_save_params()], []

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_predict_latents"]

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        self._check_env(env)
        if env.latent_dim != self.latent_dim:
            raise ValueError(f"env's latent_dim must be {self.latent_dim}, got {env.latent_dim}")
        super().set_env(env, force_reset)

    def _actor_parameters(self) -> list[th.nn.Parameter]:
        return [p for name, p in self.policy.named_parameters() if "value_net" not in name]

    def _outer_parameters(self) -> list[th.nn.Parameter]:
        """What the outer update changes: the actor, the latent tables and (when learned) the step sizes."""
        params = [*self._actor_parameters(), self.latents.means, self.latents.log_stds]
        if self.learn_step_sizes:
            params += [self.latents.step_size_mean, self.latents.step_size_log_std]
        return params

    # -- sampling -------------------------------------------------------------------------------
    def _sample(
        self,
        env: MetaTaskVecEnv,
        mean: th.Tensor,
        log_std: th.Tensor,
        n_rounds: int,
        callback: BaseCallback | None = None,
        deterministic: bool = False,
        reward_key: str | None = None,
    ) -> tuple[EpisodeBatch, bool]:
        """Push the latent distributions to the env's slots and sample ``n_rounds`` rounds."""
        std = np.zeros_like(mean.cpu().numpy()) if deterministic else th.exp(log_std).detach().cpu().numpy()
        env.set_latent_distributions(mean.detach().cpu().numpy(), std)
        return self._collect(env, self.policy, n_rounds, callback, deterministic, reward_key)

    def _latent_advantages(self, batch: EpisodeBatch, n_tasks: int) -> tuple[th.Tensor, th.Tensor]:
        """Each episode's latent and first-step advantage, grouped by task: ``(n_tasks, n_eps, ...)``.

        Advantages use the linear feature baseline on the state without the latent (a baseline that
        saw ``z`` would bias the latent's gradient) and are centred and normalised per task.
        """
        rewards = batch.rewards if batch.info_rewards is None else batch.info_rewards
        returns = discounted_returns(rewards, batch.mask, self.gamma)
        states = state_features(batch.observations, self.latent_dim)
        values = self._baseline.fit_predict(states, returns, batch.mask, batch.task_slot, n_tasks)
        first = (returns[0] - values[0]).astype(np.float64)
        order = np.argsort(batch.task_slot, kind="stable")
        advantages = first[order].reshape(n_tasks, -1)
        advantages = (advantages - advantages.mean(1, keepdims=True)) / (
            advantages.std(1, keepdims=True) + 1e-8
        )
        z = batch.latents[order]
        return (
            th.as_tensor(z.reshape(n_tasks, -1, self.latent_dim), dtype=th.float32, device=self.device),
            th.as_tensor(advantages, dtype=th.float32, device=self.device),
        )

    # -- training -------------------------------------------------------------------------------
    def learn(
        self: SelfMAESN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "MAESN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMAESN:
        """Meta-train for ``total_timesteps`` environment steps (whole meta-iterations)."""
        return super().learn(
            total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar
        )

    def _meta_iteration(self, callback: BaseCallback) -> bool:
        env = self.env
        n_tasks, rounds = env.n_tasks, self._rounds(env, self.episodes_per_task)
        slots = self._draw_tasks(env)
        index = th.as_tensor(slots, device=self.device)
        start = time.perf_counter()
        with th.no_grad():
            mean, log_std = self._pre(index)
        inner_batches: list[tuple[th.Tensor, th.Tensor]] = []
        # Each inner step samples fresh episodes with the latents it starts from (the reference's).
        for step in range(self.inner_steps if self._has_inner_phase else 0):
            pre, completed = self._sample(
                env, mean, log_std, rounds, callback, reward_key=self.inner_reward_key
            )
            if not completed:
                return False
            z, adv = self._latent_advantages(pre, n_tasks)
            inner_batches.append((z, adv))
            if step == 0:
                inner_loss = -(gaussian_log_prob(z, mean[:, None], log_std[:, None]) * adv).mean()
                self._log_phase("pre", pre)
                self.logger.record("train/inner_loss", float(inner_loss))
            with th.no_grad():
                mean, log_std = self.latents.inner_update(
                    mean, log_std, z, adv, natural=self.natural_gradient
                )
        post, completed = self._sample(env, mean, log_std, rounds, callback)
        if not completed:
            return False
        sampling_time = time.perf_counter() - start
        self._log_phase("post", post)
        start = time.perf_counter()
        self._outer_update(index, inner_batches, post)
        self.logger.record("time/sampling_s", sampling_time)
        self.logger.record("time/update_s", time.perf_counter() - start)
        return True

    def _pre(self, index: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.latents.means[index], self.latents.log_stds[index]

    def _post(
        self, index: th.Tensor, inner_batches: Sequence[tuple[th.Tensor, th.Tensor]]
    ) -> tuple[th.Tensor, th.Tensor]:
        """The post-update latent distributions, a differentiable function of the tables and step sizes."""
        mean, log_std = self._pre(index)
        for z, adv in inner_batches:
            mean, log_std = self.latents.inner_update(mean, log_std, z, adv, natural=self.natural_gradient)
        return mean, log_std

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

    # -- adaptation -----------------------------------------------------------------------------
    def _wrap_task_env(self, env: gym.Env) -> gym.Env:
        """A single task env for :meth:`adapt`, with a latent wrapper unless it has one."""
        return env if is_wrapped(env, LatentWrapper) else LatentWrapper(env, latent_dim=self.latent_dim)

    def adapt(
        self,
        env: GymEnv,
        n_iterations: int = 10,
        episodes_per_iteration: int | None = None,
        seed: int | None = None,
        evaluate: bool = True,
        natural_gradient: bool | None = None,
        callback: MaybeCallback = None,
    ) -> AdaptationResult:
        """Adapt the latent to the task(s) of ``env`` with policy-gradient steps; the policy stays frozen.

        Each task slot starts from the prior N(0, I); iteration ``k`` samples ``episodes_per_iteration``
        episodes per task (fresh ones every iteration) and steps the latent with the step sizes (the
        learned ones, or ``adapt_lr``) scaled by the reference's schedule
        (:meth:`adapt_step_scale`: 1, 1, 1/2, 1/4, ...). Afterwards the model holds the adapted
        latent: :meth:`predict` uses it for observations without a latent, and ``env``'s latent
        wrappers keep it.

        :param env: a :class:`~maesn_sb3.MetaTaskVecEnv` with a latent wrapper (one or several task
            slots, adapted independently) or a single task env (the latent wrapper is added if missing).
        :param n_iterations: number of latent updates; ``n_iterations + 1`` batches are sampled.
        :param episodes_per_iteration: episodes per task and iteration, a multiple of
            ``env.envs_per_task`` (None: ``envs_per_task``); at least 2 when ``n_iterations > 0`` (the
            advantages are centred per task, so one episode could not move the latent: a ``ValueError``).
        :param seed: seeds the env and the action noise (None: the model's seed).
        :param evaluate: also run one deterministic episode per sub-env with the mean latent each
            iteration.
        :param natural_gradient: override the model's ``natural_gradient`` (None: the rule the step sizes
            were meta-trained with); the natural step keeps the mean's steps bounded when the adapted std
            becomes small.
        :param callback: called once per iteration (locals ``iteration`` and ``batch``); returning False
            stops.
        """
        state: dict[str, Any] = {"mean": None, "log_std": None, "means": [], "log_stds": []}

        def sample(meta: MetaTaskVecEnv, n_rounds: int, deterministic: bool) -> EpisodeBatch:
            if state["mean"] is None:  # every slot starts from the prior N(0, I)
                if n_iterations:  # checked before any episode
                    check_latent_adaptation_episodes(n_rounds * meta.envs_per_task)
                shape = (meta.n_tasks, self.latent_dim)
                state["mean"] = th.zeros(shape, device=self.device)
                state["log_std"] = th.zeros(shape, device=self.device)
            batch, _ = self._sample(
                meta, state["mean"], state["log_std"], n_rounds, deterministic=deterministic
            )
            return batch

        def record() -> None:
            state["means"].append(state["mean"].cpu().numpy())
            state["log_stds"].append(state["log_std"].cpu().numpy())

        def step(iteration: int, batch: EpisodeBatch) -> None:
            state["mean"], state["log_std"] = self.adapt_latents(
                state["mean"], state["log_std"], batch, iteration, natural_gradient
            )

        meta, curve = self._adaptation_loop(
            env, n_iterations, episodes_per_iteration, seed, evaluate, callback, sample, step, record
        )
        self.adapted_latent_mean = state["mean"].cpu().numpy()
        self.adapted_latent_log_std = state["log_std"].cpu().numpy()
        self._predict_latents = None
        meta.set_latent_distributions(self.adapted_latent_mean, np.exp(self.adapted_latent_log_std))
        return AdaptationResult(
            **curve, latent_means=np.stack(state["means"]), latent_log_stds=np.stack(state["log_stds"])
        )

    def adapt_latents(
        self,
        mean: th.Tensor,
        log_std: th.Tensor,
        batch: EpisodeBatch,
        iteration: int,
        natural_gradient: bool | None = None,
    ) -> tuple[th.Tensor, th.Tensor]:
        """Adaptation update ``iteration`` of :meth:`adapt`: one latent step per task slot of ``batch``
        (``batch.task_slot`` indexes the rows of ``mean`` and ``log_std``, each with as many episodes: >= 2
        of them, or a ``ValueError``)."""
        natural = self.natural_gradient if natural_gradient is None else bool(natural_gradient)
        step_sizes = (
            None if self.adapt_lr is None else th.full((self.latent_dim,), self.adapt_lr, device=self.device)
        )
        check_latent_adaptation_episodes(int(np.bincount(batch.task_slot, minlength=len(mean)).min()))
        z, advantages = self._latent_advantages(batch, len(mean))
        with th.no_grad():
            return self.latents.inner_update(
                mean,
                log_std,
                z,
                advantages,
                scale=self.adapt_step_scale(iteration),
                step_sizes=step_sizes,
                natural=natural,
            )

    def adapt_step_scale(self, iteration: int) -> float:
        """The factor on the step sizes of adaptation update ``iteration`` (from 0): the reference's
        1, 1, 1/2, 1/4, ... (halved after every update from the second on)."""
        return 1.0 if iteration == 0 else 0.5 ** (iteration - 1)

    # -- prediction -----------------------------------------------------------------------------
    def _with_latent(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        episode_start: np.ndarray | None,
        deterministic: bool,
        slot: int | None = None,
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Append the held latent to observations that come without one."""
        if isinstance(observation, dict):
            if LATENT_KEY in observation:
                return observation
            batch_shape = np.asarray(next(iter(observation.values()))).shape[:1]
        else:
            observation = np.asarray(observation)
            if observation.shape[-1] == self.observation_space.shape[-1]:
                return observation
            n_with = self.observation_space.shape[-1]
            if observation.shape[-1] != n_with - self.latent_dim:
                raise ValueError(
                    f"observation must have {n_with} features (with the latent) or "
                    f"{n_with - self.latent_dim} (without), got shape {observation.shape}"
                )
            batch_shape = observation.shape[:-1]
        n = int(np.prod(batch_shape)) if batch_shape else 1
        if self.adapted_latent_mean is None:
            mean, std = np.zeros((1, self.latent_dim)), np.ones((1, self.latent_dim))
        else:
            mean, std = self.adapted_latent_mean, np.exp(self.adapted_latent_log_std)
            chosen = self._chosen_slot(slot, len(mean))
            if chosen is not None:
                mean, std = mean[chosen : chosen + 1], std[chosen : chosen + 1]
        if len(mean) not in (1, n):
            raise ValueError(
                f"the model holds {len(mean)} adapted latents; pass slot=k (or set model.predict_slot = k) "
                f"to use task slot k's for every observation, a batch of {len(mean)} observations (row i "
                "uses slot i's), or observations that include their latent"
            )
        if deterministic:
            latents = np.broadcast_to(mean, (n, self.latent_dim))
        else:
            fresh = mean + std * self._predict_rng.standard_normal((n, self.latent_dim))
            if self._predict_latents is None or len(self._predict_latents) != n:
                self._predict_latents = fresh
            elif episode_start is not None:
                starts = np.asarray(episode_start, dtype=bool).reshape(-1)
                self._predict_latents[starts] = fresh[starts]
            latents = self._predict_latents
        latents = latents.astype(np.float32)
        with_latent = append_latent(observation, latents if batch_shape else latents[0])
        return with_latent if isinstance(with_latent, dict) else with_latent.astype(np.float32)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        slot: int | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``; observations without a latent get the adapted one (mean when deterministic).

        Without adaptation the prior N(0, I) is used. After :meth:`adapt` on several task slots, ``slot=k``
        (or ``model.predict_slot = k``) gives every observation slot ``k``'s latent; without it a batch of
        one observation per slot uses row ``i``'s slot ``i``. In stochastic mode one latent is held per
        observation row and redrawn where ``episode_start`` is True.
        """
        n_with = self.observation_space.shape[-1] if isinstance(self.observation_space, spaces.Box) else 0
        sizes = (n_with, n_with - self.latent_dim)  # with or without the latent
        observation = self._check_observation(observation, sizes)
        observation = self._with_latent(observation, episode_start, deterministic, slot)
        return self.policy.predict(observation, state, episode_start, deterministic)


class LSBaseline(MAESN):
    """The paper's latent-space baseline: MAESN without the inner update.

    The same latent-conditioned policy and per-task latents with the KL prior, trained by TRPO on
    episodes sampled from the pre-update latents (step size 0, not learned); :meth:`adapt` uses a fixed
    latent step ``adapt_lr`` (default 1) on the reference's schedule (:meth:`adapt_step_scale`).
    """

    def __init__(
        self, policy: str | type[BasePolicy], env: GymEnv | None, adapt_lr: float = 1.0, **kwargs: Any
    ):
        for name in ("inner_lr", "learn_step_sizes"):
            if name in kwargs:
                raise TypeError(
                    f"LSBaseline fixes {name}; do not pass it (use MAESN for a learned inner step)"
                )
        super().__init__(policy, env, inner_lr=0.0, learn_step_sizes=False, adapt_lr=adapt_lr, **kwargs)

    def adapt_step_scale(self, iteration: int) -> float:
        """The reference's schedule for the baseline: 1 for the first three updates, then halved."""
        return 1.0 if iteration < 3 else 0.5 ** (iteration - 2)
