"""Agents for Meta-World's meta-learning evaluation protocol (:func:`metalearning_evaluation`, and
Meta-World's own ``metaworld.evaluation.metalearning_evaluation``).

The evaluation owns the envs and the protocol: for each of ``num_evals`` rounds it gives every env of its
test vector env a test task, lets the agent act for ``adaptation_episodes`` episodes per env
(``adapt_action`` and ``step``), calls ``adapt`` (``adaptation_steps`` times), then plays evaluation
episodes with ``eval_action`` (an episode is solved if its success flag was ever set: it stops at
success; ``reset(env_mask)`` marks the envs whose episode ended). The agents below plug models of this
package into it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import obs_as_tensor

from maesn_sb3.common.rollouts import EpisodeBatch
from maesn_sb3.maesn import MAESN
from maesn_sb3.maml import MAML
from maesn_sb3.maml.maml import _SlotPolicy
from maesn_sb3.ppo.ppo import ppo_settings
from maesn_sb3.rl2 import RL2
from wrappers.latent import append_latent

__all__ = [
    "MAESNAgent",
    "MAMLAgent",
    "PPOFinetuneAgent",
    "PolicyAgent",
    "RL2Agent",
    "metaworld_agent",
]


def _clip(actions: np.ndarray, space: spaces.Space) -> np.ndarray:
    return np.clip(actions, space.low, space.high) if isinstance(space, spaces.Box) else actions


def _episodes(steps: list[Any]) -> list[list[tuple[int, int]]]:
    """For each env, the ``(first, last)`` step indices of its complete episodes in ``steps``."""
    dones = np.stack([np.logical_or(s.terminated, s.truncated) for s in steps])  # (T, n_envs)
    spans = []
    for column in dones.T:
        ends = np.flatnonzero(column)
        spans.append([(0 if j == 0 else int(ends[j - 1]) + 1, int(end)) for j, end in enumerate(ends)])
    return spans


def episode_batch(steps: list[Any], latent_dim: int = 0) -> EpisodeBatch:
    """The complete episodes of Meta-World's adaptation ``Timestep``s as an :class:`EpisodeBatch` whose
    task slot ``i`` is env ``i``, each env with as many episodes (the fewest any env completed); with
    ``latent_dim``, each step's ``aux_policy_outputs["latent"]`` is appended to its observation and the
    episode's latent kept in ``latents``."""
    spans = _episodes(steps)
    per_env = min(len(s) for s in spans)
    if per_env == 0:
        raise RuntimeError("an env completed no adaptation episode: nothing to adapt on")
    length = max(last - first + 1 for s in spans for first, last in s[:per_env])
    n_envs, n_episodes = len(spans), len(spans) * per_env
    obs = np.stack([s.observation for s in steps]).astype(np.float32)
    if latent_dim:
        latents_t = np.stack([s.aux_policy_outputs["latent"] for s in steps]).astype(np.float32)
        obs = append_latent(obs, latents_t)
    actions = np.stack([s.action for s in steps])
    rewards = np.stack([s.reward for s in steps]).astype(np.float32)
    batch_obs = np.zeros((length, n_episodes, obs.shape[-1]), dtype=np.float32)
    batch_actions = np.zeros((length, n_episodes, *actions.shape[2:]), dtype=actions.dtype)
    batch_rewards = np.zeros((length, n_episodes), dtype=np.float32)
    mask = np.zeros((length, n_episodes), dtype=bool)
    latents = np.zeros((n_episodes, latent_dim))
    for env in range(n_envs):
        for j, (first, last) in enumerate(spans[env][:per_env]):
            e, span, n = env * per_env + j, slice(first, last + 1), last - first + 1
            batch_obs[:n, e] = obs[span, env]
            batch_actions[:n, e] = actions[span, env]
            batch_rewards[:n, e] = rewards[span, env]
            mask[:n, e] = True
            if latent_dim:
                latents[e] = latents_t[first, env]
    return EpisodeBatch(
        observations=batch_obs,
        actions=batch_actions,
        rewards=batch_rewards,
        mask=mask,
        task_slot=np.repeat(np.arange(n_envs), per_env),
        success=np.zeros(n_episodes, dtype=bool),
        latents=latents if latent_dim else None,
    )


class PolicyAgent:
    """An SB3 model's policy, without adaptation: stochastic actions while Meta-World adapts, then the
    deterministic (or stochastic) policy; a zero-shot baseline (e.g. a :class:`~maesn_sb3.MultiTaskPPO`)."""

    def __init__(self, model: BaseAlgorithm, deterministic: bool = True) -> None:
        if not isinstance(model, BaseAlgorithm):
            raise TypeError(f"model must be a stable_baselines3 model, got {type(model).__name__}")
        self.model, self.deterministic = model, bool(deterministic)

    def init(self) -> None:
        pass

    def adapt_action(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self.model.predict(observations, deterministic=False)[0], {}

    def step(self, timestep: Any) -> None:
        pass

    def adapt(self) -> None:
        pass

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        return self.model.predict(observations, deterministic=self.deterministic)[0]

    def reset(self, env_mask: np.ndarray) -> None:
        pass


class MAESNAgent:
    """MAESN in Meta-World's protocol: each env (one test task) starts from the prior N(0, I); adaptation
    episodes draw one latent per episode from the env's current distribution, and each ``adapt`` is one
    latent step of :meth:`~maesn_sb3.MAESN.adapt` (:meth:`~maesn_sb3.MAESN.adapt_latents`, with its step
    schedule at the reference's size: ``step_scale`` 1, as the committed Meta-World results were measured,
    where ``adapt``'s default is 2) on that env's episodes. Evaluation acts with the adapted mean latent
    and the mean action, as :meth:`~maesn_sb3.MAESN.adapt`'s evaluation.

    :param model: a meta-trained :class:`~maesn_sb3.MAESN` (or latent-space baseline).
    :param seed: seeds the latent draws and torch's generator (the action noise).
    :param natural_gradient: as in :meth:`~maesn_sb3.MAESN.adapt` (None: the model's rule).
    """

    def __init__(self, model: MAESN, seed: int | None = None, natural_gradient: bool | None = None) -> None:
        if not isinstance(model, MAESN):
            raise TypeError(f"model must be a MAESN model, got {type(model).__name__}")
        self.model, self.natural_gradient = model, natural_gradient
        self.rng = np.random.default_rng(seed)
        if seed is not None:
            th.manual_seed(seed)
        self.init()

    def init(self) -> None:
        """A new set of test tasks: every env back to the prior."""
        self.mean: th.Tensor | None = None
        self.log_std: th.Tensor | None = None
        self.iteration = 0
        self._steps: list[Any] = []
        self._starts: np.ndarray | None = None
        self._latents: np.ndarray | None = None

    def _prior(self, n_envs: int) -> None:
        if self.mean is None:
            self.mean = th.zeros((n_envs, self.model.latent_dim), device=self.model.device)
            self.log_std = th.zeros_like(self.mean)
        if len(self.mean) != n_envs:
            raise ValueError(f"the agent holds latents for {len(self.mean)} envs, got {n_envs} observations")

    def _act(self, observations: np.ndarray, latents: np.ndarray, deterministic: bool) -> np.ndarray:
        policy = self.model.policy
        with_latent = append_latent(np.asarray(observations, dtype=np.float32), latents.astype(np.float32))
        with th.no_grad():
            actions = policy.get_distribution(obs_as_tensor(with_latent, policy.device)).get_actions(
                deterministic=deterministic
            )
        return _clip(actions.cpu().numpy(), policy.action_space)

    def adapt_action(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n_envs = len(observations)
        self._prior(n_envs)
        if self._starts is None:
            self._starts = np.ones(n_envs, dtype=bool)
            self._latents = np.zeros((n_envs, self.model.latent_dim))
        mean, std = self.mean.cpu().numpy(), self.log_std.exp().cpu().numpy()
        fresh = mean + std * self.rng.standard_normal(mean.shape)
        self._latents[self._starts] = fresh[self._starts]
        self._starts[:] = False
        return self._act(observations, self._latents, False), {"latent": self._latents.copy()}

    def step(self, timestep: Any) -> None:
        self._steps.append(timestep)
        self._starts |= np.logical_or(timestep.terminated, timestep.truncated)

    def adapt(self) -> None:
        """One latent step per env on its complete adaptation episodes (as many per env: the fewest)."""
        if not self._steps:
            raise RuntimeError("adapt() needs adaptation episodes: call adapt_action() and step() first")
        batch = episode_batch(self._steps, self.model.latent_dim)
        self.mean, self.log_std = self.model.adapt_latents(
            self.mean, self.log_std, batch, self.iteration, self.natural_gradient
        )
        self.iteration += 1
        self._steps, self._starts = [], None

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        self._prior(len(observations))
        return self._act(observations, self.mean.cpu().numpy(), True)

    def reset(self, env_mask: np.ndarray) -> None:
        pass


class MAMLAgent:
    """MAML in Meta-World's protocol: each env (one test task) starts from the meta-learned weights, and
    each ``adapt`` is one policy-gradient step of :meth:`~maesn_sb3.MAML.adapt`
    (:meth:`~maesn_sb3.MAML.adapt_parameters`, same step size and schedule) on that env's episodes.
    Evaluation acts with each env's adapted weights (mean actions unless ``deterministic=False``).

    :param model: a meta-trained :class:`~maesn_sb3.MAML`.
    :param seed: seeds torch's generator (the action noise).
    """

    def __init__(self, model: MAML, seed: int | None = None, deterministic: bool = True) -> None:
        if not isinstance(model, MAML):
            raise TypeError(f"model must be a MAML model, got {type(model).__name__}")
        self.model, self.deterministic = model, bool(deterministic)
        if seed is not None:
            th.manual_seed(seed)
        self.init()

    def init(self) -> None:
        """A new set of test tasks: every env back to the meta-learned weights."""
        self.params: dict[str, th.Tensor] | None = None
        self.iteration = 0
        self._steps: list[Any] = []

    def _act(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        if self.params is None:
            stacked = self.model._stacked(len(observations))
            self.params = {k: v.detach().clone() for k, v in stacked.items()}
        policy = _SlotPolicy(self.model, self.params, 1)
        obs = obs_as_tensor(np.asarray(observations, dtype=np.float32), self.model.device)
        with th.no_grad():
            actions = policy.get_distribution(obs).get_actions(deterministic=deterministic)
        return actions.cpu().numpy()

    def adapt_action(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return _clip(self._act(observations, False), self.model.action_space), {}

    def step(self, timestep: Any) -> None:
        self._steps.append(timestep)

    def adapt(self) -> None:
        """One policy-gradient step per env on its complete adaptation episodes."""
        if not self._steps:
            raise RuntimeError("adapt() needs adaptation episodes: call adapt_action() and step() first")
        self.params = self.model.adapt_parameters(self.params, episode_batch(self._steps), self.iteration)
        self.iteration += 1
        self._steps = []

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        return _clip(self._act(observations, self.deterministic), self.model.action_space)

    def reset(self, env_mask: np.ndarray) -> None:
        pass


class _SpacesEnv(gym.Env):
    """An env that only carries spaces: what SB3's PPO needs to be built around a policy."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        raise RuntimeError("_SpacesEnv only carries spaces")

    def step(self, action: Any):
        raise RuntimeError("_SpacesEnv only carries spaces")


class PPOFinetuneAgent:
    """PPO fine-tuning in Meta-World's protocol (the paper's fine-tuned multi-task PPO, or PPO from
    scratch with an untrained model): each env gets a copy of ``model`` (its policy and PPO settings),
    and each ``adapt`` is one PPO update (SB3's ``PPO.train``) of that copy on the env's adaptation
    steps. The last step of a cut-off episode bootstraps with value 0 (the evaluation does not hand the
    final observation to the agent).

    :param model: an SB3 ``PPO`` (e.g. a :class:`~maesn_sb3.MultiTaskPPO`).
    :param seed: seeds the copies.
    :param ppo_kwargs: overrides of the copies' PPO settings (e.g. ``n_epochs``, ``batch_size``).
    """

    def __init__(self, model: PPO, seed: int | None = None, **ppo_kwargs: Any) -> None:
        if not isinstance(model, PPO):
            raise TypeError(f"model must be a stable_baselines3 PPO, got {type(model).__name__}")
        self.model, self.seed, self.ppo_kwargs = model, seed, ppo_kwargs
        self.init()

    def init(self) -> None:
        self.copies: list[PPO] | None = None
        self._steps: list[Any] = []

    def _make_copies(self, n_envs: int) -> list[PPO]:
        model = self.model
        settings = {**ppo_settings(model), **self.ppo_kwargs}
        parameters = model.get_parameters()
        copies = []
        for i in range(n_envs):
            spaces_env = _SpacesEnv(model.observation_space, model.action_space)
            seed = None if self.seed is None else self.seed + i
            ppo = PPO(model.policy_class, spaces_env, n_steps=2, batch_size=2, seed=seed, **settings)
            ppo.set_parameters(parameters, exact_match=False)
            ppo.set_logger(configure(None, []))
            copies.append(ppo)
        return copies

    def adapt_action(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if self.copies is None:
            self.copies = self._make_copies(len(observations))
        actions, values, log_probs = [], [], []
        for ppo, obs in zip(self.copies, observations, strict=True):
            with th.no_grad():
                action, value, log_prob = ppo.policy(obs_as_tensor(obs[None], ppo.device))
            actions.append(action.cpu().numpy()[0])
            values.append(float(value))
            log_probs.append(float(log_prob))
        actions = np.stack(actions)
        aux = {"raw_action": actions, "value": np.array(values), "log_prob": np.array(log_probs)}
        return _clip(actions, self.model.action_space), aux

    def step(self, timestep: Any) -> None:
        self._steps.append(timestep)

    def adapt(self) -> None:
        """One PPO update of each env's copy on that env's adaptation steps."""
        if not self._steps:
            raise RuntimeError("adapt() needs adaptation steps: call adapt_action() and step() first")
        n_steps = len(self._steps)
        for env, ppo in enumerate(self.copies):
            buffer = RolloutBuffer(
                n_steps, ppo.observation_space, ppo.action_space, ppo.device, ppo.gae_lambda, ppo.gamma, 1
            )
            start = True
            for s in self._steps:
                aux = s.aux_policy_outputs
                buffer.add(
                    s.observation[env : env + 1],
                    aux["raw_action"][env : env + 1],
                    s.reward[env : env + 1],
                    np.array([start]),
                    th.tensor([aux["value"][env]]),
                    th.tensor([aux["log_prob"][env]]),
                )
                start = bool(s.terminated[env] or s.truncated[env])
            buffer.compute_returns_and_advantage(th.zeros(1), np.array([True]))
            ppo.rollout_buffer, ppo.n_steps = buffer, n_steps
            ppo.batch_size = self.ppo_kwargs.get("batch_size", max(n_steps // 4, 2))
            ppo.train()
        self._steps = []

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        if self.copies is None:
            self.copies = self._make_copies(len(observations))
        return np.stack(
            [
                ppo.predict(obs, deterministic=True)[0]
                for ppo, obs in zip(self.copies, observations, strict=True)
            ]
        )

    def reset(self, env_mask: np.ndarray) -> None:
        pass


class RL2Agent:
    """RL^2 in Meta-World's protocol: a trial per round. Each env's LSTM state starts fresh at ``init``
    (new test tasks) and is kept through the adaptation episodes into the evaluation episodes, as in an
    :class:`~wrappers.RL2Wrapper` trial; ``adapt`` takes no gradient step.

    The policy reads the previous action, reward and done flag, which Meta-World's test envs put in the
    observation when built with :attr:`ENV_KWARGS` (``recurrent_info_in_obs``, reward unscaled as in
    ``RL2Wrapper``; :func:`metalearning_evaluation` builds them so for this agent). Meta-World's vector
    envs reset an ended episode in the same step, so its observation never shows the done flag: the agent
    sets it, with its last action and the episode's last reward, at the first step of the next episode.
    That reward is known during adaptation (``step``) but not during evaluation, where it is 0.

    Meta-World's default protocol makes a trial of ``adaptation_episodes`` + ``evaluation_episodes``
    episodes; train the model on trials of that length (``RL2Wrapper(episodes_per_trial=...)``).

    :param model: a meta-trained :class:`~maesn_sb3.RL2` (on :class:`MetaWorldTaskEnv` sub-envs).
    :param seed: seeds torch's generator (the action noise).
    :param deterministic: evaluation with the mean actions (adaptation episodes sample).
    """

    #: the arguments of ``metaworld.make_ml_envs_test`` that give the policy its inputs
    ENV_KWARGS: ClassVar[dict[str, Any]] = {
        "recurrent_info_in_obs": True,
        "normalize_reward_in_recurrent_info": False,
    }

    def __init__(self, model: RL2, seed: int | None = None, deterministic: bool = True) -> None:
        if not isinstance(model, RL2):
            raise TypeError(f"model must be an RL2 model, got {type(model).__name__}")
        self.model, self.deterministic = model, bool(deterministic)
        self._action_size = int(np.prod(model.action_space.shape))
        if seed is not None:
            th.manual_seed(seed)
        self.init()

    def init(self) -> None:
        """A new set of test tasks: a new trial in every env."""
        self._states: tuple[np.ndarray, ...] | None = None
        self._starts: np.ndarray | None = None  # the first step of a trial: the LSTM state starts fresh
        self._boundary: np.ndarray | None = None  # the previous step ended an episode
        self._last_action: np.ndarray | None = None
        self._last_reward: np.ndarray | None = None

    def _act(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        obs = np.array(observations, dtype=np.float32)
        expected = self.model.observation_space.shape[0]
        if obs.ndim != 2 or obs.shape[1] != expected:
            raise ValueError(
                f"observations must be (n_envs, {expected}) (the env's features, then the previous action, "
                f"reward and done flag), got shape {obs.shape}: build the test envs with "
                "metaworld.make_ml_envs_test(..., **RL2Agent.ENV_KWARGS)"
            )
        if self._starts is None:
            n_envs = len(obs)
            self._starts, self._boundary = np.ones(n_envs, dtype=bool), np.zeros(n_envs, dtype=bool)
            self._last_action = np.zeros((n_envs, self._action_size), dtype=np.float32)
            self._last_reward = np.zeros(n_envs, dtype=np.float32)
        rows, a = self._boundary, self._action_size
        obs[rows, -a - 2 : -2] = self._last_action[rows]
        obs[rows, -2], obs[rows, -1] = self._last_reward[rows], 1.0
        actions, self._states = self.model.predict(obs, self._states, self._starts, deterministic)
        self._starts[:], self._boundary[:] = False, False
        self._last_action = np.asarray(actions, dtype=np.float32).reshape(len(obs), a)
        return actions

    def adapt_action(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self._act(observations, False), {}

    def step(self, timestep: Any) -> None:
        self._boundary |= np.logical_or(timestep.terminated, timestep.truncated)
        self._last_reward = np.asarray(timestep.reward, dtype=np.float32)

    def adapt(self) -> None:
        """No gradient step: the trial goes on. The envs are reset next, so every env starts an episode."""
        if self._boundary is None:
            raise RuntimeError("adapt() needs adaptation episodes: call adapt_action() and step() first")
        self._boundary[:] = True

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        actions = self._act(observations, self.deterministic)
        self._last_reward[:] = 0.0  # this step's reward reaches the agent only through the next observation
        return actions

    def reset(self, env_mask: np.ndarray) -> None:
        """The envs of ``env_mask`` start a new episode (the trial, and the LSTM state, go on)."""
        if self._boundary is not None:
            self._boundary |= np.asarray(env_mask, dtype=bool)


def metaworld_agent(model: BaseAlgorithm, seed: int | None = None, **kwargs: Any) -> Any:
    """The agent that adapts ``model`` as its method does: :class:`MAESNAgent` for MAESN (and the
    latent-space baseline), :class:`MAMLAgent` for MAML, :class:`RL2Agent` for RL^2,
    :class:`PPOFinetuneAgent` for PPO and MultiTaskPPO."""
    if isinstance(model, RL2):
        return RL2Agent(model, seed=seed, **kwargs)
    if isinstance(model, MAESN):
        return MAESNAgent(model, seed=seed, **kwargs)
    if isinstance(model, MAML):
        return MAMLAgent(model, seed=seed, **kwargs)
    if isinstance(model, PPO):
        return PPOFinetuneAgent(model, seed=seed, **kwargs)
    raise TypeError(
        f"no Meta-World agent adapts a {type(model).__name__} (MAESN, LSBaseline, MAML, RL2, PPO and "
        "MultiTaskPPO have one); PolicyAgent(model) scores its policy without adaptation"
    )
