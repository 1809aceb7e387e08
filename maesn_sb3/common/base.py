"""``MetaAlgorithm``: what the meta-learning algorithms share (tasks, sampling, the learn and adapt
loops, save and load). Its outer step is in :mod:`~maesn_sb3.common.outer`, the random-state plumbing of
save and load in :mod:`~maesn_sb3.common.save_load`; the names below still import from here."""

from __future__ import annotations

import io
import os
import pathlib
import time
import warnings
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv

from maesn_sb3.common.adaptation import AdaptationCurve, adaptation_iterations, steps_per_task
from maesn_sb3.common.advantages import LinearFeatureBaseline
from maesn_sb3.common.env_util import META_ENV_DEFAULTS, adaptation_env, meta_env_from
from maesn_sb3.common.outer import OUTER_UPDATES, OuterUpdateMixin
from maesn_sb3.common.policies import MlpPolicy, MultiInputPolicy, RunningNormalization
from maesn_sb3.common.remote import collector_for
from maesn_sb3.common.rollouts import EpisodeBatch
from maesn_sb3.common.save_load import RandomStateMixin
from maesn_sb3.common.utils import in_model_torch_threads, torch_threads, user_stacklevel
from maesn_sb3.tasks import TaskSet
from maesn_sb3.validators import (  # still importable from here, their old home
    check_episodes,
    check_float,
    check_int,
    check_model_file,
    check_observation,
    check_seed,
    check_slot,
    check_threads,  # noqa: F401
    check_timesteps,
    check_unit_interval,
)
from maesn_sb3.vec_env import MetaTaskVecEnv

__all__ = [
    "META_ENV_DEFAULTS",
    "AdaptationCurve",
    "MetaAlgorithm",
    "adaptation_env",
    "in_model_torch_threads",
    "meta_env_from",
    "steps_per_task",
    "torch_threads",
]

SelfMetaAlgorithm = TypeVar("SelfMetaAlgorithm", bound="MetaAlgorithm")


class MetaAlgorithm(OuterUpdateMixin, RandomStateMixin, BaseAlgorithm):
    """The meta-RL counterpart of SB3's ``OnPolicyAlgorithm``: what MAESN and MAML share.

    It owns the training tasks, sampling episodes from a :class:`~maesn_sb3.MetaTaskVecEnv` (with the
    callback hook), the learn loop in whole meta-iterations, the TRPO step with its logging, the
    adaptation env and the adapt loop, and exact save/load. A subclass supplies its maths:
    ``_meta_iteration`` (inner step and outer loss) and, for :meth:`adapt`, what it samples with and
    how one adaptation step changes it. The class attribute ``uses_latent`` says whether the env's
    sub-envs must carry a ``LatentWrapper`` (MAESN) or must not (MAML).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    uses_latent: ClassVar[bool] = False
    #: torch's intra-op threads while ``learn`` and ``adapt`` run (restored after; None: torch's own
    #: setting). 1 is fastest for these small networks (see :func:`torch_threads` for the measurement).
    n_torch_threads: int | None = 1
    #: Python threads that compute the chunks of TRPO's Fisher-vector products in parallel (torch
    #: releases the GIL and each op keeps ``n_torch_threads``, so on a busy machine the threads
    #: time-share the cores where OpenMP's spinning teams would collapse); None: the cores this
    #: process may use. The results do not depend on it (see :func:`~maesn_sb3.common.trpo.trpo_step`).
    n_fisher_threads: int | None = None
    #: extra ``make_meta_vec_env`` arguments for an env id given to the constructor (:func:`meta_env_from`)
    _env_id_kwargs: ClassVar[dict[str, Any]] = {}
    env: MetaTaskVecEnv | None

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | None,
        task_set: TaskSet | None,
        n_train_tasks: int,
        episodes_per_task: int | None,
        max_kl: float,
        gamma: float,
        gae_lambda: float,
        cg_max_steps: int,
        cg_damping: float,
        line_search_shrinking_factor: float,
        line_search_max_iter: int,
        inner_reward_key: str | None,
        learning_rate: float | Schedule,
        outer_update: str,
        n_epochs: int,
        n_minibatches: int,
        clip_range: float,
        target_kl: float | None,
        normalize_observations: bool,
        stats_window_size: int,
        tensorboard_log: str | None,
        policy_kwargs: dict[str, Any] | None,
        verbose: int,
        seed: int | None,
        device: th.device | str,
    ) -> None:
        env = meta_env_from(env, seed, **self._env_id_kwargs)
        if env is not None:
            self._check_env(env)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            monitor_wrapper=False,
            seed=seed,
            supported_action_spaces=(spaces.Box, spaces.Discrete),
        )
        if task_set is not None and not isinstance(task_set, TaskSet):
            raise TypeError(f"task_set must be a TaskSet or None, got {type(task_set).__name__}")
        self.task_set = task_set
        self.n_train_tasks = check_int("n_train_tasks", n_train_tasks)
        self.episodes_per_task = episodes_per_task
        self.max_kl = check_float("max_kl", max_kl, 0.0, strict=True)
        self.gamma = check_unit_interval("gamma", gamma)
        self.gae_lambda = check_unit_interval("gae_lambda", gae_lambda)
        self.cg_max_steps = check_int("cg_max_steps", cg_max_steps)
        self.cg_damping = check_float("cg_damping", cg_damping, 0.0)
        self.line_search_shrinking_factor = check_unit_interval(
            "line_search_shrinking_factor", line_search_shrinking_factor, open_low=True, open_high=True
        )
        self.line_search_max_iter = check_int("line_search_max_iter", line_search_max_iter)
        if inner_reward_key is not None and not isinstance(inner_reward_key, str):
            raise TypeError(f"inner_reward_key must be a str or None, got {inner_reward_key!r}")
        self.inner_reward_key = inner_reward_key
        if outer_update not in OUTER_UPDATES:
            raise ValueError(f"outer_update must be one of {OUTER_UPDATES}, got {outer_update!r}")
        self.outer_update = outer_update
        self.n_epochs = check_int("n_epochs", n_epochs)
        self.n_minibatches = check_int("n_minibatches", n_minibatches)
        if not isinstance(clip_range, (int, float)) or isinstance(clip_range, bool) or not clip_range > 0:
            raise ValueError(f"clip_range must be a number > 0 (inf: no clipping), got {clip_range!r}")
        self.clip_range = float(clip_range)
        self.target_kl = None if target_kl is None else check_float("target_kl", target_kl, 0.0, strict=True)
        if not isinstance(normalize_observations, (bool, np.bool_)):
            raise TypeError(f"normalize_observations must be a bool, got {normalize_observations!r}")
        self.normalize_observations = bool(normalize_observations)
        if self.normalize_observations and not isinstance(self.observation_space, (spaces.Box, type(None))):
            raise ValueError(
                "normalize_observations=True needs a Box observation space, got "
                f"{type(self.observation_space).__name__}"
            )
        if env is not None:
            self._rounds(env, self.episodes_per_task)

    # -- env and tasks ----------------------------------------------------------------------------------
    def _check_env(self, env: GymEnv) -> None:
        """A ``TypeError`` unless ``env`` is a :class:`MetaTaskVecEnv`; a ``ValueError`` unless its
        sub-envs carry a latent wrapper exactly when the algorithm uses one."""
        if not isinstance(env, MetaTaskVecEnv):
            latent = ", latent_dim=2" if self.uses_latent else ""
            raise TypeError(
                f"env must be a MetaTaskVecEnv, got {type(env).__name__}; build one with "
                f"maesn_sb3.make_meta_vec_env(env_id, n_tasks, envs_per_task{latent})"
            )
        if self.uses_latent and not env.has_latent:
            raise ValueError(
                "env's sub-envs carry no LatentWrapper: build it with make_meta_vec_env(..., latent_dim=2)"
            )
        if not self.uses_latent and env.has_latent:
            raise ValueError(
                f"env's sub-envs carry a LatentWrapper, but {type(self).__name__} has no latent: build the "
                "env without latent_dim"
            )

    @staticmethod
    def _rounds(env: MetaTaskVecEnv, episodes: int | None, name: str = "episodes_per_task") -> int:
        """Rounds of ``env.envs_per_task`` episodes that make ``episodes`` per task (None: one)."""
        return check_episodes(name, episodes, env.envs_per_task)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        self._check_env(env)
        self._rounds(env, self.episodes_per_task)
        super().set_env(env, force_reset)

    def _setup_meta_model(self) -> None:
        """The policy, the training tasks (drawn from the env when none were given), the task sampler
        and the linear feature baseline: what ``_setup_model`` of every meta-algorithm starts with."""
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        if self.normalize_observations:
            n_passed = self.latent_dim if self.uses_latent else 0
            self.policy_kwargs = {
                **self.policy_kwargs,
                "features_extractor_class": RunningNormalization,
                "features_extractor_kwargs": {"n_passed": n_passed},
            }
        self._observed: list[np.ndarray] = []
        self.policy = self.policy_class(
            self.observation_space, self.action_space, self.lr_schedule, **self.policy_kwargs
        ).to(self.device)
        if self.task_set is None:
            if self.env is None:
                raise ValueError(f"a {type(self).__name__} model without env needs a task_set")
            self.env.reset()  # consumes the seeds, so the task draw is reproducible
            self.task_set = TaskSet(train=self.env.sample_tasks(self.n_train_tasks), test=[])
        if getattr(self, "_task_rng", None) is None:
            self._task_rng = np.random.default_rng(self.seed)
        if getattr(self, "_minibatch_rng", None) is None:
            self._minibatch_rng = np.random.default_rng(None if self.seed is None else self.seed + 3)
        self._baseline = LinearFeatureBaseline()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_baseline", "_observed"]

    def _draw_tasks(self, env: MetaTaskVecEnv) -> np.ndarray:
        """Draw one training task per slot of ``env`` (without replacement when there are enough), set
        them on the env and return their indices in ``task_set.train``."""
        n_train = len(self.task_set.train)
        slots = self._task_rng.choice(n_train, size=env.n_tasks, replace=n_train < env.n_tasks)
        env.set_tasks([self.task_set.train[i] for i in slots])
        return slots

    # -- sampling ---------------------------------------------------------------------------------------
    def _collect(
        self,
        env: MetaTaskVecEnv,
        policy: Any,
        n_rounds: int,
        callback: BaseCallback | None = None,
        deterministic: bool = False,
        reward_key: str | None = None,
    ) -> tuple[EpisodeBatch, bool]:
        """Sample ``n_rounds`` rounds of episodes with ``policy``; with ``callback`` (training), every
        vectorised step counts in ``num_timesteps``, feeds the info buffers and calls the callback,
        whose False stops sampling (the bool returned)."""
        self.policy.set_training_mode(False)
        on_step = None
        if callback is not None:
            callback.on_rollout_start()

            def on_step(step: dict[str, Any]) -> bool:
                self.num_timesteps += step["n_steps"]
                self._update_info_buffer(step["infos"], step["dones"])
                callback.update_locals(step)
                return callback.on_step()

        batch, completed = collector_for(env)(env, policy, n_rounds, deterministic, on_step, reward_key)
        if callback is not None:
            if self.normalize_observations:  # for the statistics, once the meta-iteration is over
                self._observed.append(batch.observations[batch.mask.astype(bool)])
            callback.on_rollout_end()
        return batch, completed

    def _log_phase(self, phase: str, batch: EpisodeBatch) -> None:
        """Log the mean return and success of the ``phase`` (``"pre"`` or ``"post"``) update episodes."""
        self.logger.record(f"rollout/{phase}_update_return", float(batch.episode_returns.mean()))
        self.logger.record(f"rollout/{phase}_update_success", float(batch.success.mean()))

    # -- adaptation -------------------------------------------------------------------------------------
    def _wrap_task_env(self, env: gym.Env) -> gym.Env:
        """A single task env as ``adapt`` needs it (e.g. with a latent wrapper); the env itself here."""
        return env

    def _adaptation_env(self, env: GymEnv) -> MetaTaskVecEnv:
        return adaptation_env(
            env, self._check_env, self._wrap_task_env, self.observation_space, self.action_space
        )

    @in_model_torch_threads
    def _adaptation_loop(
        self,
        env: GymEnv,
        n_iterations: int,
        episodes_per_iteration: int | None,
        seed: int | None,
        evaluate: bool,
        callback: MaybeCallback,
        sample: Callable[[MetaTaskVecEnv, int, bool], EpisodeBatch],
        step: Callable[[int, EpisodeBatch], None],
        record: Callable[[], None] | None = None,
    ) -> tuple[MetaTaskVecEnv, dict[str, np.ndarray | None]]:
        """The skeleton of ``adapt``: check the arguments, seed, then run the iterations
        (:func:`~maesn_sb3.common.adaptation.adaptation_iterations`: ``sample``, ``record``, ``step``).

        Returns the adaptation env and the fields of an :class:`AdaptationCurve`.
        """
        n_iterations = check_int("n_iterations", n_iterations, minimum=0)
        seed = self._check_seed(seed)
        meta = self._adaptation_env(env)
        episodes = meta.envs_per_task if episodes_per_iteration is None else episodes_per_iteration
        rounds = self._rounds(meta, episodes, "episodes_per_iteration")
        seed = self.seed if seed is None else seed
        if seed is not None:
            set_random_seed(seed)
            meta.seed(seed)
        callback = self._init_callback(callback) if callback is not None else None
        return meta, adaptation_iterations(
            meta, rounds, n_iterations, evaluate, callback, sample, step, record
        )

    @abstractmethod
    def _meta_iteration(self, callback: BaseCallback) -> bool:
        """Run one meta-iteration; False when a callback stopped it."""

    @in_model_torch_threads
    def learn(
        self: SelfMetaAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMetaAlgorithm:
        """Meta-train for ``total_timesteps`` environment steps (whole meta-iterations), with torch at
        :attr:`n_torch_threads` threads."""
        total_timesteps = check_timesteps(total_timesteps)
        if self.env is None:
            raise ValueError("learn() needs an env: pass one to the constructor, set_env() or load()")
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        saved = self.__dict__.pop("_saved_random_state", None)
        if saved is not None:  # the first learn after load: continue the saved random streams
            self._restore_random_state(saved)
        callback.on_training_start(locals(), globals())
        iteration, start = 0, self.num_timesteps
        while self.num_timesteps < total_timesteps:
            before = self.num_timesteps
            self._observed = []
            if not self._meta_iteration(callback):
                break
            self._update_observation_statistics()
            iteration += 1
            self._size_progress_bar(callback, start, before, total_timesteps, iteration)
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            if log_interval and iteration % log_interval == 0:
                self.logger.record("time/iterations", iteration, exclude="tensorboard")
                self._dump_logs()
        callback.on_training_end()
        return self

    def _update_observation_statistics(self) -> None:
        """Fold the observations of the meta-iteration just finished into the policy's running statistics
        (``normalize_observations``): fixed while an iteration samples and updates, so the outer step's
        ratios compare policies that normalise alike."""
        if self._observed:
            observations = np.concatenate(self._observed)
            for module in self.policy.modules():
                if isinstance(module, RunningNormalization):
                    module.update(observations)

    def _size_progress_bar(
        self, callback: BaseCallback, start: int, before: int, total_timesteps: int, iteration: int
    ) -> None:
        """After a meta-iteration of ``num_timesteps - before`` steps: warn when the request was smaller
        than that one iteration, and size a progress bar to the steps that whole iterations will run."""
        per_iteration = self.num_timesteps - before
        if per_iteration <= 0:
            return
        remaining = max(total_timesteps - self.num_timesteps, 0)
        will_run = self.num_timesteps + -(-remaining // per_iteration) * per_iteration
        if iteration == 1 and total_timesteps - start < per_iteration:
            warnings.warn(
                f"learn() runs whole meta-iterations: one is {per_iteration:,} env steps here, more than the "
                f"{total_timesteps - start:,} asked for, so {per_iteration:,} steps ran",
                stacklevel=user_stacklevel(),
            )
        callbacks = callback.callbacks if isinstance(callback, CallbackList) else [callback]
        for cb in callbacks:
            bar = getattr(cb, "pbar", None) if isinstance(cb, ProgressBarCallback) else None
            if bar is not None:
                bar.total = will_run - start
                if hasattr(bar, "_prog"):  # tqdm.rich draws its own total
                    bar._prog.update(bar._task_id, total=bar.total)
                bar.refresh()

    #: the adapted task slot that ``predict`` uses for every observation (None: row ``i`` uses slot ``i``)
    predict_slot: int | None = None

    def _chosen_slot(self, slot: int | None, n_slots: int) -> int | None:
        """The slot ``predict`` uses: ``slot``, else :attr:`predict_slot`, checked against ``n_slots``."""
        slot = self.predict_slot if slot is None else slot
        return None if slot is None else check_slot(slot, n_slots)

    # -- checks at the boundary -------------------------------------------------------------------------
    @staticmethod
    def _check_seed(seed: Any) -> int | None:
        return check_seed("seed", seed)

    def _check_observation(
        self, observation: Any, n_features: Sequence[int] | None = None
    ) -> np.ndarray | dict[str, np.ndarray]:
        return check_observation(observation, self.observation_space, n_features)

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """SB3's ``save``, plus the random states (torch's and the env's generators) so that
        ``load`` then ``learn(..., reset_num_timesteps=False)`` continues exactly as if never stopped."""
        broken = self._non_finite_parameters()
        if broken:
            warnings.warn(
                f"saving a model whose parameters are not finite ({', '.join(broken[:3])}): it cannot act "
                "sensibly; the training that produced it met numbers that were not finite",
                stacklevel=2,
            )
        pending = self.__dict__.get("_saved_random_state")  # loaded, not yet trained: keep it for learn
        self._saved_random_state = self._random_state()
        self._algorithm = type(self).__name__  # lets load() tell a wrong file from a right one
        try:
            super().save(path, exclude, include)
        finally:
            del self._algorithm
            if pending is None:
                del self._saved_random_state

    @classmethod
    def load(
        cls: type[SelfMetaAlgorithm],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfMetaAlgorithm:
        """SB3's ``load``, after checking (without unpickling) that ``path`` holds a model of this class.

        ``env`` may also be a single task env (``gymnasium.make(env_id)``): it is wrapped as :meth:`adapt`
        wraps one (with the model's latent wrapper for MAESN) into a one-slot :class:`MetaTaskVecEnv`.

        A model zip holds pickled Python objects (SB3's format, plus the task set): loading one runs
        code from the file, so load only files you trust.
        """
        if isinstance(path, (str, os.PathLike)):
            path = check_model_file(path, cls)
        single = isinstance(env, gym.Env) and not isinstance(env, VecEnv)
        model = super().load(
            path, None if single else env, device, custom_objects, print_system_info, force_reset, **kwargs
        )
        model.__dict__.pop("_algorithm", None)
        if single:
            meta = model._adaptation_env(env)
            model.n_envs = meta.num_envs  # as SB3's load(path, env) does for an env of another size
            model.set_env(meta, force_reset)
        return model

    def _dump_logs(self) -> None:
        elapsed = max((time.time_ns() - self.start_time) / 1e9, 1e-9)
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_mean", float(np.mean([ep["r"] for ep in self.ep_info_buffer])))
            self.logger.record("rollout/ep_len_mean", float(np.mean([ep["l"] for ep in self.ep_info_buffer])))
        if self.ep_success_buffer:
            self.logger.record("rollout/success_rate", float(np.mean(self.ep_success_buffer)))
        self.logger.record("time/fps", int((self.num_timesteps - self._num_timesteps_at_start) / elapsed))
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)
