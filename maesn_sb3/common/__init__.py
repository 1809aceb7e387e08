"""Machinery shared by the meta-RL algorithms: episode collection, baselines, the TRPO step."""

from maesn_sb3.common.baselines import LinearFeatureBaseline, discounted_returns, gae_advantages
from maesn_sb3.common.rollouts import EpisodeBatch, collect_episodes
from maesn_sb3.common.trpo import TRPOStats, trpo_step

__all__ = [
    "EpisodeBatch",
    "LinearFeatureBaseline",
    "TRPOStats",
    "collect_episodes",
    "discounted_returns",
    "gae_advantages",
    "trpo_step",
]
