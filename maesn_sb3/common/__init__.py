"""Machinery shared by the meta-RL algorithms: ``MetaAlgorithm``, episode collection, advantages, TRPO."""

from maesn_sb3.common.advantages import LinearFeatureBaseline, discounted_returns, gae_advantages
from maesn_sb3.common.base import AdaptationCurve, MetaAlgorithm
from maesn_sb3.common.rollouts import EpisodeBatch, collect_episodes
from maesn_sb3.common.trpo import TRPOStats, trpo_step

__all__ = [
    "AdaptationCurve",
    "EpisodeBatch",
    "LinearFeatureBaseline",
    "MetaAlgorithm",
    "TRPOStats",
    "collect_episodes",
    "discounted_returns",
    "gae_advantages",
    "trpo_step",
]
