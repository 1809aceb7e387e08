"""Episode collectors: local (:func:`~maesn_sb3.common.rollouts.collect_episodes`) or remote, on the
workers of a Ray backend (:func:`collect_remote`); :func:`collector_for` picks one for a VecEnv.

Remote collection hands a round to the Ray workers at once. Each worker receives what it needs to act,
once per call through Ray's object store: an actor-critic policy travels as its weights and the small
config that builds it (:class:`PolicyWeights`; a worker builds it once and keeps it), a policy with one
set of weights per task slot (:class:`SlotPolicy`) as the worker's slots' part. Each worker plays its
episodes locally with the local collector and sends them back, and the driver lays them out as local
collection does, in the same order, with the same numbers for the same seed. The backend only runs the
function on its workers (:meth:`~maesn_sb3.vec_env.RayVecEnv.run_on_workers`); it knows no policy.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy

from maesn_sb3.common.rollouts import EpisodeBatch, batch_from_rounds, collect_episodes, concat_padded
from maesn_sb3.vec_env.meta import MetaTaskVecEnv
from maesn_sb3.vec_env.ray_backend import RayVecEnv, RayWorkerError, import_ray

__all__ = ["Collector", "PolicyWeights", "SlotPolicy", "collect_remote", "collector_for"]

#: ``collector(venv, policy, n_rounds, deterministic, on_step, reward_key, noise_seeds)``, as
#: :func:`~maesn_sb3.common.rollouts.collect_episodes`
Collector = Callable[..., tuple[EpisodeBatch, bool]]
#: per step of one round on one worker: the done flags and the infos of the envs whose episode ended
Steps = list[tuple[np.ndarray, dict[int, dict]]]


@runtime_checkable
class SlotPolicy(Protocol):
    """A policy with one set of weights per task slot (MAML's adapted policies): a remote worker gets
    only its slots' part."""

    def for_slots(self, start: int, stop: int) -> Any: ...


@dataclass(frozen=True)
class PolicyWeights:
    """An actor-critic policy as it travels to a Ray worker: its weights and the small config that builds
    it (class, constructor arguments, device, training mode), not the pickled policy with its optimizer.

    ``key`` names the config: a worker builds the policy once per key (:meth:`on_worker`) and loads the
    weights into it on every call.
    """

    key: str
    cls: type[ActorCriticPolicy]
    kwargs: dict[str, Any]
    device: str
    training: bool
    state: dict[str, th.Tensor]

    @classmethod
    def of(cls, policy: ActorCriticPolicy) -> PolicyWeights:
        import cloudpickle

        # SB3's own config of the policy (what BasePolicy.save stores), without the learning rate
        kwargs = policy._get_constructor_parameters()
        kwargs.update(lr_schedule=_no_learning, share_features_extractor=policy.share_features_extractor)
        config = (type(policy), kwargs, str(policy.device), policy.training)
        key = hashlib.sha256(cloudpickle.dumps(config)).hexdigest()
        state = {name: value.detach() for name, value in policy.state_dict().items()}
        return cls(key, *config, state)

    def on_worker(self, cache: dict[str, Any]) -> ActorCriticPolicy:
        """The policy on a worker: built on the first call with this key (the worker's torch generator
        left as it was), then the weights loaded, exactly."""
        key, policy = cache.get("policy", (None, None))
        if key != self.key:
            with th.random.fork_rng(devices=[]):
                policy = self.cls(**self.kwargs).to(self.device)
            cache["policy"] = (self.key, policy)
        policy.load_state_dict(self.state)
        policy.set_training_mode(self.training)
        return policy


def _no_learning(progress_remaining: float) -> float:
    """The learning rate of a worker's copy of a policy, which never steps its optimizer."""
    return 0.0


def _message(policy: Any) -> Any:
    """What travels to a worker for ``policy``: :class:`PolicyWeights` of an actor-critic policy (without
    SDE, whose exploration matrices are no weights), else the policy itself."""
    if isinstance(policy, ActorCriticPolicy) and not policy.use_sde:
        return PolicyWeights.of(policy)
    return policy


def collector_for(venv: MetaTaskVecEnv) -> Collector:
    """The collector of ``venv``: remote on a Ray backend, else local."""
    return collect_remote if isinstance(venv.venv, RayVecEnv) else collect_episodes


def _light(info: dict[str, Any]) -> dict[str, Any]:
    """An ended episode's info without its (large) terminal observation, to travel back to the driver."""
    return {key: value for key, value in info.items() if key != "terminal_observation"}


def _collect_on_worker(
    worker: Any,
    policy: Any,
    slots: tuple[int, int],
    envs_per_task: int,
    success_key: str,
    n_rounds: int,
    deterministic: bool,
    reward_key: str | None,
    noise_seeds: np.ndarray,
    torch_threads: int,
) -> tuple[list[tuple[EpisodeBatch, Steps]], float]:
    """Run on a Ray worker: ``n_rounds`` rounds on its slots ``slots[0] .. slots[1] - 1``, with torch at
    the caller's ``torch_threads``: per round, the batch and its :data:`Steps`; and the seconds that took."""
    start = time.perf_counter()
    if isinstance(policy, PolicyWeights):
        policy = policy.on_worker(worker.cache)
    meta = worker.meta_view(slots[1] - slots[0], envs_per_task, success_key)
    th.set_num_threads(torch_threads)
    rounds = []
    for round_index in range(n_rounds):
        steps: Steps = []

        def record(step: dict[str, Any], steps: Steps = steps) -> bool:
            dones = np.asarray(step["dones"], dtype=bool)
            steps.append((dones, {int(i): _light(step["infos"][i]) for i in np.flatnonzero(dones)}))
            return True

        batch, _ = collect_episodes(
            meta, policy, 1, deterministic, record, reward_key, noise_seeds[round_index : round_index + 1]
        )
        rounds.append((batch, steps))
    return rounds, time.perf_counter() - start


def collect_remote(
    venv: MetaTaskVecEnv,
    policy: BasePolicy,
    n_rounds: int,
    deterministic: bool = False,
    on_step: Callable[[dict[str, Any]], bool] | None = None,
    reward_key: str | None = None,
    noise_seeds: np.ndarray | None = None,
) -> tuple[EpisodeBatch, bool]:
    """:func:`~maesn_sb3.common.rollouts.collect_episodes` on the workers of ``venv``'s Ray backend.

    ``on_step`` is called for every vectorised step in order, with the done flags and the ended
    episodes' infos (the others' infos are empty); its False cuts the batch where local collection
    would have stopped. A worker that died is replaced and the call run again, up to the backend's
    ``max_retries`` times.
    """
    from maesn_sb3.common.rollouts import draw_noise_seeds

    ray_venv = venv.venv
    if not isinstance(ray_venv, RayVecEnv):
        raise TypeError(f"remote collection needs a RayVecEnv backend, got {type(ray_venv).__name__}")
    if noise_seeds is None:
        noise_seeds = draw_noise_seeds(n_rounds, venv.n_tasks)
    if ray_venv.group_size != venv.envs_per_task:
        raise ValueError(
            f"the Ray workers hold groups of {ray_venv.group_size} sub-envs, not whole task slots of "
            f"{venv.envs_per_task}: make the env with make_meta_vec_env(..., vectorization='ray')"
        )
    ray = import_ray()
    timings: dict[str, float] = {}
    for attempt in range(ray_venv.max_retries + 1):
        start = time.perf_counter()
        slot_ranges = [(g.slots.start, g.slots.stop) for g in ray_venv.groups]
        if isinstance(policy, SlotPolicy):  # each worker receives its own slots' weights only
            messages = [policy.for_slots(*slots) for slots in slot_ranges]
            policies = [ray.put(message) for message in messages]
        else:
            messages = [_message(policy)]
            policies = [ray.put(messages[0])] * len(slot_ranges)
        put_s = time.perf_counter() - start
        args = [
            (
                worker_policy,
                slots,
                venv.envs_per_task,
                venv.success_key,
                n_rounds,
                deterministic,
                reward_key,
                noise_seeds[:, slots[0] : slots[1]],
                th.get_num_threads(),  # inside learn and adapt: the model's n_torch_threads
            )
            for worker_policy, slots in zip(policies, slot_ranges, strict=True)
        ]
        try:
            answers = ray_venv.run_on_workers(_collect_on_worker, args, "collecting episodes", timings)
            timings["broadcast_s"] += put_s
            break
        except RayWorkerError as error:
            if attempt == ray_venv.max_retries:
                raise
            warnings.warn(f"{error}; running the round again on a new worker", stacklevel=2)
            ray_venv.restart_worker(error.worker)
            venv.set_tasks(venv.tasks)
            if venv.latent_distributions is not None:
                venv.set_latent_distributions(*venv.latent_distributions)
    start = time.perf_counter()
    batch, completed = _assemble(venv, [rounds for rounds, _ in answers], n_rounds, on_step)
    timings["assemble_s"] = time.perf_counter() - start
    timings["worker_s"] = max(seconds for _, seconds in answers)
    timings["policy_bytes"] = _nbytes(messages[0])
    timings["episode_bytes"] = sum(_array_bytes(batch) for rounds, _ in answers for batch, _ in rounds)
    stats = ray_venv.collection_stats
    for key, value in timings.items():
        stats[key] = stats.get(key, 0) + value
    stats["calls"] = stats.get("calls", 0) + 1
    return batch, completed


def _array_bytes(batch: EpisodeBatch) -> int:
    """The bytes of a batch's arrays."""
    arrays = [getattr(batch, field) for field in ("actions", "rewards", "mask", "task_slot", "success")]
    arrays += [batch.info_rewards, batch.latents]
    obs = batch.observations
    arrays += list(obs.values()) if isinstance(obs, dict) else [obs]
    return sum(array.nbytes for array in arrays if array is not None)


def _nbytes(value: Any) -> int:
    """The size of ``value`` as Ray serialises it (pickle protocol 5)."""
    import cloudpickle

    return len(cloudpickle.dumps(value, protocol=5))


def _assemble(
    meta: MetaTaskVecEnv,
    answers: list[list[tuple[EpisodeBatch, Steps]]],
    n_rounds: int,
    on_step: Callable[[dict[str, Any]], bool] | None,
) -> tuple[EpisodeBatch, bool]:
    """The workers' rounds laid out as :func:`~maesn_sb3.common.rollouts.collect_episodes` lays out
    one local collection, with ``on_step`` replayed step by step."""

    rounds, latents, completed = [], [], True
    for round_index in range(n_rounds):
        parts = [answer[round_index] for answer in answers]
        length = max(batch.mask.shape[0] for batch, _ in parts)

        def join(field: str, parts: list = parts, length: int = length) -> Any:
            return concat_padded([getattr(batch, field) for batch, _ in parts], length)

        obs, actions, rewards, mask = join("observations"), join("actions"), join("rewards"), join("mask")
        info_rewards = join("info_rewards") if parts[0][0].info_rewards is not None else None
        success = np.concatenate([batch.success for batch, _ in parts])
        if parts[0][0].latents is not None:
            latents.append(np.concatenate([batch.latents for batch, _ in parts]))
        if on_step is not None:
            offsets = np.cumsum([0] + [batch.mask.shape[1] for batch, _ in parts])
            for t in range(length):
                dones = np.zeros(meta.num_envs, dtype=bool)
                infos: list[dict[str, Any]] = [{} for _ in range(meta.num_envs)]
                for (_, steps), offset in zip(parts, offsets, strict=False):
                    if t < len(steps):
                        dones[offset : offset + len(steps[t][0])] = steps[t][0]
                        for i, info in steps[t][1].items():
                            infos[offset + i] = {**info, "task_index": int(meta.task_indices[offset + i])}
                if not on_step({"infos": infos, "dones": dones, "n_steps": int(mask[t].sum())}):
                    completed = False
                    cut = t + 1
                    obs = obs[:cut] if not isinstance(obs, dict) else {k: v[:cut] for k, v in obs.items()}
                    actions, rewards, mask = actions[:cut], rewards[:cut], mask[:cut]
                    info_rewards = None if info_rewards is None else info_rewards[:cut]
                    success = success & ~mask[-1]  # episodes cut short by the stop did not succeed
                    break
        rounds.append((obs, actions, rewards, mask, success, info_rewards))
        if not completed:
            break
    return batch_from_rounds(rounds, meta.task_indices, latents), completed
