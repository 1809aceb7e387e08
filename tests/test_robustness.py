"""Failures that must neither corrupt a model nor pass silently (issue 16): non-finite numbers, envs
without a horizon, bad input at the boundary, exact resume, loading the wrong file."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from torch.nn.utils import parameters_to_vector

from maesn_sb3 import MAESN, MAML, LSBaseline, make_meta_vec_env
from maesn_sb3.common.trpo import trpo_step
from wrappers import LatentWrapper
from wrappers.discriminator import SkillDiscriminator

ENV_ID = "maesn_sb3/PointNav2D-v0"
SMALL = {"n_tasks": 2, "envs_per_task": 2, "env_kwargs": {"max_episode_steps": 8}}


class BadNumberAt(gym.Wrapper):
    """Returns a non-finite reward (or observation) at the ``at``-th step of the env's life."""

    def __init__(self, env: gym.Env, at: int = 3, what: str = "reward") -> None:
        super().__init__(env)
        self.at, self.what, self.t = at, what, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        if self.t == self.at:
            if self.what == "reward":
                reward = float("inf")
            else:
                obs = np.full_like(obs, np.nan)
        return obs, reward, terminated, truncated, info


def all_parameters(model) -> th.Tensor:
    tensors = [parameters_to_vector(model.policy.parameters())]
    if hasattr(model, "latents"):
        tensors.append(parameters_to_vector(model.latents.parameters()))
    return th.cat(tensors).detach().clone()


# -- numbers that go bad --------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", [MAESN, LSBaseline, MAML])
@pytest.mark.parametrize("what", ["reward", "observation"])
def test_a_non_finite_reward_or_observation_is_named_and_leaves_the_model_intact(algo, what):
    latent = {} if algo is MAML else {"latent_dim": 2}
    env = make_meta_vec_env(
        ENV_ID, seed=0, wrapper_class=BadNumberAt, wrapper_kwargs={"what": what}, **SMALL, **latent
    )
    model = algo("MlpPolicy", env, n_train_tasks=4, seed=0)
    before = all_parameters(model)
    expected = rf"sub-env 0 \(task slot 0\) returned a {what} that is not finite at step 3"
    with pytest.raises(ValueError, match=expected) as error:
        model.learn(10_000)
    assert "VecCheckNan" in str(error.value)
    assert th.equal(all_parameters(model), before)  # the bad batch never reached an update


def test_trpo_step_restores_the_parameters_when_the_line_search_raises():
    weight = th.nn.Parameter(th.tensor([1.0, 2.0]))
    calls = {"n": 0}

    def loss_fn() -> th.Tensor:
        calls["n"] += 1
        if calls["n"] > 1:  # inside the line search, after a step was written into the parameters
            raise RuntimeError("boom")
        return (weight**2).sum()

    def kl_fn() -> th.Tensor:
        return ((weight - weight.detach()) ** 2).sum()

    with pytest.raises(RuntimeError, match="boom"):
        trpo_step([weight], loss_fn, kl_fn, max_kl=0.01)
    th.testing.assert_close(weight.detach(), th.tensor([1.0, 2.0]))


def test_a_line_search_trial_whose_distributions_torch_refuses_is_shrunk_not_fatal():
    """A trial step so far off that torch refuses its distributions (``ValueError`` from NaN
    parameters) is a rejected trial: the search shrinks the step and takes a sound one."""
    weight = th.nn.Parameter(th.tensor([1.0, 2.0]))
    start = weight.detach().clone()

    def loss_fn() -> th.Tensor:
        if (weight - start).norm() > 0.05:  # big trial steps: the distribution is invalid
            th.distributions.Normal(th.tensor(float("nan")), th.tensor(1.0))
        return (weight**2).sum()

    def kl_fn() -> th.Tensor:
        return ((weight - start) ** 2).sum()

    stats = trpo_step([weight], loss_fn, kl_fn, max_kl=0.01)
    assert stats.accepted and stats.line_search_steps > 1
    assert (weight.detach() - start).norm() <= 0.05 and stats.loss_after < stats.loss_before


def test_trpo_step_refuses_a_loss_that_is_not_finite():
    weight = th.nn.Parameter(th.tensor([1.0, 2.0]))
    with pytest.raises(FloatingPointError, match="loss is not finite"):
        trpo_step([weight], lambda: (weight * float("inf")).sum(), lambda: (weight * 0).sum(), 0.01)
    th.testing.assert_close(weight.detach(), th.tensor([1.0, 2.0]))


def test_discriminator_refuses_a_non_finite_state_and_keeps_its_weights():
    space = spaces.Box(-np.inf, np.inf, (5,), np.float32)  # 2 state features + a 3-skill one-hot
    disc = SkillDiscriminator(space, 3, net_arch=(8,), device="cpu", seed=0)
    obs = np.concatenate([np.zeros((3, 2)), np.eye(3)], axis=1).astype(np.float32)
    obs[1, 0] = np.nan
    weights = parameters_to_vector(disc.parameters()).detach().clone()
    with pytest.raises(ValueError, match=r"not finite \(row 1"):
        disc.update(obs)
    th.testing.assert_close(parameters_to_vector(disc.parameters()).detach(), weights)


@pytest.mark.parametrize("name", ["mean", "std"])
def test_latent_wrapper_rejects_a_distribution_that_overflows_float32(name):
    env = gym.make(ENV_ID)
    with pytest.raises(ValueError, match=f"{name} must fit in float32"):
        LatentWrapper(env, latent_dim=2, **{name: 1e39})
    wrapper = LatentWrapper(env, latent_dim=2)
    with pytest.raises(ValueError, match=f"{name} must fit in float32"):
        wrapper.set_latent_distribution(**{"mean": 0.0, "std": 1.0, name: [1e39, 0.0]})
    wrapper.set_latent_distribution(mean=3e38, std=3e38)  # each fits; a draw may not
    with pytest.raises(ValueError, match="does not fit in float32"):
        for seed in range(20):
            wrapper.reset(seed=seed)


# -- bounded work -----------------------------------------------------------------------------------------
class Endless(gym.Env):
    """A task env whose episodes never end; it fails loudly if stepped far beyond any sane collection."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, max_episode_steps: int | None = None) -> None:
        if max_episode_steps is not None:
            self.max_episode_steps = max_episode_steps  # claimed, but not honoured
        self.steps = 0

    def sample_tasks(self, n: int) -> list[dict]:
        return [{"k": i} for i in range(n)]

    def set_task(self, task: dict) -> None:
        self.task = task

    def get_task(self) -> dict:
        return {"k": 0}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.steps += 1
        if self.steps > 5_000:
            raise AssertionError("collection did not stop: the env has no horizon")
        return np.zeros(2, np.float32), 0.0, False, False, {}


@pytest.mark.parametrize("algo", [MAESN, MAML])
def test_an_env_without_a_horizon_is_refused_before_collection(algo):
    latent = {} if algo is MAML else {"latent_dim": 2}
    env = make_meta_vec_env(Endless, n_tasks=2, envs_per_task=1, seed=0, **latent)
    model = algo("MlpPolicy", env, n_train_tasks=2, seed=0)
    with pytest.raises(ValueError, match=r"no horizon .*TimeLimit.*max_episode_steps"):
        model.learn(100)
    assert env.get_attr("steps") == [0, 0]


def test_a_horizon_that_is_not_honoured_stops_collection():
    env = make_meta_vec_env(
        Endless, n_tasks=1, envs_per_task=2, seed=0, latent_dim=2, env_kwargs={"max_episode_steps": 7}
    )
    assert env.horizon == 7
    with pytest.raises(RuntimeError, match="ran past the horizon of 7 steps"):
        MAESN("MlpPolicy", env, n_train_tasks=2, seed=0).learn(100)
    limited = make_meta_vec_env(
        lambda: gym.wrappers.TimeLimit(Endless(), max_episode_steps=4), n_tasks=1, seed=0, latent_dim=2
    )
    assert limited.horizon == 4
    MAESN("MlpPolicy", limited, n_train_tasks=2, seed=0).learn(20)


# -- exact resume ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("algo", "backend"), [(MAESN, "dummy"), (MAML, "dummy"), (MAESN, "subproc"), (MAESN, "native")]
)
def test_save_load_learn_continues_exactly_as_uninterrupted_training(algo, backend, tmp_path):
    latent = {} if algo is MAML else {"latent_dim": 2}
    if backend == "subproc":
        latent.update(vectorization="subproc", vec_env_kwargs={"start_method": "fork"})
    elif backend == "native":
        latent.update(vectorization="native")

    def env():
        return make_meta_vec_env(ENV_ID, seed=0, **SMALL, **latent)

    straight = algo("MlpPolicy", env(), n_train_tasks=6, seed=0).learn(100)
    straight.save(tmp_path / "model")
    straight.learn(100, reset_num_timesteps=False)
    th.manual_seed(123)  # whatever happens to the global generators in between
    np.random.seed(123)  # noqa: NPY002  (the legacy global generator, on purpose)
    resumed = algo.load(tmp_path / "model", env=env())
    resumed.save(tmp_path / "again")  # saving before training keeps the loaded random state
    resumed.learn(100, reset_num_timesteps=False)
    assert resumed.num_timesteps == straight.num_timesteps
    assert th.equal(all_parameters(resumed), all_parameters(straight))
    obs = straight.env.reset()
    np.testing.assert_array_equal(resumed.env.reset(), obs)  # the env's streams continue alike
    straight.env.close()
    resumed.env.close()


# -- bad input at the boundary ------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", [MAESN, MAML])
def test_predict_adapt_and_learn_check_their_input(algo):
    latent = {} if algo is MAML else {"latent_dim": 2}
    env = make_meta_vec_env(ENV_ID, seed=0, **SMALL, **latent)
    model = algo("MlpPolicy", env, n_train_tasks=2, seed=0)
    for observation in ("abc", 3.0, np.zeros((2, 3, 4)), np.zeros((2, 3, 2))):
        error = TypeError if isinstance(observation, str) else ValueError
        with pytest.raises(error, match="observation must"):
            model.predict(observation)
    n_features = model.observation_space.shape[0]
    batch = np.zeros((3, n_features), dtype=np.float32)
    batch[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"observation is not finite at row 2, feature 1 \(got nan\)"):
        model.predict(batch)
    single = np.zeros(n_features)
    single[0] = -np.inf
    with pytest.raises(ValueError, match=r"observation is not finite at feature 0 \(got -inf\)"):
        model.predict(single)
    with pytest.raises(ValueError, match=r"seed must be an int >= 0, got 'a'"):
        model.adapt(env, n_iterations=0, seed="a")
    with pytest.raises(TypeError, match=r"total_timesteps must be an int \(env steps\), got '100'"):
        model.learn("100")
    with pytest.raises(ValueError, match="total_timesteps must be >= 0, got -5"):
        model.learn(-5)
    model.learn(1e2)  # a whole float, as SB3 accepts
    assert model.num_timesteps >= 100


# -- loading the wrong file -----------------------------------------------------------------------------
def test_load_says_what_the_file_is_or_is_not(tmp_path):
    from stable_baselines3 import PPO

    maesn = MAESN("MlpPolicy", make_meta_vec_env(ENV_ID, seed=0, latent_dim=2, **SMALL), n_train_tasks=2)
    maesn.save(tmp_path / "maesn")
    PPO("MlpPolicy", make_meta_vec_env(ENV_ID, seed=0, **SMALL), n_steps=8, batch_size=32).save(
        tmp_path / "ppo"
    )
    with pytest.raises(
        ValueError, match=r"does not hold a MAESN model: it lacks task_set.*stable_baselines3"
    ):
        MAESN.load(tmp_path / "ppo.zip")
    with pytest.raises(
        ValueError, match=r"holds a MAESN model, not a LSBaseline one; load it with MAESN\.load"
    ):
        LSBaseline.load(tmp_path / "maesn")
    with pytest.raises(ValueError, match="holds a MAESN model, not a MAML one"):
        MAML.load(tmp_path / "maesn.zip")
    with pytest.raises(FileNotFoundError, match=r"no model file at .*nope\.zip$"):
        MAESN.load(tmp_path / "nope.zip")
    with pytest.raises(FileNotFoundError, match=r"no model file at .*nope \(nor at .*nope\.zip\)"):
        MAESN.load(tmp_path / "nope")
    whole = (tmp_path / "maesn.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"cut\.zip is not a readable model zip.*truncated"):
        MAESN.load(tmp_path / "cut.zip")
    loaded = MAESN.load(tmp_path / "maesn")  # the right file still loads, without the marker
    assert not hasattr(loaded, "_algorithm")


# -- errors that say what broke ---------------------------------------------------------------------------
class Armed(gym.Wrapper):
    """Raises in ``step`` once ``arm()`` was called (through ``env_method``)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.armed = False

    def arm(self) -> None:
        self.armed = True

    def step(self, action):
        if self.armed:
            raise ValueError("the wheel came off")
        return self.env.step(action)


def subproc_env(**kwargs):
    from stable_baselines3.common.vec_env import SubprocVecEnv

    return make_meta_vec_env(
        ENV_ID,
        seed=0,
        vec_env_cls=SubprocVecEnv,
        vec_env_kwargs={"start_method": "fork"},
        wrapper_class=Armed,
        **{**SMALL, **kwargs},
    )


def test_a_sub_env_error_in_a_worker_names_the_env_and_slot_and_close_is_quiet():
    from maesn_sb3.vec_env import EnvWorkerError

    env = subproc_env()
    env.reset()
    actions = np.zeros((env.num_envs, 2), np.float32)
    env.env_method("arm", indices=[3])
    with pytest.raises(
        EnvWorkerError, match=r"sub-env 3 \(task slot 1\) raised ValueError: the wheel came off"
    ) as error:
        env.step(actions)
    assert error.value.env_index == 3 and error.value.error_type == "ValueError"
    assert "Traceback" in error.value.worker_traceback
    with pytest.raises(AttributeError, match=r"sub-env 1 .*raised AttributeError"):  # as DummyVecEnv
        env.get_attr("no_such_attribute", indices=[1])
    env.set_attr("armed", False, indices=[3])
    env.step(actions)  # the workers stay in step with each other and usable
    env.close()
    assert all(not process.is_alive() for process in env.venv.processes)


def test_a_killed_worker_is_named_with_its_exit_code_and_close_still_ends_the_others():
    import os
    import signal

    from maesn_sb3.vec_env import EnvWorkerError

    env = subproc_env()
    env.reset()
    os.kill(env.venv.processes[2].pid, signal.SIGKILL)
    env.venv.processes[2].join(5)
    with pytest.raises(
        EnvWorkerError, match=r"worker process of sub-env 2 \(task slot 1\) ended \(exit code -9, SIGKILL\)"
    ):
        env.step(np.zeros((env.num_envs, 2), np.float32))
    env.close()  # quiet
    assert all(not process.is_alive() for process in env.venv.processes)


@pytest.mark.parametrize("backend", ["dummy", "subproc"])
def test_set_tasks_with_a_refused_task_keeps_every_slot_on_its_previous_task(backend):
    env = subproc_env() if backend == "subproc" else make_meta_vec_env(ENV_ID, seed=0, **SMALL)
    before = env.tasks
    new = [{"goal": np.array([0.1, 0.2])}, {"goal": "north"}]
    with pytest.raises(
        ValueError,
        match=r"slot 1 \(dict .*north.*\) was refused by its sub-envs \(every slot keeps its previous",
    ):
        env.set_tasks(new)
    assert [t["goal"].tolist() for t in env.tasks] == [t["goal"].tolist() for t in before]
    held = env.env_method("get_task")
    assert [t["goal"].tolist() for t in held] == [t["goal"].tolist() for t in before for _ in range(2)]
    if backend == "subproc":
        with pytest.raises(
            TypeError, match=r"task of slot 1 \(a dict\) cannot be pickled.*no slot was changed"
        ):
            env.set_tasks([new[0], {"goal": np.array([0.1, 0.2]), "hook": lambda: 0}])
        assert [t["goal"].tolist() for t in env.env_method("get_task")] == [t["goal"].tolist() for t in held]
    env.close()


def test_saving_a_model_with_parameters_that_are_not_finite_warns(tmp_path):
    model = MAESN("MlpPolicy", make_meta_vec_env(ENV_ID, seed=0, latent_dim=2, **SMALL), n_train_tasks=2)
    with th.no_grad():
        model.latents.means[0, 0] = float("nan")
    with pytest.warns(UserWarning, match=r"parameters are not finite \(latents\.means\)"):
        model.save(tmp_path / "broken")


def test_the_ppo_based_methods_check_the_adaptation_seed():
    from maesn_sb3 import RL2, MultiTaskPPO, ppo_from_scratch
    from wrappers.rl2 import RL2Wrapper

    env = make_meta_vec_env(ENV_ID, seed=0, **SMALL)
    with pytest.raises(ValueError, match=r"seed must be an int >= 0, got 'a'"):
        ppo_from_scratch(env, n_iterations=0, seed="a")
    model = MultiTaskPPO("MlpPolicy", env, n_train_tasks=2, n_steps=8, batch_size=32, seed=0)
    with pytest.raises(ValueError, match=r"seed must be an int >= 0, got -3"):
        model.adapt(env, n_iterations=0, seed=-3)
    trials = make_meta_vec_env(
        ENV_ID, seed=0, wrapper_class=RL2Wrapper, wrapper_kwargs={"episodes_per_trial": 2}, **SMALL
    )
    rl2 = RL2("MlpLstmPolicy", trials, n_train_tasks=2, n_steps=16, seed=0)
    with pytest.raises(ValueError, match=r"seed must be an int >= 0, got 'a'"):
        rl2.adapt(trials, seed="a")


def test_latent_vector_wrapper_rejects_distributions_that_overflow_float32():
    from wrappers import LatentVectorWrapper

    envs = LatentVectorWrapper(gym.make_vec(ENV_ID, num_envs=2), latent_dim=2)
    with pytest.raises(ValueError, match="mean must fit in float32"):
        envs.set_latent_distribution(mean=1e39, std=1.0)
    with pytest.raises(ValueError, match="stds must fit in float32"):
        envs.set_latent_distributions(np.zeros((2, 2)), np.full((2, 2), 1e39))
    envs.set_latent_distributions(np.full((2, 2), 3e38), np.full((2, 2), 3e38))
    with pytest.raises(ValueError, match="does not fit in float32"):
        for seed in range(20):
            envs.reset(seed=seed)
