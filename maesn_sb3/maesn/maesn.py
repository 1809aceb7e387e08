"""MAESN: Model-Agnostic Exploration with Structured Noise (Gupta et al., NeurIPS 2018)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from maesn_sb3.common.advantages import discounted_returns
from maesn_sb3.common.base import MetaAlgorithm
from maesn_sb3.common.rollouts import EpisodeBatch, state_features
from maesn_sb3.maesn.adaptation import AdaptationResult, AdaptedLatentMixin, LatentAdaptation
from maesn_sb3.maesn.outer import MAESNOuterStep
from maesn_sb3.maesn.policies import TaskLatents, gaussian_log_prob
from maesn_sb3.tasks import TaskSet
from maesn_sb3.validators import (
    check_float,
    check_int,
    check_latent_adaptation_episodes,
    check_unit_interval,
)
from maesn_sb3.vec_env import MetaTaskVecEnv

__all__ = ["MAESN", "AdaptationResult", "LSBaseline"]

SelfMAESN = TypeVar("SelfMAESN", bound="MAESN")
LATENT_GRADIENTS = ("reparameterization", "score_function")


class MAESN(MAESNOuterStep, AdaptedLatentMixin, MetaAlgorithm):
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

    # -- adaptation -----------------------------------------------------------------------------
    def adapt(
        self,
        env: GymEnv,
        n_iterations: int = 10,
        episodes_per_iteration: int | None = None,
        seed: int | None = None,
        evaluate: bool = True,
        natural_gradient: bool | None = None,
        callback: MaybeCallback = None,
        step_scale: float = 2.0,
    ) -> AdaptationResult:
        """Adapt the latent to the task(s) of ``env`` with policy-gradient steps; the policy stays frozen.

        Each task slot starts from the prior N(0, I); iteration ``k`` samples ``episodes_per_iteration``
        episodes per task (fresh ones every iteration) and steps the latent with the step sizes (the
        learned ones, or ``adapt_lr``) scaled by the reference's schedule (:meth:`adapt_step_scale`: 1,
        1, 1/2, 1/4, ...) times ``step_scale``. Afterwards the model holds the adapted latent:
        :meth:`predict` uses it for observations without a latent, and ``env``'s latent wrappers keep it.

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
        :param step_scale: multiplies every latent step (means and log-stds) on top of the schedule; 1 is
            the reference's. The default 2 measured best: with it MAESN's and the latent-space baseline's
            held-out success rose on all four families at 4M meta-training steps, 5 seeds each
            (``benchmarks/adapt_step_scale.py``; docs/paper.md, "The meta-test steps on every family").
        """
        step_scale = check_float("step_scale", step_scale, 0.0, strict=True)
        run = LatentAdaptation(self, n_iterations, natural_gradient, step_scale)
        meta, curve = self._adaptation_loop(
            env,
            n_iterations,
            episodes_per_iteration,
            seed,
            evaluate,
            callback,
            run.sample,
            run.step,
            run.record,
        )
        self.adapted_latent_mean = run.mean.cpu().numpy()
        self.adapted_latent_log_std = run.log_std.cpu().numpy()
        self._predict_latents = None
        meta.set_latent_distributions(self.adapted_latent_mean, np.exp(self.adapted_latent_log_std))
        return run.result(curve)

    def adapt_latents(
        self,
        mean: th.Tensor,
        log_std: th.Tensor,
        batch: EpisodeBatch,
        iteration: int,
        natural_gradient: bool | None = None,
        step_scale: float = 1.0,
    ) -> tuple[th.Tensor, th.Tensor]:
        """Adaptation update ``iteration`` of :meth:`adapt`: one latent step per task slot of ``batch``
        (``batch.task_slot`` indexes the rows of ``mean`` and ``log_std``, each with as many episodes: >= 2
        of them, or a ``ValueError``), ``step_scale`` times the schedule's."""
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
                scale=step_scale * self.adapt_step_scale(iteration),
                step_sizes=step_sizes,
                natural=natural,
            )

    def adapt_step_scale(self, iteration: int) -> float:
        """The factor on the step sizes of adaptation update ``iteration`` (from 0): the reference's
        1, 1, 1/2, 1/4, ... (halved after every update from the second on)."""
        return 1.0 if iteration == 0 else 0.5 ** (iteration - 1)

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
    latent step ``adapt_lr`` (default 1) on the reference's schedule (:meth:`adapt_step_scale`), times
    its ``step_scale`` (default 2, as MAESN's).
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
