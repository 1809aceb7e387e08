"""Trials of several episodes with the previous action, reward and done flag in the observation (RL^2)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["RL2Wrapper"]


class RL2Wrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Turns ``episodes_per_trial`` consecutive episodes of the same task into one episode (a trial).

    RL^2 (Duan et al. 2016) feeds a recurrent policy the previous action, the previous reward and a
    flag that the previous step ended an inner episode, and keeps its hidden state for the whole
    trial, so it can learn to explore in the first episodes and exploit in the later ones. Inside a
    trial, an inner episode's end resets the wrapped env at once and is shown only through the done
    flag; the trial ends after ``episodes_per_trial`` inner episodes, always as ``terminated`` (a
    trial's return ends with the trial, so nothing is bootstrapped past it, as in RL^2; the inner
    episode's own end is in ``info["episode_done"]`` and in the next trial's first observation only
    through the reset). The task does not change inside a trial.

    A ``Box`` observation gets ``[action, reward, done]`` appended (a float32 ``Box``); a ``Dict``
    observation gets the keys ``"prev_action"``, ``"prev_reward"`` and ``"prev_done"``. ``Discrete``
    actions are one-hot encoded. Every step's info carries ``"trial_episode"`` (the inner episode the
    step belongs to) and ``"episode_done"`` (whether that inner episode ended with this step); the
    inner env's ``info["is_success"]`` passes through unchanged.

    Example:
        >>> import gymnasium as gym
        >>> import maesn_sb3
        >>> env = RL2Wrapper(gym.make("maesn_sb3/PointNav2D-v0"), episodes_per_trial=3)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape  # position (2), previous action (2), previous reward, done flag
        (6,)

    :param env: the env to wrap (Box or Discrete actions).
    :param episodes_per_trial: inner episodes per trial (>= 1).
    """

    def __init__(self, env: gym.Env, episodes_per_trial: int = 2) -> None:
        if (
            isinstance(episodes_per_trial, bool)
            or not isinstance(episodes_per_trial, (int, np.integer))
            or episodes_per_trial < 1
        ):
            raise ValueError(f"episodes_per_trial must be an int >= 1, got {episodes_per_trial!r}")
        gym.utils.RecordConstructorArgs.__init__(self, episodes_per_trial=episodes_per_trial)
        gym.Wrapper.__init__(self, env)
        self.episodes_per_trial = int(episodes_per_trial)
        action_space = env.action_space
        if isinstance(action_space, spaces.Box):
            self._action_size = int(np.prod(action_space.shape))
            action_low = np.broadcast_to(action_space.low, action_space.shape).reshape(-1)
            action_high = np.broadcast_to(action_space.high, action_space.shape).reshape(-1)
        elif isinstance(action_space, spaces.Discrete):
            self._action_size = int(action_space.n)
            action_low, action_high = np.zeros(self._action_size), np.ones(self._action_size)
        else:
            raise TypeError(f"env.action_space must be Box or Discrete, got {type(action_space).__name__}")
        low = np.concatenate([action_low, [-np.inf, 0.0]]).astype(np.float32)
        high = np.concatenate([action_high, [np.inf, 1.0]]).astype(np.float32)
        obs_space = env.observation_space
        if isinstance(obs_space, spaces.Box):
            if len(obs_space.shape) != 1:
                raise TypeError(f"a Box env.observation_space must be 1-D, got shape {obs_space.shape}")
            self.observation_space = spaces.Box(
                np.concatenate([obs_space.low.astype(np.float32), low]),
                np.concatenate([obs_space.high.astype(np.float32), high]),
                dtype=np.float32,
            )
        elif isinstance(obs_space, spaces.Dict):
            clash = {"prev_action", "prev_reward", "prev_done"} & set(obs_space.spaces)
            if clash:
                raise ValueError(f"env.observation_space already has the key(s) {sorted(clash)}")
            self.observation_space = spaces.Dict(
                {
                    **obs_space.spaces,
                    "prev_action": spaces.Box(low[:-2], high[:-2], dtype=np.float32),
                    "prev_reward": spaces.Box(-np.inf, np.inf, (1,), np.float32),
                    "prev_done": spaces.Box(0.0, 1.0, (1,), np.float32),
                }
            )
        else:
            raise TypeError(
                f"env.observation_space must be a 1-D Box or a Dict, got {type(obs_space).__name__}"
            )
        self._episode = 0

    def _encode(self, action: Any) -> np.ndarray:
        if isinstance(self.env.action_space, spaces.Discrete):
            one_hot = np.zeros(self._action_size, dtype=np.float32)
            one_hot[int(action)] = 1.0
            return one_hot
        return np.asarray(action, dtype=np.float32).reshape(-1)

    def _augment(self, obs: Any, action: np.ndarray, reward: float, done: bool) -> Any:
        if isinstance(obs, dict):
            return {
                **obs,
                "prev_action": action,
                "prev_reward": np.array([reward], dtype=np.float32),
                "prev_done": np.array([float(done)], dtype=np.float32),
            }
        return np.concatenate([np.asarray(obs, dtype=np.float32), action, [reward, float(done)]]).astype(
            np.float32
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        """Start a trial: reset the env; the previous action, reward and done flag are zeros."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._episode = 0
        info = {**info, "trial_episode": 0}
        return self._augment(obs, np.zeros(self._action_size, dtype=np.float32), 0.0, False), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, "trial_episode": self._episode, "episode_done": bool(terminated or truncated)}
        encoded = self._encode(action)
        if terminated or truncated:
            self._episode += 1
            if self._episode < self.episodes_per_trial:
                info["inner_terminal_observation"] = obs
                obs, _ = self.env.reset()
                return self._augment(obs, encoded, float(reward), True), reward, False, False, info
        return self._augment(obs, encoded, float(reward), False), reward, terminated or truncated, False, info
