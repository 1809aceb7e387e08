"""Meta-World (Farama, v3) as a task suite: its ML1/ML10/ML45 benchmarks behind the task API, its
meta-learning evaluation protocol scored per env (and Meta-World's own function beside it), and agents
that plug MAESN, MAML, RL^2 and the PPO baselines into it.

Needs the ``metaworld`` extra (``pip install "maesn-sb3[metaworld]"``, MuJoCo 3.3); importing this
module works without it, and its functions say how to install it.
"""

from maesn_sb3.metaworld.agents import (
    MAESNAgent,
    MAMLAgent,
    PolicyAgent,
    PPOFinetuneAgent,
    RL2Agent,
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
from maesn_sb3.metaworld.evaluation import COUNTINGS, MetaWorldScore, metalearning_evaluation

__all__ = [
    "BENCHMARKS",
    "COUNTINGS",
    "MAESNAgent",
    "MAMLAgent",
    "MetaWorldScore",
    "MetaWorldTaskEnv",
    "PPOFinetuneAgent",
    "PolicyAgent",
    "RL2Agent",
    "make_benchmark",
    "make_metaworld_env",
    "metalearning_evaluation",
    "metaworld_agent",
    "metaworld_task_set",
    "require_metaworld",
]
