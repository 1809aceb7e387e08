"""Generic behaviour of every algorithm, parametrized as SB3's own test suite does: save/load, ``set_env``,
seeding, a callback that stops training, ``adapt``, Dict observations and the env-step budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from maesn_sb3 import MAESN, MAML, RL2, AdaptationCurve, LSBaseline, MetaTaskVecEnv, MultiTaskPPO
from tests.conftest import ENV_ID, DictPoint, small_meta_env
from wrappers import RL2Wrapper

HORIZON = 8  # the small env's episode length (tests/conftest.py)


@dataclass
class Spec:
    """How to build a small model of one algorithm and its env, and how to adapt it."""

    cls: type
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    policy: str = "MlpPolicy"
    dict_policy: str = "MultiInputPolicy"
    recurrent: bool = False
    budget: int = 200

    def env(self, seed: int = 0, dict_obs: bool = False) -> MetaTaskVecEnv:
        kwargs = dict(self.env_kwargs)
        if dict_obs:
            inner = kwargs.pop("wrapper_class", None)
            wrapper_kwargs = kwargs.pop("wrapper_kwargs", {})
            kwargs["wrapper_class"] = (
                DictPoint if inner is None else lambda env: inner(DictPoint(env), **wrapper_kwargs)
            )
        return small_meta_env(seed, **kwargs)

    def model(self, seed: int = 0, dict_obs: bool = False, env: MetaTaskVecEnv | None = None) -> Any:
        policy = self.dict_policy if dict_obs else self.policy
        env = self.env(seed, dict_obs) if env is None else env
        return self.cls(policy, env, n_train_tasks=4, seed=seed, **self.model_kwargs)

    def adapt(self, model: Any, env: MetaTaskVecEnv, n_iterations: int, episodes: int) -> AdaptationCurve:
        if self.recurrent:  # RL^2 adapts over one trial: n_iterations is the trial length - 1
            return model.adapt(env, episodes_per_iteration=episodes, seed=0)
        return model.adapt(env, n_iterations=n_iterations, episodes_per_iteration=episodes, seed=0)


SPECS = {
    "MAESN": Spec(MAESN, {"latent_dim": 2}),
    "LSBaseline": Spec(LSBaseline, {"latent_dim": 2}),
    "MAML": Spec(MAML),
    "MAESN-trpo": Spec(MAESN, {"latent_dim": 2}, {"outer_update": "trpo"}),
    "MAML-trpo": Spec(MAML, model_kwargs={"outer_update": "trpo"}),
    "RL2": Spec(
        RL2,
        {"wrapper_class": RL2Wrapper, "wrapper_kwargs": {"episodes_per_trial": 3}},
        {"n_steps": 3 * HORIZON, "batch_size": 48, "n_epochs": 1},
        policy="MlpLstmPolicy",
        dict_policy="MultiInputLstmPolicy",
        recurrent=True,
        budget=150,
    ),
    "MultiTaskPPO": Spec(  # adapt fine-tunes one PPO per task slot: single envs
        MultiTaskPPO, {"vectorization": "dummy"}, {"n_steps": HORIZON, "batch_size": 24, "n_epochs": 1}
    ),
}
ALGOS = pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))


def _actions(model: Any, obs: Any) -> np.ndarray:
    episode_start = np.ones(len(obs) if not isinstance(obs, dict) else 6, dtype=bool)
    return model.predict(obs, episode_start=episode_start, deterministic=True)[0]


def _parameters(model: Any) -> th.Tensor:
    return th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().clone()


@ALGOS
def test_save_load_round_trip(spec: Spec, tmp_path) -> None:
    model = spec.model().learn(spec.budget)
    obs = model.env.reset()
    actions = _actions(model, obs)
    model.save(tmp_path / "model.zip")
    loaded = spec.cls.load(tmp_path / "model.zip", env=spec.env(seed=1))
    th.testing.assert_close(_parameters(loaded), _parameters(model))
    np.testing.assert_allclose(_actions(loaded, obs), actions, atol=1e-6)
    loaded.learn(spec.budget, reset_num_timesteps=False)  # trains on after loading


@ALGOS
def test_set_env_then_learn(spec: Spec) -> None:
    model = spec.model()
    model.set_env(spec.env(seed=1))
    model.learn(spec.budget)
    assert model.num_timesteps >= spec.budget


@pytest.mark.determinism
@ALGOS
def test_same_seed_same_training(spec: Spec) -> None:
    first, second = spec.model().learn(spec.budget), spec.model().learn(spec.budget)
    th.testing.assert_close(_parameters(first), _parameters(second))


@ALGOS
def test_a_callback_returning_false_stops_training(spec: Spec) -> None:
    class StopAtOnce(BaseCallback):
        def _on_step(self) -> bool:
            return False

    model = spec.model().learn(10 * spec.budget, callback=StopAtOnce())
    assert model.num_timesteps <= model.env.num_envs  # one vectorised step, then it stopped


@ALGOS
def test_adapt_returns_a_curve_per_task_slot(spec: Spec) -> None:
    model = spec.model()
    env = spec.env(seed=2)
    curve = spec.adapt(model, env, n_iterations=2, episodes=3)
    assert isinstance(curve, AdaptationCurve)
    assert curve.returns.shape == curve.success.shape == (3, env.n_tasks)
    assert np.isfinite(curve.returns).all()


@ALGOS
def test_dict_observations(spec: Spec) -> None:
    model = spec.model(dict_obs=True)
    assert isinstance(model.observation_space, gym.spaces.Dict)
    model.learn(spec.budget)
    curve = spec.adapt(model, spec.env(seed=1, dict_obs=True), n_iterations=2, episodes=3)
    assert np.isfinite(curve.returns).all()


@ALGOS
def test_equal_budgets_give_equal_env_steps(spec: Spec) -> None:
    """``env_steps`` counts exploration steps per task slot, the same for every method."""
    episodes, iterations = 6, 2
    curve = spec.adapt(spec.model(), spec.env(), n_iterations=iterations, episodes=episodes)
    np.testing.assert_array_equal(curve.env_steps, HORIZON * episodes * np.arange(1, iterations + 2))


def test_every_algorithm_is_covered() -> None:
    covered = {spec.cls for spec in SPECS.values()}
    assert covered == {MAESN, LSBaseline, MAML, RL2, MultiTaskPPO}


@pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))
@pytest.mark.parametrize("as_env", [False, True], ids=["id", "task_env"])
def test_an_env_id_or_a_task_env_builds_the_meta_env_with_the_documented_defaults(
    spec: Spec, as_env: bool
) -> None:
    env = gym.make(ENV_ID) if as_env else ENV_ID
    model = spec.cls(spec.policy, env, n_train_tasks=4, seed=0)
    assert isinstance(model.env, MetaTaskVecEnv)
    assert (model.env.n_tasks, model.env.envs_per_task) == (20, 20)
    assert model.env.latent_dim == (2 if spec.cls in (MAESN, LSBaseline) else None)
    if spec.recurrent:
        assert all(model.env.env_is_wrapped(RL2Wrapper))


def test_a_task_env_without_spec_is_refused_with_what_to_pass() -> None:
    env = gym.make(ENV_ID).unwrapped
    env.spec = None
    with pytest.raises(TypeError, match="make_meta_vec_env"):
        MAML("MlpPolicy", env, n_train_tasks=4)


@pytest.mark.parametrize("cls", [MAESN, MAML], ids=["MAESN", "MAML"])
def test_load_wraps_a_plain_task_env_as_adapt_does(cls: type, tmp_path) -> None:
    spec = SPECS[cls.__name__]
    spec.model().learn(spec.budget).save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip", env=gym.make(ENV_ID))
    assert isinstance(loaded.env, MetaTaskVecEnv) and loaded.env.n_tasks == 1
    with pytest.warns(UserWarning):
        loaded.learn(HORIZON)


def test_learn_below_one_meta_iteration_warns_and_sizes_the_progress_bar() -> None:
    from stable_baselines3.common.callbacks import ProgressBarCallback

    class Bar(ProgressBarCallback):
        def _on_training_end(self) -> None:
            self.total = self.pbar.total
            super()._on_training_end()

    model, bar = SPECS["MAESN"].model(), Bar()
    with pytest.warns(UserWarning, match=r"one is [\d,]+ env steps"):
        model.learn(10, callback=bar)
    assert bar.total == model.num_timesteps > 10


@pytest.mark.parametrize("cls", [MAESN, MAML], ids=["MAESN", "MAML"])
def test_predict_after_a_multi_slot_adapt_uses_the_chosen_slot(cls: type) -> None:
    spec = SPECS[cls.__name__]
    model, env = spec.model(), spec.env(seed=1)
    model.adapt(env, n_iterations=1, episodes_per_iteration=3, seed=0)
    obs = env.reset()[:1]
    if cls is MAESN:
        obs = obs[:, : -model.latent_dim]  # an observation without its latent
    with pytest.raises(ValueError, match="slot=k"):
        model.predict(obs, deterministic=True)
    per_slot = [model.predict(obs, deterministic=True, slot=k)[0] for k in range(env.n_tasks)]
    assert not np.allclose(per_slot[0], per_slot[1])
    model.predict_slot = 1
    np.testing.assert_allclose(model.predict(obs, deterministic=True)[0], per_slot[1])
    with pytest.raises(ValueError, match=r"slot must be an int in \[0, 2\)"):
        model.predict(obs, slot=2)


class ThreadsSeen(BaseCallback):
    """Records torch's thread count at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[int] = set()

    def _on_step(self) -> bool:
        self.seen.add(th.get_num_threads())
        return True


@pytest.fixture
def two_torch_threads():
    before = th.get_num_threads()
    th.set_num_threads(2)
    yield
    th.set_num_threads(before)


@pytest.mark.parametrize("cls", [MAESN, MAML], ids=["MAESN", "MAML"])
def test_learn_and_adapt_run_torch_at_one_thread_and_restore_it(cls: type, two_torch_threads) -> None:
    spec = SPECS[cls.__name__]
    threads = ThreadsSeen()
    model = spec.model().learn(spec.budget, callback=threads)
    assert threads.seen == {1} and th.get_num_threads() == 2
    threads = ThreadsSeen()
    model.adapt(spec.env(seed=1), n_iterations=1, callback=threads)
    assert threads.seen == {1} and th.get_num_threads() == 2
    model.n_torch_threads = None
    threads = ThreadsSeen()
    model.learn(spec.budget, callback=threads)
    assert threads.seen == {2}


@pytest.mark.parametrize("cls", [RL2, MultiTaskPPO], ids=["RL2", "MultiTaskPPO"])
def test_the_ppo_based_methods_learn_at_one_thread_and_restore_it(cls: type, two_torch_threads) -> None:
    spec = SPECS[cls.__name__]
    threads = ThreadsSeen()
    spec.model().learn(spec.budget, callback=threads)
    assert threads.seen == {1} and th.get_num_threads() == 2
