"""The Ray backend on a two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``, one CPU per
node): the workers land on both nodes, each running its task slots as a native MuJoCo batch, and MAESN
and MAML meta-train on them with the episodes local collection gives."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch as th

from maesn_sb3 import MAESN, MAML, make_meta_vec_env
from tests.ray_helpers import require_ray, wait_ended

ray = require_ray()
from ray.cluster_utils import Cluster  # noqa: E402

ENV = {"n_tasks": 2, "envs_per_task": 2, "env_kwargs": {"max_episode_steps": 20}, "seed": 3}


@pytest.fixture(scope="module", autouse=True)
def two_nodes() -> Iterator[Cluster]:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="error")
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.parametrize("algo", [MAESN, MAML])
def test_meta_training_across_two_nodes(algo: type) -> None:
    latent = {} if algo is MAML else {"latent_dim": 2}
    local_env = make_meta_vec_env("maesn_sb3/WheeledNav-v0", **ENV, **latent)
    env = make_meta_vec_env("maesn_sb3/WheeledNav-v0", vectorization="ray", ray_workers=2, **ENV, **latent)
    locations = env.venv.worker_locations()
    assert len({node for node, _ in locations}) == 2  # one CPU per node: one worker on each
    assert env.venv.get_attr("num_envs", [0]) == [2]  # each worker runs its slot as one native batch
    batches = []
    for meta in (local_env, env):
        model = algo("MlpPolicy", meta, n_train_tasks=4, seed=3)
        th.manual_seed(0)
        batches.append(model._collect(meta, model.policy, 1)[0])
    for field in ("mask", "task_slot", "success"):
        np.testing.assert_array_equal(getattr(batches[0], field), getattr(batches[1], field))
    for field in ("observations", "actions", "rewards"):
        np.testing.assert_allclose(getattr(batches[0], field), getattr(batches[1], field), atol=1e-4)
    model = algo("MlpPolicy", env, n_train_tasks=4, seed=3).learn(3 * 160)
    assert model.num_timesteps == 480
    assert all(th.isfinite(p).all() for p in model.policy.parameters())
    env.close()
    assert wait_ended([pid for _, pid in locations]) == []
