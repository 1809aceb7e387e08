"""Gymnasium wrappers for latent- and skill-conditioned exploration.

Each wrapper changes what one env shows and rewards; none depends on an algorithm. The learner side
of DIAYN (relabelling buffers, callbacks, the skill-reward VecEnvs) is in :mod:`maesn_sb3.skills`.
"""

from wrappers.discriminator import SkillDiscriminator
from wrappers.latent import (
    LATENT_KEY,
    LatentWrapper,
    append_latent,
    inject_latent,
    replace_latent,
    split_latent,
    strip_latent,
    strip_latent_space,
)
from wrappers.latent_vector import LatentVectorWrapper
from wrappers.rl2 import RL2Wrapper
from wrappers.skill_actions import SkillActionWrapper
from wrappers.skills import SkillWrapper

__all__ = [
    "LATENT_KEY",
    "LatentVectorWrapper",
    "LatentWrapper",
    "RL2Wrapper",
    "SkillActionWrapper",
    "SkillDiscriminator",
    "SkillWrapper",
    "append_latent",
    "inject_latent",
    "replace_latent",
    "split_latent",
    "strip_latent",
    "strip_latent_space",
]
