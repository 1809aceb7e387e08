from maesn_sb3.maesn.maesn import MAESN, AdaptationResult, LSBaseline
from maesn_sb3.maesn.policies import MlpPolicy, MultiInputPolicy, TaskLatents

__all__ = ["MAESN", "AdaptationResult", "LSBaseline", "MlpPolicy", "MultiInputPolicy", "TaskLatents"]
