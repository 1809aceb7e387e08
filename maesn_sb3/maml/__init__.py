"""MAML-TRPO (first- and second-order), the MAESN paper's meta-RL baseline."""

from maesn_sb3.maml.maml import MAML

__all__ = ["MAML"]
