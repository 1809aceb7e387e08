"""Collecting whole episodes, grouped by task, from a :class:`~maesn_sb3.MetaTaskVecEnv`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
)
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.utils import obs_as_tensor

from maesn_sb3.vec_env import MetaTaskVecEnv
from wrappers.latent import strip_latent

Obs = np.ndarray | dict[str, np.ndarray]


def map_obs(fn: Callable[[np.ndarray], np.ndarray], obs: Obs) -> Obs:
    """Apply ``fn`` to an array observation or to every entry of a dict observation."""
    if isinstance(obs, dict):
        return {key: fn(value) for key, value in obs.items()}
    return fn(obs)


def state_features(obs: Obs, latent_dim: int) -> np.ndarray:
    """The observation without its latent (``latent_dim`` 0: none), flattened to ``(..., n_features)``."""
    if isinstance(obs, dict):
        parts = [value for key, value in sorted(strip_latent(obs, latent_dim).items())]
        lead = parts[0].shape[:2]
        return np.concatenate([p.reshape(*lead, -1).astype(np.float32) for p in parts], axis=-1)
    return strip_latent(obs, latent_dim) if latent_dim else obs


@dataclass
class EpisodeBatch:
    """Episodes stored time-major and padded: arrays of shape ``(T, n_episodes, ...)``.

    ``mask[t, e]`` is True where step ``t`` belongs to episode ``e``; ``task_slot[e]`` is the
    MetaTaskVecEnv slot the episode ran on; ``info_rewards`` holds ``info[reward_key]`` per step when
    collected with a ``reward_key``; ``latents[e]`` is the latent episode ``e`` ran with (from the
    :class:`~wrappers.LatentWrapper`'s ``info["latent"]`` at reset), None without a latent.
    """

    observations: Obs
    actions: np.ndarray
    rewards: np.ndarray
    mask: np.ndarray
    task_slot: np.ndarray
    success: np.ndarray
    info_rewards: np.ndarray | None = None
    latents: np.ndarray | None = None

    @property
    def n_episodes(self) -> int:
        return self.mask.shape[1]

    @property
    def n_steps(self) -> int:
        return int(self.mask.sum())

    @property
    def episode_returns(self) -> np.ndarray:
        return (self.rewards * self.mask).sum(axis=0)

    @property
    def episode_lengths(self) -> np.ndarray:
        return self.mask.sum(axis=0)

    def per_task(self, values: np.ndarray, n_tasks: int) -> np.ndarray:
        """Mean of per-episode ``values`` for each task slot, shape ``(n_tasks,)``."""
        sums = np.bincount(self.task_slot, weights=values, minlength=n_tasks)
        return sums / np.maximum(np.bincount(self.task_slot, minlength=n_tasks), 1)


_NOT_FINITE_HELP = (
    "fix the env, clip or scale its rewards (gymnasium.wrappers.ClipReward, VecNormalize), or wrap the "
    "VecEnv in stable_baselines3's VecCheckNan to find the first bad step"
)


def check_finite_step(
    venv: MetaTaskVecEnv, obs: Obs | None, rewards: np.ndarray | None, step: int, what: str = "reward"
) -> None:
    """Raise a ``ValueError`` naming the sub-env, task slot and step if a reward or observation is not
    finite (such values would make the policy and latents NaN in the next update)."""
    checks = [] if rewards is None else [(what, np.asarray(rewards))]
    if obs is None:
        pass
    elif isinstance(obs, dict):
        checks += [(f"observation[{key!r}]", np.asarray(value)) for key, value in obs.items()]
    else:
        checks.append(("observation", np.asarray(obs)))
    for name, values in checks:
        if not np.issubdtype(values.dtype, np.floating):
            continue
        finite = np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
        if not finite.all():
            env = int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"sub-env {env} (task slot {int(venv.task_indices[env])}) returned a {name} that is not "
                f"finite at step {step} of the collection round (0: the reset): {values[env]!r}; "
                + _NOT_FINITE_HELP
            )


def _pad_time(array: np.ndarray, length: int) -> np.ndarray:
    if array.shape[0] == length:
        return array
    pad = np.zeros((length - array.shape[0], *array.shape[1:]), dtype=array.dtype)
    return np.concatenate([array, pad], axis=0)


def concat_padded(parts: list[Any], length: int) -> Any:
    """Time-major arrays (or dicts of them) side by side along the episode axis, each padded with zeros
    in time to ``length``."""
    if isinstance(parts[0], dict):
        return {k: np.concatenate([_pad_time(p[k], length) for p in parts], axis=1) for k in parts[0]}
    return np.concatenate([_pad_time(p, length) for p in parts], axis=1)


def draw_noise_seeds(n_rounds: int, n_tasks: int) -> np.ndarray:
    """One seed per round and task slot for the action noise, drawn from torch's global generator (so
    ``torch.manual_seed`` and the saved random state govern them)."""
    return th.randint(0, 2**62, (n_rounds, n_tasks), dtype=th.int64).numpy()


def slot_noise(action_space: spaces.Space, seeds: np.ndarray, envs_per_task: int, horizon: int) -> th.Tensor:
    """The action noise of one round, ``(horizon, len(seeds) * envs_per_task, ...)``: slot ``k``'s envs
    draw from a generator seeded with ``seeds[k]``, so any group of slots gets the same noise wherever it
    runs (a local or a Ray worker): standard normals for Box actions, uniforms for Discrete ones."""
    box = isinstance(action_space, spaces.Box)
    shape = (horizon, envs_per_task, *((get_action_dim(action_space),) if box else ()))
    draw = th.randn if box else th.rand
    parts = [draw(shape, generator=th.Generator().manual_seed(int(seed))) for seed in seeds]
    return th.cat(parts, dim=1)


def sample_actions(distribution: Distribution, noise: th.Tensor, deterministic: bool) -> th.Tensor:
    """Actions of ``distribution`` from the given ``noise`` (see :func:`slot_noise`): the mean plus the
    standard deviation times the noise (diagonal Gaussian), the inverse CDF at the noise (categorical);
    other distributions sample from torch's global generator."""
    if deterministic:
        return distribution.get_actions(deterministic=True)
    if type(distribution) is DiagGaussianDistribution:
        normal = distribution.distribution
        return normal.mean + normal.stddev * noise.to(normal.mean.device)
    if type(distribution) is CategoricalDistribution:
        probs = distribution.distribution.probs
        below = probs.cumsum(-1) < noise.to(probs.device)[:, None]
        return below.sum(-1).clamp(max=probs.shape[-1] - 1)
    return distribution.get_actions()


def collect_episodes(
    venv: MetaTaskVecEnv,
    policy: BasePolicy,
    n_rounds: int,
    deterministic: bool = False,
    on_step: Callable[[dict[str, Any]], bool] | None = None,
    reward_key: str | None = None,
    noise_seeds: np.ndarray | None = None,
) -> tuple[EpisodeBatch, bool]:
    """Run ``n_rounds`` rounds; in each, every sub-env plays exactly one episode from a fresh reset.

    The env is reset at the start of every round, so each episode draws its latent from the
    distribution in force when the round starts. This is the local collector: it steps ``venv``
    from this process (the Ray backend's remote collector is :func:`~maesn_sb3.common.remote.collect_remote`;
    :func:`~maesn_sb3.common.remote.collector_for` picks one for a VecEnv).

    :param on_step: called after every vectorised step with ``{"infos", "dones", "n_steps"}``;
        returning False stops collection early (the partial batch is then returned with False).
    :param reward_key: also record ``info[reward_key]`` of every step (e.g. a second reward).
    :param noise_seeds: the action noise's seeds, ``(n_rounds, n_tasks)`` (None: drawn by
        :func:`draw_noise_seeds`).
    :return: the batch and whether collection ran to the end.
    """
    if noise_seeds is None:
        noise_seeds = draw_noise_seeds(n_rounds, venv.n_tasks)
    n_envs = venv.num_envs
    horizon = venv.horizon  # raises if episodes could run forever
    is_box = isinstance(policy.action_space, spaces.Box)
    low, high = (policy.action_space.low, policy.action_space.high) if is_box else (None, None)
    rounds: list[Round] = []
    latents: list[np.ndarray] = []
    completed = True
    for round_index in range(n_rounds):
        noise = slot_noise(policy.action_space, noise_seeds[round_index], venv.envs_per_task, horizon)
        obs = venv.reset()
        check_finite_step(venv, obs, None, 0)
        if venv.has_latent:
            latents.append(np.stack([info["latent"] for info in venv.reset_infos]))
        active = np.ones(n_envs, dtype=bool)
        success = np.zeros(n_envs, dtype=bool)
        steps_obs, steps_actions, steps_rewards, steps_mask, steps_info = [], [], [], [], []
        while active.any():
            with th.no_grad():
                distribution = policy.get_distribution(obs_as_tensor(obs, policy.device))
                actions = sample_actions(distribution, noise[len(steps_rewards)], deterministic)
            actions = actions.cpu().numpy()
            env_actions = np.clip(actions, low, high) if is_box else actions
            next_obs, rewards, dones, infos = venv.step(env_actions)
            check_finite_step(venv, next_obs, rewards.astype(np.float32), len(steps_rewards) + 1)
            steps_obs.append(obs)
            steps_actions.append(actions)
            steps_rewards.append(rewards.astype(np.float32))
            steps_mask.append(active.copy())
            if reward_key is not None:
                if reward_key not in infos[0]:
                    raise KeyError(
                        f"reward_key {reward_key!r} is not in the step info (keys: {sorted(infos[0])})"
                    )
                steps_info.append(np.array([info[reward_key] for info in infos], dtype=np.float32))
                check_finite_step(venv, None, steps_info[-1], len(steps_rewards), f"info[{reward_key!r}]")
            finished = np.flatnonzero(dones & active)
            for i in finished:
                success[i] = bool(infos[i].get("is_success", False))
            if on_step is not None and not on_step(
                {"infos": infos, "dones": dones, "n_steps": int(active.sum())}
            ):
                completed = False
            active[finished] = False
            obs = next_obs
            if not completed:
                break
            if active.any() and len(steps_rewards) >= horizon:
                raise RuntimeError(
                    f"sub-env {int(np.flatnonzero(active)[0])} ran past the horizon of {horizon} steps "
                    "without ending its episode: its TimeLimit (or max_episode_steps) is not honoured"
                )
        stacked_obs = (
            {key: np.stack([o[key] for o in steps_obs]) for key in steps_obs[0]}
            if isinstance(steps_obs[0], dict)
            else np.stack(steps_obs)
        )
        mask = np.stack(steps_mask)
        if not completed:
            success &= ~mask[-1]  # episodes cut short by the stop did not succeed
        info_rewards = np.stack(steps_info) if reward_key is not None else None
        rounds.append(
            (stacked_obs, np.stack(steps_actions), np.stack(steps_rewards), mask, success, info_rewards)
        )
        if not completed:
            break
    batch = batch_from_rounds(rounds, venv.task_indices, latents)
    return batch, completed


#: one round of :func:`collect_episodes`: observations, actions, rewards, mask (each ``(T, n_envs, ...)``),
#: success ``(n_envs,)`` and the info rewards (None without a ``reward_key``)
Round = tuple[Obs, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


def batch_from_rounds(
    rounds: list[Round], task_indices: np.ndarray, latents: list[np.ndarray]
) -> EpisodeBatch:
    """The :class:`EpisodeBatch` of collection rounds, each padded in time to the longest, in order."""
    length = max(r[3].shape[0] for r in rounds)

    def join(index: int) -> Any:
        parts = [r[index] for r in rounds]
        return parts[0] if len(parts) == 1 else concat_padded(parts, length)

    return EpisodeBatch(
        observations=join(0),
        actions=join(1),
        rewards=join(2),
        mask=join(3),
        task_slot=np.tile(task_indices, len(rounds)),
        success=np.concatenate([r[4] for r in rounds]),
        info_rewards=join(5) if rounds[0][5] is not None else None,
        latents=np.concatenate(latents[: len(rounds)]) if latents else None,
    )
