"""Meta-World (Farama, v3) as a task suite: its ML1/ML10/ML45 benchmarks behind the task API, and
agents that let Meta-World's own ``metaworld.evaluation`` score MAESN, MAML and the PPO baselines.

Needs the ``metaworld`` extra (``pip install "maesn-sb3[metaworld]"``, MuJoCo 3.3); importing this
module works without it, and its functions say how to install it.
"""

from maesn_sb3.metaworld.agents import (
    MAESNAgent,
    MAMLAgent,
    MetaWorldScore,
    PolicyAgent,
    PPOFinetuneAgent,
    metalearning_evaluation,
    metaworld_agent,
)
from maesn_sb3.metaworld.env import (
    BENCHMARKS,
    MetaWorldTaskEnv,
    make_benchmark,
    make_metaworld_env,
    metaworld_task_set,
    require_metaworld,
)

__all__ = [
    "BENCHMARKS",
    "MAESNAgent",
    "MAMLAgent",
    "MetaWorldScore",
    "MetaWorldTaskEnv",
    "PPOFinetuneAgent",
    "PolicyAgent",
    "make_benchmark",
    "make_metaworld_env",
    "metalearning_evaluation",
    "metaworld_agent",
    "metaworld_task_set",
    "require_metaworld",
]
