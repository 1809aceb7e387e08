"""Moved to :mod:`maesn_sb3.validators` (every layer may import it); re-exported here for old imports."""

from maesn_sb3.validators import *  # noqa: F403
from maesn_sb3.validators import __all__, check_latent_adaptation_episodes, check_slot  # noqa: F401
