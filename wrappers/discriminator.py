"""The DIAYN skill discriminator q_phi(z | s)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn

from wrappers.skills import SKILL_KEY

__all__ = ["SkillDiscriminator"]

Observation = np.ndarray | dict[str, np.ndarray]


class SkillDiscriminator(nn.Module):
    """q_phi(z | s): a classifier of the skill from the state, with its own Adam optimizer.

    It takes observations as the agent sees them (the skill-augmented space of
    :class:`wrappers.SkillWrapper`), strips the one-hot before the network and reads the true skill
    from it: for a ``Box`` the last ``n_skills`` entries are the one-hot, for a ``Dict`` the
    ``"skill"`` key is, and the state is the other keys flattened in the space's order.
    ``features`` picks a subset of the state (e.g. ``[0, 1]`` for an x-y position). One-hots that are
    not exactly one-hot (e.g. normalised by ``VecNormalize``) raise ``ValueError``.

    Pickling (also through an SB3 ``save`` of a model whose buffer holds the discriminator) keeps the
    weights, the optimizer state and the counters; tensors are stored on the CPU.

    Example:
        >>> import numpy as np
        >>> from gymnasium import spaces
        >>> from wrappers import SkillDiscriminator
        >>> space = spaces.Box(-np.inf, np.inf, shape=(2 + 4,), dtype=np.float32)  # x, y + 4 skills
        >>> disc = SkillDiscriminator(space, n_skills=4, net_arch=(32, 32))
        >>> obs = np.array([[0.5, 0.1, 0, 0, 1, 0]], dtype=np.float32)
        >>> disc.log_prob(obs).shape, disc.intrinsic_reward(obs).shape
        (torch.Size([1]), (1,))
        >>> stats = disc.update(obs)  # one cross-entropy step: {"loss": ..., "accuracy": ...}

    :param observation_space: the skill-augmented observation space (1-D ``Box`` or ``Dict``).
    :param n_skills: number of skills (>= 2).
    :param features: indices into the state (one-hot excluded) the discriminator sees; ``None``: all.
    :param net_arch: hidden layer sizes of the MLP (2 x 300 in DIAYN).
    :param activation_fn: activation between hidden layers.
    :param learning_rate: Adam learning rate (3e-4 in DIAYN).
    :param device: torch device ("auto": CUDA when available).
    :param seed: seed of the weight initialisation (drawn from a forked torch generator, so the global
        one is left as it was); ``None``: torch's global generator.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        n_skills: int,
        features: Sequence[int] | None = None,
        net_arch: Sequence[int] = (300, 300),
        activation_fn: type[nn.Module] = nn.ReLU,
        learning_rate: float = 3e-4,
        device: th.device | str = "auto",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(n_skills, bool) or not isinstance(n_skills, (int, np.integer)) or n_skills < 2:
            raise ValueError(f"n_skills must be an int >= 2, got {n_skills!r}")
        self.n_skills = int(n_skills)
        if isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1:
            state_dim = observation_space.shape[0] - self.n_skills
            if state_dim < 1:
                raise ValueError(
                    f"observation_space must be the skill-augmented Box (state + {self.n_skills} one-hot "
                    f"entries), got shape {observation_space.shape}"
                )
            self.state_keys: list[str] | None = None
        elif isinstance(observation_space, spaces.Dict):
            skill_space = observation_space.spaces.get(SKILL_KEY)
            if not isinstance(skill_space, spaces.Box) or skill_space.shape != (self.n_skills,):
                raise ValueError(
                    f"observation_space must have a {SKILL_KEY!r} Box of shape ({self.n_skills},), "
                    f"got {skill_space}"
                )
            self.state_keys = [key for key in observation_space.spaces if key != SKILL_KEY]
            state_dim = sum(int(np.prod(observation_space[key].shape)) for key in self.state_keys)
            if state_dim < 1:
                raise ValueError(f"observation_space has no state besides the skill: {observation_space}")
        else:
            raise TypeError(f"observation_space must be a 1-D Box or a Dict, got {observation_space}")
        if features is None:
            self.features: list[int] | None = None
            in_dim = state_dim
        else:
            feats = [int(f) for f in features]
            if not feats or any(not 0 <= f < state_dim for f in feats) or len(set(feats)) != len(feats):
                raise ValueError(
                    f"features must be distinct indices in [0, {state_dim}) (state size), got {features!r}"
                )
            self.features = feats
            in_dim = len(feats)
        if not all(isinstance(h, (int, np.integer)) and h >= 1 for h in net_arch):
            raise ValueError(f"net_arch must be a sequence of ints >= 1, got {net_arch!r}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        self.observation_space = observation_space
        self.state_dim = state_dim
        self.learning_rate = float(learning_rate)
        self._config = dict(
            observation_space=observation_space,
            n_skills=self.n_skills,
            features=self.features,
            net_arch=tuple(int(h) for h in net_arch),
            activation_fn=activation_fn,
            learning_rate=self.learning_rate,
        )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        with th.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                th.manual_seed(int(seed))
            layers: list[nn.Module] = []
            last = in_dim
            for hidden in net_arch:
                layers += [nn.Linear(last, int(hidden)), activation_fn()]
                last = int(hidden)
            layers.append(nn.Linear(last, self.n_skills))
            self.net = nn.Sequential(*layers)
        self.log_prior = -math.log(self.n_skills)
        self.device = (
            th.device("cuda" if th.cuda.is_available() else "cpu") if device == "auto" else th.device(device)
        )
        self.to(self.device)
        self.optimizer = th.optim.Adam(self.parameters(), lr=self.learning_rate)
        self.n_updates = 0

    # -- observations -----------------------------------------------------------------------------
    def split(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """A batch of observations -> (states of shape (n, state_dim), skill indices of shape (n,))."""
        if self.state_keys is None:
            array = np.asarray(obs, dtype=np.float32)
            if array.ndim != 2 or array.shape[1] != self.state_dim + self.n_skills:
                raise ValueError(
                    f"obs must have shape (n, {self.state_dim + self.n_skills}), got {array.shape}"
                )
            states, onehot = array[:, : self.state_dim], array[:, self.state_dim :]
        else:
            if not isinstance(obs, dict) or SKILL_KEY not in obs:
                raise ValueError(f"obs must be a dict with the keys {[*self.state_keys, SKILL_KEY]}")
            onehot = np.asarray(obs[SKILL_KEY], dtype=np.float32)
            n = onehot.shape[0]
            states = np.concatenate(
                [np.asarray(obs[key], dtype=np.float32).reshape(n, -1) for key in self.state_keys], axis=1
            )
            if onehot.shape != (n, self.n_skills) or states.shape[1] != self.state_dim:
                raise ValueError(
                    f"obs must hold a batch of skills of shape (n, {self.n_skills}) and states of "
                    f"size {self.state_dim}, got {onehot.shape} and {states.shape}"
                )
        skills = onehot.argmax(axis=1)
        if not (np.all((onehot == 0.0) | (onehot == 1.0)) and np.all(onehot.sum(axis=1) == 1.0)):
            raise ValueError(
                "the skill part of obs is not a one-hot; was it normalised? (use SkillVecNormalize or "
                "VecNormalize(norm_obs_keys=...) to keep the one-hot as it is)"
            )
        return states, skills

    def _inputs(self, states: np.ndarray) -> th.Tensor:
        if self.features is not None:
            states = states[:, self.features]
        return th.as_tensor(states, dtype=th.float32, device=self.device)

    def _skills(self, obs: Observation, skills: np.ndarray | None) -> tuple[th.Tensor, th.Tensor]:
        states, own = self.split(obs)
        if skills is None:
            skills = own
        else:
            skills = np.asarray(skills)
            if skills.shape != own.shape or np.any((skills < 0) | (skills >= self.n_skills)):
                raise ValueError(f"skills must be {own.shape} ints in [0, {self.n_skills}), got {skills}")
        return self._inputs(states), th.as_tensor(skills, dtype=th.long, device=self.device)

    # -- model --------------------------------------------------------------------------------------
    def forward(self, states: th.Tensor) -> th.Tensor:
        """Logits over skills for a batch of (feature-selected) states."""
        return self.net(states)

    def log_prob(self, obs: Observation, skills: np.ndarray | None = None) -> th.Tensor:
        """log q_phi(z | s) for a batch; ``skills`` default to the one-hot in ``obs``."""
        inputs, target = self._skills(obs, skills)
        return th.log_softmax(self(inputs), dim=1).gather(1, target[:, None]).squeeze(1)

    def intrinsic_reward(self, obs: Observation, include_prior: bool = True) -> np.ndarray:
        """DIAYN reward ``log q_phi(z | s) - log p(z)`` (``log p(z)`` only if ``include_prior``), float32."""
        with th.no_grad():
            reward = self.log_prob(obs).cpu().numpy()
        return (reward - self.log_prior if include_prior else reward).astype(np.float32)

    def predict(self, obs: Observation) -> np.ndarray:
        """Most likely skill of each observation's state."""
        states, _ = self.split(obs)
        with th.no_grad():
            return self(self._inputs(states)).argmax(dim=1).cpu().numpy()

    def accuracy(self, obs: Observation) -> float:
        """Fraction of observations whose skill the discriminator names correctly."""
        _, skills = self.split(obs)
        return float(np.mean(self.predict(obs) == skills))

    def update(self, obs: Observation, skills: np.ndarray | None = None) -> dict[str, float]:
        """One Adam step on the cross-entropy of a batch; returns its ``loss`` and ``accuracy``."""
        inputs, target = self._skills(obs, skills)
        if not bool(th.isfinite(inputs).all()):
            row = int(th.nonzero(~th.isfinite(inputs).all(dim=1))[0, 0])
            raise ValueError(
                f"obs holds a state that is not finite (row {row}: {inputs[row].tolist()}); the "
                "discriminator was not updated. Fix the env or find the step with stable_baselines3's "
                "VecCheckNan"
            )
        logits = self(inputs)
        loss = nn.functional.cross_entropy(logits, target)
        if not bool(th.isfinite(loss)):
            raise FloatingPointError(
                f"the discriminator's loss is not finite ({loss.item()}); its weights were left unchanged"
            )
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.n_updates += 1
        accuracy = (logits.argmax(dim=1) == target).float().mean()
        return {"loss": float(loss.item()), "accuracy": float(accuracy.item())}

    def to_device(self, device: th.device | str) -> SkillDiscriminator:
        """Move the network and the optimizer state to ``device``."""
        self.device = th.device(device)
        self.to(self.device)
        self.optimizer.load_state_dict(self.optimizer.state_dict())  # casts the state to the params
        return self

    # -- pickling (SB3 save/load) -------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        def cpu(value: Any) -> Any:
            if isinstance(value, th.Tensor):
                return value.detach().cpu()
            if isinstance(value, dict):
                return {k: cpu(v) for k, v in value.items()}
            return value

        return {
            "config": self._config,
            "weights": cpu(self.state_dict()),
            "optimizer": cpu(self.optimizer.state_dict()),
            "n_updates": self.n_updates,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"], device="cpu")
        self.load_state_dict(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.n_updates = state["n_updates"]
