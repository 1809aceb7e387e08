"""The MAESN paper's PPO baselines: multi-task PPO (fine-tuned per task) and PPO from scratch."""

from maesn_sb3.ppo.ppo import MultiTaskPPO, finetune_ppo, ppo_from_scratch

__all__ = ["MultiTaskPPO", "finetune_ppo", "ppo_from_scratch"]
