"""DIAYN's learner side, next to SB3's pattern for HER: relabelling replay and rollout buffers, the
discriminator's training callback, and the VecEnvs that run skills or add the skill reward under MAESN.

The Gymnasium wrappers they work with (:class:`wrappers.SkillWrapper`, :class:`wrappers.SkillActionWrapper`)
and the discriminator (:class:`wrappers.SkillDiscriminator`) stay in ``wrappers/``.
"""

from maesn_sb3.skills.relabel import (
    DIAYNCallback,
    DIAYNDictReplayBuffer,
    DIAYNDictRolloutBuffer,
    DIAYNReplayBuffer,
    DIAYNRolloutBuffer,
    SkillVecNormalize,
    mix_rewards,
)
from maesn_sb3.skills.vec_env import SkillActionVecEnv, SkillRewardCallback, VecSkillReward

__all__ = [
    "DIAYNCallback",
    "DIAYNDictReplayBuffer",
    "DIAYNDictRolloutBuffer",
    "DIAYNReplayBuffer",
    "DIAYNRolloutBuffer",
    "SkillActionVecEnv",
    "SkillRewardCallback",
    "SkillVecNormalize",
    "VecSkillReward",
    "mix_rewards",
]
