"""The callback that feeds on-policy DIAYN buffers each step's next observation and logs the
discriminator."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from maesn_sb3.skills.diayn import _DIAYNBuffer
from maesn_sb3.skills.replay import _DIAYNReplayMixin
from maesn_sb3.skills.rollout import _DIAYNRolloutMixin

__all__ = ["DIAYNCallback"]


class DIAYNCallback(BaseCallback):
    """Connects a DIAYN buffer to ``learn`` and logs the discriminator through SB3's logger.

    With an on-policy model it hands the rollout buffer every step's raw next observations (the
    ``terminal_observation`` at episode ends, un-normalised when ``VecNormalize`` is used) and env
    rewards; with an off-policy model it only logs. Logged keys: ``diayn/discriminator_loss``,
    ``diayn/discriminator_accuracy`` (on the training batches), ``diayn/intrinsic_reward``.

    Example: see :class:`DIAYNRolloutBuffer` and :class:`DIAYNReplayBuffer`.
    """

    def _init_callback(self) -> None:
        rollout = getattr(self.model, "rollout_buffer", None)
        replay = getattr(self.model, "replay_buffer", None)
        if isinstance(rollout, _DIAYNRolloutMixin):
            self.buffer: _DIAYNBuffer = rollout
            self.on_policy = True
        elif isinstance(replay, _DIAYNReplayMixin):
            self.buffer = replay
            self.on_policy = False
        else:
            raise TypeError(
                "DIAYNCallback needs a model built with a DIAYN buffer (rollout_buffer_class="
                "DIAYNRolloutBuffer / DIAYNDictRolloutBuffer or replay_buffer_class=DIAYNReplayBuffer / "
                f"DIAYNDictReplayBuffer), got buffers {type(rollout).__name__} and {type(replay).__name__}"
            )

    def _log(self) -> None:
        for key, value in self.buffer.pop_stats().items():
            name = "intrinsic_reward" if key == "intrinsic_reward" else f"discriminator_{key}"
            self.logger.record(f"diayn/{name}", value)

    def _on_step(self) -> bool:
        if not self.on_policy:
            self._log()
            return True
        normalizer = self.model.get_vec_normalize_env()
        new_obs = self.locals["new_obs"]
        if normalizer is not None:
            new_obs = normalizer.get_original_obs()
        if isinstance(new_obs, dict):
            next_obs: Any = {key: np.array(value, copy=True) for key, value in new_obs.items()}
        else:
            next_obs = np.array(new_obs, copy=True)
        for idx, done in enumerate(self.locals["dones"]):
            if not done:
                continue
            terminal = self.locals["infos"][idx].get("terminal_observation")
            if terminal is None:
                raise RuntimeError("an episode ended without info['terminal_observation']: use an SB3 VecEnv")
            if normalizer is not None:
                terminal = normalizer.unnormalize_obs(terminal)
            if isinstance(next_obs, dict):
                for key in next_obs:
                    next_obs[key][idx] = terminal[key]
            else:
                next_obs[idx] = terminal
        # copy: SB3 adds the timeout bootstrap to this array in place after the callback
        self.buffer.record_step(next_obs, np.array(self.locals["rewards"], dtype=np.float32))  # type: ignore[attr-defined]
        return True

    def _on_rollout_end(self) -> None:
        if self.on_policy:
            self._log()
