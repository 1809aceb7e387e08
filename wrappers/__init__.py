"""Gymnasium wrappers for latent- and skill-conditioned exploration.

Each wrapper changes what one env shows and rewards; none depends on an algorithm.
"""

from wrappers.discriminator import SkillDiscriminator
from wrappers.latent import (
    LATENT_KEY,
    LatentWrapper,
    append_latent,
    replace_latent,
    split_latent,
    strip_latent,
    strip_latent_space,
)
from wrappers.latent_vector import LatentVectorWrapper
from wrappers.relabel import (
    DIAYNCallback,
    DIAYNDictReplayBuffer,
    DIAYNDictRolloutBuffer,
    DIAYNReplayBuffer,
    DIAYNRolloutBuffer,
    SkillVecNormalize,
    mix_rewards,
)
from wrappers.rl2 import RL2Wrapper
from wrappers.skill_actions import SkillActionWrapper
from wrappers.skill_vec_env import SkillActionVecEnv, SkillRewardCallback, VecSkillReward
from wrappers.skills import SkillWrapper

__all__ = [
    "LATENT_KEY",
    "DIAYNCallback",
    "DIAYNDictReplayBuffer",
    "DIAYNDictRolloutBuffer",
    "DIAYNReplayBuffer",
    "DIAYNRolloutBuffer",
    "LatentVectorWrapper",
    "LatentWrapper",
    "RL2Wrapper",
    "SkillActionVecEnv",
    "SkillActionWrapper",
    "SkillDiscriminator",
    "SkillRewardCallback",
    "SkillVecNormalize",
    "SkillWrapper",
    "VecSkillReward",
    "append_latent",
    "mix_rewards",
    "replace_latent",
    "split_latent",
    "strip_latent",
    "strip_latent_space",
]
