"""Task-agnostic exploration (DIAYN skills) combined with MAESN: the benchmark's two skill variants.

- ``skills`` ("MAESN over skills"): DIAYN pre-trains a SAC skill policy on the skill reward alone
  (discriminator on the position, observation entries 0 and 1), then MAESN meta-trains a categorical
  high level over the frozen skills (:class:`~maesn_sb3.skills.SkillActionVecEnv`, one skill for
  ``skill_steps`` env steps), conditioned on its latent.
- ``mixed`` ("MAESN, mixed reward"): MAESN's policy also sees a per-episode skill
  (:class:`wrappers.SkillWrapper`) and is rewarded ``r_task + intrinsic_coef * (log q(z | x, y) -
  log p(z))`` (:class:`~maesn_sb3.skills.VecSkillReward`) during meta-training; adaptation uses the
  sparse task reward alone.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

SKILL_FEATURES = [0, 1]  # the position, the first two observation entries of every task family


class EnvStepCounter(BaseCallback):
    """Records, at every adaptation iteration, the env steps the Monitors of ``env`` have counted
    (a skill action is ``skill_steps`` env steps, fewer when its episode ends first)."""

    def __init__(self, env: VecEnv) -> None:
        super().__init__()
        self.env = env
        self.start = self.total()
        self.steps: list[int] = []

    def total(self) -> int:
        return int(sum(self.env.env_method("get_total_steps")))

    def _on_step(self) -> bool:
        self.steps.append(self.total() - self.start)
        return True


def train_skills(env_id: str, n_skills: int, timesteps: int, seed: int) -> tuple[Any, float]:
    """DIAYN with SAC (skill reward only, discriminator on the position); the model and the
    discriminator's accuracy on one deterministic episode per skill."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env

    from maesn_sb3.skills import DIAYNCallback, DIAYNReplayBuffer
    from wrappers import SkillDiscriminator, SkillWrapper

    venv = make_vec_env(
        env_id, n_envs=4, seed=seed, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": n_skills}
    )
    disc = SkillDiscriminator(
        venv.observation_space,
        n_skills,
        features=SKILL_FEATURES,
        net_arch=(64, 64),
        learning_rate=1e-3,
        seed=seed,
    )
    model = SAC(
        "MlpPolicy", venv, learning_starts=1000, batch_size=128, learning_rate=1e-3, ent_coef=0.1,
        train_freq=4, policy_kwargs={"net_arch": [64, 64]}, seed=seed, replay_buffer_class=DIAYNReplayBuffer,
        replay_buffer_kwargs={"discriminator": disc, "extrinsic_coef": 0.0},
    )  # fmt: skip
    model.learn(timesteps, callback=DIAYNCallback())
    env = SkillWrapper(gym.make(env_id), n_skills=n_skills)
    states = []
    for skill in range(n_skills):
        obs, _ = env.reset(seed=seed, options={"skill": skill})
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(model.predict(obs, deterministic=True)[0])
            states.append(obs)
            done = terminated or truncated
    env.close()
    return model, disc.accuracy(np.array(states))


def skill_meta_env(
    variant: str,
    env_id: str,
    tasks: list[Any],
    envs_per_task: int,
    reward_type: str,
    seed: int,
    context: dict[str, Any],
) -> Any:
    """The meta-task env of a skill variant: ``context`` holds ``low`` and ``skill_steps``
    (``skills``), or ``mixed_skills``, ``intrinsic_coef`` and ``disc`` (``mixed``), and
    ``sum_info_keys`` (info keys a skill action sums over its env steps)."""
    from maesn_sb3 import make_meta_vec_env
    from maesn_sb3.skills import SkillActionVecEnv, VecSkillReward
    from wrappers import SkillWrapper

    common: dict[str, Any] = dict(
        n_tasks=len(tasks), envs_per_task=envs_per_task, seed=seed, tasks=tasks, latent_dim=2,
        env_kwargs={"reward_type": reward_type},
    )  # fmt: skip
    if variant == "skills":
        kwargs = {
            "model": context["low"],
            "skill_steps": context["skill_steps"],
            "sum_info_keys": context.get("sum_info_keys", ()),
        }
        return make_meta_vec_env(env_id, vec_env_cls=SkillActionVecEnv, vec_env_kwargs=kwargs, **common)
    if variant != "mixed":
        raise ValueError(f"variant must be 'skills' or 'mixed', got {variant!r}")
    skill_kwargs = {"n_skills": context["mixed_skills"]}
    if reward_type == "sparse":  # adaptation: the task reward alone
        return make_meta_vec_env(env_id, wrapper_class=SkillWrapper, wrapper_kwargs=skill_kwargs, **common)

    def backend(env_fns: list) -> VecEnv:
        return VecSkillReward(
            DummyVecEnv(env_fns), context["disc"], intrinsic_coef=context["intrinsic_coef"], seed=seed
        )

    return make_meta_vec_env(
        env_id, wrapper_class=SkillWrapper, wrapper_kwargs=skill_kwargs, vec_env_cls=backend, **common
    )


def mixed_discriminator(env_id: str, n_skills: int, seed: int) -> Any:
    """The mixed variant's discriminator on the position of a :class:`wrappers.SkillWrapper` env."""
    from wrappers import SkillDiscriminator, SkillWrapper

    space = SkillWrapper(gym.make(env_id), n_skills=n_skills).observation_space
    return SkillDiscriminator(
        space, n_skills, features=SKILL_FEATURES, net_arch=(64, 64), learning_rate=1e-3, seed=seed
    )
