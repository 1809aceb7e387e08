"""Gymnasium wrappers for latent- and skill-conditioned exploration.

Each wrapper changes what one env shows and rewards; none depends on an algorithm.
"""

from wrappers.latent import LatentWrapper

__all__ = ["LatentWrapper"]
