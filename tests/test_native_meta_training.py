"""Meta-training on the native backend: the same training as on DummyVecEnv for the same seed.

The native batch reproduces every sub-env (same seeds, tasks, latent draws, physics), so MAESN,
LSBaseline and MAML sample the same episodes and end with the same parameters, bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch as th

from maesn_sb3 import MAESN, MAML, LSBaseline, make_meta_vec_env

SMALL = {"n_tasks": 2, "envs_per_task": 3, "env_kwargs": {"max_episode_steps": 8}, "seed": 5}


def train(algo: type, vectorization: str, env_id: str, steps: int) -> tuple[dict[str, Any], np.ndarray, int]:
    latent = {"latent_dim": 2} if algo is not MAML else {}
    env = make_meta_vec_env(env_id, vectorization=vectorization, **SMALL, **latent)
    model = algo("MlpPolicy", env, n_train_tasks=4, seed=5).learn(steps)
    actions = model.predict(env.reset(), deterministic=True)[0]
    return model.get_parameters(), actions, model.num_timesteps


@pytest.mark.determinism
@pytest.mark.parametrize("algo", [MAESN, LSBaseline, MAML])
@pytest.mark.parametrize("env_id", ["maesn_sb3/PointNav2D-v0", "maesn_sb3/WheeledNav-v0"])
def test_same_training_on_native_and_dummy(algo: type, env_id: str) -> None:
    th.set_num_threads(1)
    native_params, native_actions, native_steps = train(algo, "native", env_id, 400)
    dummy_params, dummy_actions, dummy_steps = train(algo, "dummy", env_id, 400)
    assert native_steps == dummy_steps >= 400
    np.testing.assert_array_equal(native_actions, dummy_actions)
    assert native_params.keys() == dummy_params.keys()
    for part, state in native_params.items():
        for name, value in state.items():
            if isinstance(value, th.Tensor):
                th.testing.assert_close(value, dummy_params[part][name], rtol=0, atol=0, msg=f"{part}.{name}")
