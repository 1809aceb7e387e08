"""MAML with a TRPO outer update (Finn et al., ICML 2017), the MAESN paper's main baseline."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import obs_as_tensor

from maesn_sb3.common.advantages import discounted_returns, gae_advantages
from maesn_sb3.common.base import AdaptationCurve, MetaAlgorithm
from maesn_sb3.common.rollouts import EpisodeBatch, map_obs, state_features
from maesn_sb3.maml.outer import MAMLOuterStep
from maesn_sb3.maml.policies import Params, _ActorHead, _slot_distribution, _SlotPolicy
from maesn_sb3.tasks import TaskSet
from maesn_sb3.validators import check_float, check_unit_interval
from maesn_sb3.vec_env import MetaTaskVecEnv

__all__ = ["MAML"]

SelfMAML = TypeVar("SelfMAML", bound="MAML")


class MAML(MAMLOuterStep, MetaAlgorithm):
    """MAML-TRPO: policy-gradient inner steps on the policy's weights, a TRPO outer update through them.

    A meta-iteration draws one training task per slot of the :class:`~maesn_sb3.MetaTaskVecEnv`,
    samples episodes with the policy, takes one REINFORCE step per task on the actor's weights
    (advantages from the linear feature baseline refit per task), samples again with each task's
    adapted weights and updates the initial weights by TRPO on the post-update episodes. The
    second-order version differentiates through the inner step (``first_order=False``); the
    first-order one treats the inner gradient as a constant. The machinery (episode collection,
    baseline, GAE, the trust-region step) is MAESN's. :meth:`adapt` repeats the inner step on new tasks.

    Example:
        >>> from maesn_sb3 import MAML, make_meta_vec_env
        >>> env = make_meta_vec_env("maesn_sb3/PointNav2D-v0", n_tasks=4, envs_per_task=5, seed=0)
        >>> model = MAML("MlpPolicy", env, n_train_tasks=10, seed=0).learn(total_timesteps=4_000)

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or an ``ActorCriticPolicy`` class.
    :param env: a :class:`~maesn_sb3.MetaTaskVecEnv` without latent; ``n_tasks`` tasks per meta-iteration.
        An env id or a single task env also works, as in SB3: it becomes
        ``make_meta_vec_env(env_id, n_tasks=20, envs_per_task=20, seed=seed)``.
    :param task_set: the training tasks (``task_set.train``); None draws ``n_train_tasks`` from the env.
    :param n_train_tasks: number of training tasks drawn when ``task_set`` is None.
    :param episodes_per_task: episodes per task and phase, a multiple of ``env.envs_per_task``
        (None: ``envs_per_task``).
    :param inner_lr: step size of the inner policy-gradient step.
    :param first_order: drop the second-order terms of the meta-gradient.
    :param outer_update: ``"ppo"`` (the default, ProMP's proximal step: ``n_epochs`` passes of Adam at
        ``learning_rate`` over ``n_minibatches`` minibatches of whole tasks on the clipped surrogate,
        plus an adaptive penalty on the inner step's KL; see :meth:`_clipped_objective`) or ``"trpo"``
        (MAML-TRPO's step).
    :param inner_estimator: the inner step's loss as the outer update differentiates it: ``"reinforce"``
        (``log pi * A``, MAML-TRPO's) or ``"lvc"`` (ProMP's low-variance curvature estimator,
        ``pi / pi_old * A``: the same inner step, a second derivative with the score's outer product);
        None: ``"lvc"`` with ``outer_update="ppo"``, ``"reinforce"`` with ``"trpo"``.
    :param n_epochs: passes over the batch of the proximal step.
    :param n_minibatches: minibatches of whole task slots per pass of the proximal step.
    :param clip_range: the proximal step's clip range of the likelihood ratios (``inf``: no clipping).
    :param target_kl: stop the proximal step's epochs before a minibatch whose estimated KL to the
        sampling policy exceeds ``1.5 * target_kl``, as SB3's PPO (None: run them all).
    :param learning_rate: the proximal step's Adam learning rate.
    :param inner_kl_coef: the proximal step's initial weight of the inner KL penalty (ProMP's 0.01).
    :param target_inner_kl: the inner KL the penalty's weight adapts to after each proximal update
        (doubled above ``1.5 * target_inner_kl``, halved below ``target_inner_kl / 1.5``, as ProMP;
        None: the weight stays fixed).
    :param normalize_observations: normalise the policy's observations by running statistics, as RL Zoo
        does for MuJoCo (:class:`~maesn_sb3.common.policies.RunningNormalization`, the latent left out);
        the statistics are updated after each meta-iteration, saved with the policy and applied by
        ``predict`` and ``adapt``. Rewards are not rescaled: the advantages are normalised per task.
    :param max_kl: TRPO's limit on the mean KL of a step.
    :param gamma: discount factor.
    :param gae_lambda: GAE's lambda (inner and outer advantages).
    :param cg_max_steps: conjugate-gradient iterations.
    :param cg_damping: damping of the Fisher-vector products.
    :param line_search_shrinking_factor: step shrink factor of the backtracking line search.
    :param line_search_max_iter: maximum line-search steps.
    :param fisher_subsample: fraction of the post-update steps (drawn afresh each update) whose KL
        gives TRPO's Fisher-vector products (rllab's ``subsample_factor``); the line search checks
        the KL on every step. 1: all steps, exact; smaller values make the update cheaper.
    :param adapt_lr: step size of :meth:`adapt` (None: ``inner_lr``).
    :param inner_reward_key: take the inner step's rewards from ``info[inner_reward_key]`` during
        meta-training (e.g. ``"sparse_reward"``, so that the inner step learns from the signal it gets
        at test time); None uses the env's reward. The outer update always uses the env's reward.
    :param stats_window_size: window of the rollout logging averages.
    :param tensorboard_log: tensorboard log folder (None: no logging).
    :param policy_kwargs: extra arguments for the policy.
    :param verbose: 0 silent, 1 training info.
    :param seed: seed of every random draw (tasks, actions).
    :param device: torch device.
    """

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | None,
        task_set: TaskSet | None = None,
        n_train_tasks: int = 100,
        episodes_per_task: int | None = None,
        inner_lr: float = 0.1,
        first_order: bool = False,
        outer_update: str = "ppo",
        inner_estimator: str | None = None,
        n_epochs: int = 10,
        n_minibatches: int = 5,
        clip_range: float = 0.2,
        target_kl: float | None = 0.03,
        learning_rate: float | Schedule = 3e-4,
        inner_kl_coef: float = 0.01,
        target_inner_kl: float | None = 0.01,
        normalize_observations: bool = False,
        max_kl: float = 0.01,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        cg_max_steps: int = 10,
        cg_damping: float = 1e-5,
        line_search_shrinking_factor: float = 0.8,
        line_search_max_iter: int = 15,
        fisher_subsample: float = 1.0,
        adapt_lr: float | None = None,
        inner_reward_key: str | None = None,
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
        self.inner_lr = check_float("inner_lr", inner_lr, 0.0, strict=True)
        self.first_order = bool(first_order)
        if inner_estimator not in (None, "reinforce", "lvc"):
            raise ValueError(f"inner_estimator must be 'reinforce', 'lvc' or None, got {inner_estimator!r}")
        self.inner_estimator = inner_estimator or ("lvc" if self.outer_update == "ppo" else "reinforce")
        self.inner_kl_coef = check_float("inner_kl_coef", inner_kl_coef, 0.0)
        if target_inner_kl is not None:
            target_inner_kl = check_float("target_inner_kl", target_inner_kl, 0.0, strict=True)
        self.target_inner_kl = target_inner_kl
        self.fisher_subsample = check_unit_interval("fisher_subsample", fisher_subsample, open_low=True)
        self.adapt_lr = None if adapt_lr is None else check_float("adapt_lr", adapt_lr, 0.0, strict=True)
        self.adapted_policies: list[BasePolicy] | None = None
        if _init_setup_model:
            self._setup_model()

    # -- setup ----------------------------------------------------------------------------------
    def _setup_model(self) -> None:
        self._setup_meta_model()
        self._head = _ActorHead(self.policy)
        if getattr(self, "_fisher_rng", None) is None:
            self._fisher_rng = np.random.default_rng(None if self.seed is None else self.seed + 2)
        self._setup_outer_optimizer(self.actor_parameters().values())

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_head", "adapted_policies"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", *self._outer_save_params()], []

    def actor_parameters(self) -> Params:
        """The parameters the inner step adapts: every policy parameter outside the value function."""
        return {
            name: p
            for name, p in self.policy.named_parameters()
            if "value_net" not in name and "vf_features_extractor" not in name
        }

    # -- functional policy ----------------------------------------------------------------------
    def _distribution(self, params: Params, obs: th.Tensor | dict[str, th.Tensor]) -> Distribution:
        """The action distributions of per-slot ``params`` on observations grouped by slot."""
        return _slot_distribution(self._head, self.action_space, params, obs)

    def _stacked(self, n_slots: int, params: Params | None = None) -> Params:
        params = self.actor_parameters() if params is None else params
        return {name: p.unsqueeze(0).expand(n_slots, *p.shape) for name, p in params.items()}

    # -- sampling and advantages ----------------------------------------------------------------
    def _sample(
        self,
        env: MetaTaskVecEnv,
        params: Params | None,
        n_rounds: int,
        callback: BaseCallback | None = None,
        deterministic: bool = False,
        reward_key: str | None = None,
    ) -> tuple[EpisodeBatch, bool]:
        """Sample ``n_rounds`` rounds, with per-slot ``params`` (None: the policy's own weights); with
        ``reward_key``, the batch's ``info_rewards`` hold ``info[reward_key]``."""
        policy = (
            self.policy
            if params is None
            else _SlotPolicy(self, {k: v.detach() for k, v in params.items()}, env.envs_per_task)
        )
        return self._collect(env, policy, n_rounds, callback, deterministic, reward_key)

    def _grouped(self, batch: EpisodeBatch, n_slots: int) -> dict[str, Any]:
        """The batch's steps grouped by slot, ``(n_slots, T * episodes_per_slot, ...)``, with normalised
        per-slot advantages (linear feature baseline refit per slot, GAE) of ``info_rewards`` where the
        batch has them, else of its rewards."""
        rewards = batch.rewards if batch.info_rewards is None else batch.info_rewards
        returns = discounted_returns(rewards, batch.mask, self.gamma)
        obs = batch.observations
        states = state_features(obs, 0)
        values = self._baseline.fit_predict(states, returns, batch.mask, batch.task_slot, n_slots)
        advantages = gae_advantages(rewards, values, batch.mask, self.gamma, self.gae_lambda)
        order = np.argsort(batch.task_slot, kind="stable")

        def group(x: np.ndarray) -> np.ndarray:
            x = x[:, order]  # (T, E, ...) with episodes sorted by slot
            x = x.reshape(x.shape[0], n_slots, -1, *x.shape[2:])
            return np.swapaxes(x, 0, 1).reshape(n_slots, -1, *x.shape[3:])

        mask = group(batch.mask).astype(np.float32)
        adv = group(advantages).astype(np.float64)
        count = mask.sum(1, keepdims=True)
        mean = (adv * mask).sum(1, keepdims=True) / count
        std = np.sqrt((((adv - mean) * mask) ** 2).sum(1, keepdims=True) / count)
        adv = (adv - mean) / (std + 1e-8) * mask
        actions = th.as_tensor(group(batch.actions), device=self.device)
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().reshape(n_slots, -1)
        return {
            "obs": obs_as_tensor(map_obs(group, obs), self.device),
            "actions": actions,
            "advantages": th.as_tensor(adv, dtype=th.float32, device=self.device),
            "mask": th.as_tensor(mask, device=self.device),
        }

    def _log_prob(self, params: Params, data: dict[str, Any]) -> th.Tensor:
        """Log-probabilities of the grouped actions, ``(n_slots, n)``."""
        distribution = self._distribution(params, data["obs"])
        return distribution.log_prob(data["actions"].flatten(0, 1)).reshape(data["mask"].shape)

    def _pg_loss(self, params: Params, data: dict[str, Any]) -> th.Tensor:
        """Sum over slots of each slot's REINFORCE loss ``-mean_t log pi(a_t | s_t) A_t``; with
        ``data["old_log_prob"]`` (the sampling policy's), ProMP's likelihood-ratio form
        ``-mean_t pi(a_t | s_t) / pi_old(a_t | s_t) A_t``: the same gradient where ``pi`` is ``pi_old``,
        a different second derivative (ProMP's low-variance curvature estimate) and importance weights
        elsewhere."""
        log_prob = self._log_prob(params, data)
        if "old_log_prob" in data:
            log_prob = th.exp(log_prob - data["old_log_prob"])
        per_slot = -(log_prob * data["advantages"]).sum(1) / data["mask"].sum(1)
        return per_slot.sum()

    def _inner_step(self, params: Params, data: dict[str, Any], lr: float, create_graph: bool) -> Params:
        """One policy-gradient step per slot on ``params`` (``(n_slots, *shape)`` each)."""
        with th.enable_grad():
            names = list(params)
            grads = th.autograd.grad(
                self._pg_loss(params, data), [params[n] for n in names], create_graph=create_graph
            )
        return {name: params[name] - lr * grad for name, grad in zip(names, grads, strict=True)}

    # -- training -------------------------------------------------------------------------------
    def learn(
        self: SelfMAML,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "MAML",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMAML:
        """Meta-train for ``total_timesteps`` environment steps (whole meta-iterations)."""
        return super().learn(
            total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar
        )

    def _meta_iteration(self, callback: BaseCallback) -> bool:
        env = self.env
        n_slots = env.n_tasks
        rounds = self._rounds(env, self.episodes_per_task)
        self._draw_tasks(env)
        pre, completed = self._sample(env, None, rounds, callback, reward_key=self.inner_reward_key)
        if not completed:
            return False
        pre_data = self._grouped(pre, n_slots)
        adapted = self._inner_step(self._stacked(n_slots), pre_data, self.inner_lr, create_graph=False)
        post, completed = self._sample(env, adapted, rounds, callback)
        if not completed:
            return False
        self._log_phase("pre", pre)
        self._log_phase("post", post)
        self._outer_update(pre_data, self._grouped(post, n_slots), n_slots)
        return True

    # -- adaptation -----------------------------------------------------------------------------
    def adapt(
        self,
        env: GymEnv,
        n_iterations: int = 10,
        episodes_per_iteration: int | None = None,
        seed: int | None = None,
        evaluate: bool = False,
        callback: MaybeCallback = None,
    ) -> AdaptationCurve:
        """Adapt the policy's weights to the task(s) of ``env``: ``n_iterations`` policy-gradient steps
        of size ``adapt_lr`` (default ``inner_lr``) times :meth:`adapt_step_scale` (the MAML authors'
        meta-test: the first step at the full rate, later ones at half), each slot independently; the
        model's own weights are left unchanged and the adapted ones go to ``adapted_policies`` (used by
        :meth:`predict`).

        :param env: a :class:`~maesn_sb3.MetaTaskVecEnv` (one or several task slots) or one task env.
        :param n_iterations: number of steps; ``n_iterations + 1`` batches are sampled.
        :param episodes_per_iteration: episodes per task and iteration, a multiple of ``env.envs_per_task``.
        :param seed: seeds the env and the action noise (None: the model's seed).
        :param evaluate: also run one deterministic episode per sub-env after each iteration's batch.
        :param callback: called once per iteration (locals ``iteration`` and ``batch``); False stops.
        """
        state: dict[str, Params] = {}

        def sample(meta: MetaTaskVecEnv, n_rounds: int, deterministic: bool) -> EpisodeBatch:
            if not state:  # every slot starts from the meta-learned weights
                state["params"] = {k: v.detach().clone() for k, v in self._stacked(meta.n_tasks).items()}
            return self._sample(meta, state["params"], n_rounds, deterministic=deterministic)[0]

        def step(iteration: int, batch: EpisodeBatch) -> None:
            state["params"] = self.adapt_parameters(state["params"], batch, iteration)

        meta, curve = self._adaptation_loop(
            env, n_iterations, episodes_per_iteration, seed, evaluate, callback, sample, step
        )
        self.adapted_policies = []
        for slot in range(meta.n_tasks):
            adapted = copy.deepcopy(self.policy)
            adapted.load_state_dict({k: v[slot] for k, v in state["params"].items()}, strict=False)
            self.adapted_policies.append(adapted)
        return AdaptationCurve(**curve)

    def adapt_parameters(self, params: Params, batch: EpisodeBatch, iteration: int) -> Params:
        """Adaptation step ``iteration`` of :meth:`adapt`: one policy-gradient step per task slot of
        ``batch`` on the stacked actor parameters ``params`` (``(n_slots, *shape)`` each)."""
        lr = self.inner_lr if self.adapt_lr is None else self.adapt_lr
        leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        data = self._grouped(batch, len(next(iter(leaves.values()))))
        adapted = self._inner_step(leaves, data, lr * self.adapt_step_scale(iteration), False)
        return {k: v.detach() for k, v in adapted.items()}

    def adapt_step_scale(self, iteration: int) -> float:
        """The factor on ``adapt_lr`` of adaptation step ``iteration`` (from 0): 1, then 1/2."""
        return 1.0 if iteration == 0 else 0.5

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        slot: int | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict`` with the meta-learned weights, or the adapted ones after :meth:`adapt`.

        After adapting on one task slot every observation uses its weights; after adapting on ``n``
        slots, ``slot=k`` (or ``model.predict_slot = k``) uses slot ``k``'s weights for every observation,
        and without it pass a batch of ``n`` observations (row ``i`` uses slot ``i``'s weights).
        """
        observation = self._check_observation(observation)
        if self.adapted_policies is None:
            return self.policy.predict(observation, state, episode_start, deterministic)
        chosen = self._chosen_slot(slot, len(self.adapted_policies))
        if chosen is not None or len(self.adapted_policies) == 1:
            policy = self.adapted_policies[chosen or 0]
            return policy.predict(observation, state, episode_start, deterministic)
        rows = len(next(iter(observation.values()))) if isinstance(observation, dict) else len(observation)
        if rows != len(self.adapted_policies):
            raise ValueError(
                f"the model holds {len(self.adapted_policies)} adapted policies; pass slot=k (or set "
                f"model.predict_slot = k) to use task slot k's, or a batch of {len(self.adapted_policies)} "
                f"observations (row i uses slot i's), got {rows}"
            )
        actions = [
            policy.predict(map_obs(lambda x, i=i: x[i], observation), None, None, deterministic)[0]
            for i, policy in enumerate(self.adapted_policies)
        ]
        return np.stack(actions), None
