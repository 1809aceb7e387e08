"""DIAYN rewards for any SB3 algorithm, recomputed with the current discriminator so they never go stale.

* Off-policy (SAC, TD3, ...): pass ``replay_buffer_class=DIAYNReplayBuffer`` (``DIAYNDictReplayBuffer``
  for ``Dict`` observations) and ``replay_buffer_kwargs=dict(discriminator=..., ...)``. Rewards are
  recomputed whenever a batch is sampled (as SB3's HER relabels goals), then the discriminator takes
  one step on that same batch.
* On-policy (PPO, A2C, ...): pass ``rollout_buffer_class=DIAYNRolloutBuffer`` (``DIAYNDictRolloutBuffer``)
  with ``rollout_buffer_kwargs=dict(discriminator=..., ...)`` and ``callback=DIAYNCallback()`` to
  ``learn``. The callback hands the buffer each step's next observation; before advantages are
  computed the buffer rewrites the whole rollout's rewards with the current discriminator, then trains
  the discriminator on the rollout.

Rewards are ``extrinsic_coef * r_env + intrinsic_coef * (log q_phi(z | s') - log p(z))``; the prior
term is dropped with ``include_prior=False``; ``extrinsic_coef=0, intrinsic_coef=1`` is pure DIAYN.
``r_env`` is the reward as the algorithm sees it (normalised when ``VecNormalize`` normalises rewards);
the intrinsic term is never normalised. The discriminator always sees raw (unnormalised) observations,
as SB3 stores them in its replay buffers.

Persistence: the discriminator sits in the model's ``replay_buffer_kwargs`` / ``rollout_buffer_kwargs``,
which SB3 saves with the model, so ``model.save`` / ``Algo.load`` keep its weights and optimizer state
(``load`` hands the restored discriminator to the new buffer: read it back as
``model.replay_buffer.discriminator`` or ``model.rollout_buffer.discriminator``).

``VecNormalize`` must leave the one-hot alone: use :class:`SkillVecNormalize` (both ``Box`` and ``Dict``).

The pieces live one per module: :mod:`~maesn_sb3.skills.replay`, :mod:`~maesn_sb3.skills.rollout`,
:mod:`~maesn_sb3.skills.callbacks`, :mod:`~maesn_sb3.skills.normalize` (and the reward itself in
:mod:`~maesn_sb3.skills.diayn`); this module re-exports them.
"""

from maesn_sb3.skills.callbacks import DIAYNCallback
from maesn_sb3.skills.diayn import mix_rewards
from maesn_sb3.skills.normalize import SkillVecNormalize
from maesn_sb3.skills.replay import DIAYNDictReplayBuffer, DIAYNReplayBuffer
from maesn_sb3.skills.rollout import DIAYNDictRolloutBuffer, DIAYNRolloutBuffer

__all__ = [
    "DIAYNCallback",
    "DIAYNDictReplayBuffer",
    "DIAYNDictRolloutBuffer",
    "DIAYNReplayBuffer",
    "DIAYNRolloutBuffer",
    "SkillVecNormalize",
    "mix_rewards",
]
