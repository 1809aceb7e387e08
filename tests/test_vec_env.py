"""MetaTaskVecEnv: the VecEnv contract, task layout and latent pushing, in-process and in subprocesses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from maesn_sb3 import MetaTaskVecEnv, TaskSet, make_meta_vec_env
from maesn_sb3.vector_adapter import VectorEnvAdapter

ENV_ID = "maesn_sb3/PointNav2D-v0"
SINGLE_ENV_BACKENDS = [pytest.param(DummyVecEnv, id="dummy"), pytest.param(SubprocVecEnv, id="subproc")]
# the batched family behind the SB3 adapter (vectorization="native") passes the same checks
BACKENDS = [*SINGLE_ENV_BACKENDS, pytest.param(VectorEnvAdapter, id="native")]


class CountdownTaskEnv(gym.Env):
    """Task ``k``: the episode terminates after ``k`` steps and reports ``info["success"] = 1.0``.

    Success comes as Meta-World reports it (a float under ``"success"``), not as ``"is_success"``.
    """

    observation_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def __init__(self) -> None:
        self.k = 1
        self.t = 0

    def sample_tasks(self, n: int) -> list[int]:
        return [int(k) for k in self.np_random.integers(1, 10, size=n)]

    def set_task(self, task: int) -> None:
        self.k = task

    def get_task(self) -> int:
        return self.k

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: np.ndarray):
        self.t += 1
        done = self.t >= self.k
        obs = np.array([self.t / self.k], dtype=np.float32)
        return obs, 0.0, done, False, {"success": float(done)}


@pytest.fixture
def opened() -> Iterator[Callable[[VecEnv], VecEnv]]:
    """Registers VecEnvs to close after the test (subprocess workers must not leak)."""
    venvs: list[VecEnv] = []

    def keep(venv: VecEnv) -> VecEnv:
        venvs.append(venv)
        return venv

    yield keep
    for venv in venvs:
        venv.close()


def make(backend: type[VecEnv], **kwargs: Any) -> MetaTaskVecEnv:
    options: dict[str, Any] = {"n_tasks": 3, "envs_per_task": 2, "seed": 0, "latent_dim": 2}
    if backend is SubprocVecEnv:
        # fork starts workers in milliseconds; test_forkserver_workers covers SB3's default start method
        options["vec_env_kwargs"] = {"start_method": "fork"}
    options.update(kwargs)
    if backend is VectorEnvAdapter:
        return make_meta_vec_env(ENV_ID, vectorization="native", **options)
    return make_meta_vec_env(ENV_ID, vec_env_cls=backend, **options)


@pytest.mark.parametrize("backend", BACKENDS)
def test_task_layout(backend: type[VecEnv], opened: Callable) -> None:
    task_set = TaskSet.from_env(ENV_ID, n_train=5, n_test=2, seed=1)
    venv = opened(make(backend, tasks=task_set))
    assert isinstance(venv.unwrapped, backend)
    assert venv.num_envs == 6 and (venv.n_tasks, venv.envs_per_task) == (3, 2)
    np.testing.assert_array_equal(venv.task_indices, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(venv.env_indices_of(1), [2, 3])
    np.testing.assert_array_equal(venv.env_indices_of(np.array([0, 2])), [[0, 1], [4, 5]])
    assert venv.tasks == task_set.train[:3]
    sub_tasks = venv.env_method("get_task")
    for i in range(6):
        assert venv.task_of(i) is venv.tasks[i // 2]
        np.testing.assert_array_equal(sub_tasks[i]["goal"], task_set.train[i // 2]["goal"])
    assert venv.has_latent and venv.latent_dim == 2


def test_forkserver_workers(opened: Callable) -> None:
    """SB3's default start method: workers import nothing of the parent, yet find maesn_sb3's envs."""
    venv = opened(
        make(SubprocVecEnv, n_tasks=2, envs_per_task=1, vec_env_kwargs={"start_method": "forkserver"})
    )
    obs = venv.reset()
    assert obs.shape == (2, 4)
    goals = venv.env_method("get_task")
    for slot in range(2):
        np.testing.assert_array_equal(goals[slot]["goal"], venv.tasks[slot]["goal"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_initial_tasks_drawn_from_seed(backend: type[VecEnv], opened: Callable) -> None:
    first = opened(make(backend, seed=3)).tasks
    second = opened(make(DummyVecEnv, seed=3)).tasks
    third = opened(make(DummyVecEnv, seed=4)).tasks
    goals = [np.array([t["goal"] for t in tasks]) for tasks in (first, second, third)]
    np.testing.assert_array_equal(goals[0], goals[1])
    assert not np.allclose(goals[0], goals[2])
    assert len({tuple(g) for g in goals[0]}) == 3  # distinct tasks per slot


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_tasks_and_sample_tasks(backend: type[VecEnv], opened: Callable) -> None:
    venv = opened(make(backend))
    sampled = venv.sample_tasks(4)
    assert len(sampled) == 4 and all(np.linalg.norm(t["goal"]) == pytest.approx(1.0) for t in sampled)
    tasks = [{"goal": np.array([0.3, 0.4])}, {"goal": np.array([0.0, 2.0])}, {"goal": np.array([-1.2, 0.5])}]
    venv.set_tasks(tasks)
    assert venv.tasks == tasks
    venv.reset()
    _, rewards, _, infos = venv.step(np.zeros((6, 2), dtype=np.float32))
    np.testing.assert_allclose(rewards, [-0.5, -0.5, -2.0, -2.0, -1.3, -1.3], rtol=1e-6)
    assert [info["task_index"] for info in infos] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="tasks must hold n_tasks = 3 tasks, got 2"):
        venv.set_tasks(tasks[:2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_auto_reset_terminal_observation_and_truncation(backend: type[VecEnv], opened: Callable) -> None:
    venv = opened(make(backend, env_kwargs={"max_episode_steps": 4}))
    obs = venv.reset()
    assert [info["task_index"] for info in venv.reset_infos] == [0, 0, 1, 1, 2, 2]
    for i, info in enumerate(venv.reset_infos):
        np.testing.assert_array_equal(info["latent"], obs[i, 2:])
    latents = obs[:, 2:].copy()
    actions = np.linspace(-1, 1, 12, dtype=np.float32).reshape(6, 2)
    for _ in range(3):
        obs, _, dones, infos = venv.step(actions)
        assert not dones.any()
        np.testing.assert_array_equal(obs[:, 2:], latents)
        assert all("terminal_observation" not in info for info in infos)
    obs, rewards, dones, infos = venv.step(actions)
    assert dones.all() and rewards.shape == (6,)
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        terminal = info["terminal_observation"]
        np.testing.assert_allclose(terminal[:2], 4 * 0.1 * actions[i], rtol=1e-5)
        np.testing.assert_array_equal(terminal[2:], latents[i])  # the finished episode's latent
        assert info["episode"]["l"] == 4  # Monitor
        assert isinstance(info["is_success"], bool)
        assert info["task_index"] == i // 2
        # the new episode: back at the origin with a fresh latent, announced in reset_infos
        np.testing.assert_array_equal(obs[i, :2], [0.0, 0.0])
        np.testing.assert_array_equal(venv.reset_infos[i]["latent"], obs[i, 2:])
        assert venv.reset_infos[i]["task_index"] == i // 2
    assert not np.allclose(obs[:, 2:], latents)
    _, _, _, infos = venv.step(actions)  # reset infos stay annotated on later steps too
    assert [info["task_index"] for info in venv.reset_infos] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("backend", SINGLE_ENV_BACKENDS)
def test_termination_and_success_translation(backend: type[VecEnv], opened: Callable) -> None:
    fork = {"start_method": "fork"} if backend is SubprocVecEnv else None
    venv = opened(
        make_meta_vec_env(
            CountdownTaskEnv, 2, 2, seed=0, tasks=[2, 3], vec_env_cls=backend, vec_env_kwargs=fork
        )
    )
    assert not venv.has_latent and venv.latent_dim is None
    venv.reset()
    actions = np.zeros((4, 1), dtype=np.float32)
    _, _, dones, infos = venv.step(actions)
    assert not dones.any() and [info["is_success"] for info in infos] == [False] * 4
    _, _, dones, infos = venv.step(actions)
    np.testing.assert_array_equal(dones, [True, True, False, False])
    for info in infos[:2]:
        assert info["is_success"] is True and info["TimeLimit.truncated"] is False
        np.testing.assert_array_equal(info["terminal_observation"], [1.0])
    _, _, dones, infos = venv.step(actions)
    np.testing.assert_array_equal(dones, [False, False, True, True])
    assert [info["is_success"] for info in infos] == [False, False, True, True]
    with pytest.raises(RuntimeError, match="carry no LatentWrapper"):
        venv.set_latent_distributions(np.zeros((2, 2)), np.ones((2, 2)))


def test_success_translation_keeps_an_own_is_success_and_custom_key(opened: Callable) -> None:
    venv = opened(make_meta_vec_env(ENV_ID, n_tasks=1, envs_per_task=1, seed=0, success_key="distance"))
    venv.reset()
    _, _, _, infos = venv.step(np.zeros((1, 2), dtype=np.float32))
    assert infos[0]["is_success"] is False  # the env's own flag, not bool(distance)
    venv = opened(make_meta_vec_env(CountdownTaskEnv, n_tasks=1, seed=0, tasks=[1], success_key="absent"))
    venv.reset()
    _, _, _, infos = venv.step(np.zeros((1, 1), dtype=np.float32))
    assert "is_success" not in infos[0] and infos[0]["success"] == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_observations(backend: type[VecEnv], opened: Callable) -> None:
    def rollout(venv: VecEnv, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            venv.seed(seed)
        observations = [venv.reset()]
        rng = np.random.default_rng(0)
        for _ in range(12):
            observations.append(venv.step(rng.uniform(-1, 1, (6, 2)).astype(np.float32))[0])
        return np.array(observations)

    kwargs = {"env_kwargs": {"max_episode_steps": 5}}
    first = rollout(opened(make(backend, seed=7, **kwargs)))
    second = rollout(opened(make(backend, seed=7, **kwargs)))
    other = rollout(opened(make(backend, seed=8, **kwargs)))
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first[:, :, 2:], other[:, :, 2:])
    venv = opened(make(backend, seed=7, **kwargs))
    rollout(venv)
    np.testing.assert_array_equal(rollout(venv, seed=7), first)  # seed() is consumed at the next reset


@pytest.mark.parametrize("backend", BACKENDS)
def test_latent_pushing(backend: type[VecEnv], opened: Callable) -> None:
    venv = opened(make(backend, env_kwargs={"max_episode_steps": 3}))
    means = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0]])
    venv.set_latent_distributions(means, np.zeros((3, 2)))
    for i, (mean, std) in enumerate(venv.get_attr("latent_distribution")):
        np.testing.assert_array_equal(mean, means[i // 2])
        np.testing.assert_array_equal(std, [0.0, 0.0])
    obs = venv.reset()
    np.testing.assert_array_equal(obs[:, 2:], np.repeat(means, 2, axis=0))
    for _ in range(3):  # through an auto-reset
        obs, _, dones, infos = venv.step(np.zeros((6, 2), dtype=np.float32))
    assert dones.all()
    np.testing.assert_array_equal(obs[:, 2:], np.repeat(means, 2, axis=0))
    np.testing.assert_array_equal([info["latent"] for info in infos], np.repeat(means, 2, axis=0))
    # spread around the means with a std per slot
    venv.set_latent_distributions(means, np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    obs = venv.reset()
    np.testing.assert_array_equal(obs[[0, 1, 4, 5], 2:], np.repeat(means[[0, 2]], 2, axis=0))
    assert not np.allclose(obs[2, 2:], obs[3, 2:])


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_latent_distributions_fail_early(backend: type[VecEnv], opened: Callable) -> None:
    venv = opened(make(backend))
    good = np.zeros((3, 2))
    cases = [
        ((np.zeros((2, 2)), good), r"means must have shape \(3, 2\) \(n_tasks, latent_dim\), got \(2, 2\)"),
        ((good, np.ones(2)), r"stds must have shape \(3, 2\)"),
        ((np.full((3, 2), np.nan), good), "means must be finite"),
        ((good, np.full((3, 2), np.inf)), "stds must be finite"),
        ((good, -np.ones((3, 2))), "stds must be >= 0"),
    ]
    for (means, stds), match in cases:
        with pytest.raises(ValueError, match=match):
            venv.set_latent_distributions(means, stds)
    with pytest.raises(TypeError, match="means and stds must be arrays of numbers"):
        venv.set_latent_distributions("zero", good)
    venv.reset()  # the workers are still alive and unchanged
    for mean, std in venv.get_attr("latent_distribution"):
        np.testing.assert_array_equal(mean, [0.0, 0.0])
        np.testing.assert_array_equal(std, [1.0, 1.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_env_method_get_attr_set_attr(backend: type[VecEnv], opened: Callable) -> None:
    venv = opened(make(backend))
    assert venv.get_attr("reward_type") == ["dense"] * 6
    assert venv.has_attr("set_task") and not venv.has_attr("no_such_attribute")
    venv.set_attr("marker", 7, indices=[1, 4])
    assert venv.get_attr("marker", indices=[1, 4]) == [7, 7]
    goals = venv.env_method("get_task", indices=[2, 3])
    np.testing.assert_array_equal(goals[0]["goal"], venv.tasks[1]["goal"])
    np.testing.assert_array_equal(goals[1]["goal"], venv.tasks[1]["goal"])
    assert venv.env_is_wrapped(gym.wrappers.TimeLimit) == [True] * 6


def test_wraps_a_hand_built_backend_and_keeps_its_tasks(opened: Callable) -> None:
    def one(goal: list[float]) -> Callable[[], gym.Env]:
        def build() -> gym.Env:
            env = gym.make(ENV_ID)
            env.unwrapped.set_task({"goal": np.array(goal)})
            return env

        return build

    backend = DummyVecEnv([one([1.0, 0.0]), one([1.0, 0.0]), one([0.0, 1.0]), one([0.0, 1.0])])
    venv = opened(MetaTaskVecEnv(backend, n_tasks=2, envs_per_task=2))
    np.testing.assert_array_equal([t["goal"] for t in venv.tasks], [[1.0, 0.0], [0.0, 1.0]])
    assert not venv.has_latent


def test_ppo_learns_and_evaluate_policy_works(opened: Callable) -> None:
    # every slot on one goal, so that a multi-task policy can solve it and learning shows
    torch.set_num_threads(1)
    goal = {"goal": np.array([0.0, 1.0])}
    venv = opened(make(DummyVecEnv, n_tasks=4, envs_per_task=2, tasks=[goal] * 4))
    eval_env = opened(make(DummyVecEnv, n_tasks=2, envs_per_task=2, seed=100, tasks=[goal] * 2))
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=128, n_epochs=5, learning_rate=1e-3, seed=0)
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=8)
    model.learn(8192)
    after, _ = evaluate_policy(model, eval_env, n_eval_episodes=8)
    # standing still scores -50 (distance 1 for 50 steps); walking to the goal and staying about -10
    assert before == pytest.approx(-50.0, abs=2.0)
    assert after > -30.0, (before, after)
    assert len(model.ep_info_buffer) > 0
    assert len(model.ep_success_buffer) > 0 and np.mean(model.ep_success_buffer) > 0.2  # is_success logged


def test_ppo_on_subprocess_workers(opened: Callable) -> None:
    torch.set_num_threads(1)
    venv = opened(make(SubprocVecEnv, n_tasks=2, envs_per_task=2))  # the multi-task baseline
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0)
    model.learn(512)
    rewards, lengths = evaluate_policy(model, venv, n_eval_episodes=4, return_episode_rewards=True)
    assert len(rewards) == 4 and lengths == [50] * 4 and np.all(np.isfinite(rewards))


def test_bad_construction(opened: Callable) -> None:
    backend = opened(DummyVecEnv([lambda: gym.make(ENV_ID) for _ in range(4)]))
    with pytest.raises(TypeError, match="venv must be a stable_baselines3 VecEnv, got PointNav2DEnv"):
        MetaTaskVecEnv(gym.make(ENV_ID).unwrapped, n_tasks=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_tasks must be an int >= 1, got 0"):
        MetaTaskVecEnv(backend, n_tasks=0)
    with pytest.raises(ValueError, match="envs_per_task must be an int >= 1, got True"):
        MetaTaskVecEnv(backend, n_tasks=4, envs_per_task=True)
    with pytest.raises(ValueError, match=r"venv.num_envs must equal n_tasks \* envs_per_task = 6, got 4"):
        MetaTaskVecEnv(backend, n_tasks=3, envs_per_task=2)
    cartpole = opened(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    with pytest.raises(TypeError, match="do not implement the task API"):
        MetaTaskVecEnv(cartpole, n_tasks=1)
    venv = MetaTaskVecEnv(backend, n_tasks=2, envs_per_task=2)
    with pytest.raises(IndexError, match=r"env_index must lie in \[0, 4\), got 4"):
        venv.task_of(4)
    with pytest.raises(IndexError, match=r"env_index must lie in \[0, 4\), got -1"):
        venv.task_of(-1)
    with pytest.raises(IndexError, match=r"task_index must lie in \[0, 2\), got 2"):
        venv.env_indices_of(2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_tasks": 0}, ValueError, "n_tasks must be an int >= 1, got 0"),
        ({"envs_per_task": 1.5}, ValueError, "envs_per_task must be an int >= 1, got 1.5"),
        ({"latent_dim": 0}, ValueError, "latent_dim must be None or an int >= 1, got 0"),
        ({"latent_dim": True}, ValueError, "latent_dim must be None or an int >= 1, got True"),
        ({"n_tasks": 3, "tasks": [1, 2]}, ValueError, "tasks must hold n_tasks = 3 tasks, got 2"),
    ],
)
def test_make_meta_vec_env_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    options: dict[str, Any] = {"n_tasks": 2, "seed": 0}
    options.update(kwargs)
    env_id = CountdownTaskEnv if "tasks" in kwargs else ENV_ID
    with pytest.raises(error, match=match):
        make_meta_vec_env(env_id, **options)


def test_make_meta_vec_env_taskset_too_small() -> None:
    tasks = TaskSet.from_env(ENV_ID, n_train=2, n_test=1, seed=0)
    with pytest.raises(ValueError, match="has 2 training tasks, fewer than n_tasks=3"):
        make_meta_vec_env(ENV_ID, n_tasks=3, tasks=tasks)
