"""RL^2 on sb3-contrib's RecurrentPPO."""

from maesn_sb3.rl2.rl2 import RL2

__all__ = ["RL2"]
