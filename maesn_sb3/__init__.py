"""maesn-sb3: meta-learned structured exploration (MAESN) for Stable-Baselines3 and Gymnasium."""

from maesn_sb3 import envs
from maesn_sb3.common.base import AdaptationCurve
from maesn_sb3.envs import list_envs
from maesn_sb3.maesn import MAESN, AdaptationResult, LSBaseline
from maesn_sb3.maml import MAML
from maesn_sb3.ppo import MultiTaskPPO, finetune_ppo, ppo_from_scratch
from maesn_sb3.rl2 import RL2
from maesn_sb3.tasks import TaskEnv, TaskSet, check_task_env
from maesn_sb3.vec_env import MetaTaskVecEnv, make_meta_vec_env

__version__ = "0.1.0"

__all__ = [
    "MAESN",
    "MAML",
    "RL2",
    "AdaptationCurve",
    "AdaptationResult",
    "LSBaseline",
    "MetaTaskVecEnv",
    "MultiTaskPPO",
    "TaskEnv",
    "TaskSet",
    "__version__",
    "check_task_env",
    "envs",
    "finetune_ppo",
    "list_envs",
    "make_meta_vec_env",
    "ppo_from_scratch",
]
