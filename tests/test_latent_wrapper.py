"""wrappers.LatentWrapper: one latent per episode, shown in the observation and the info."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

import maesn_sb3  # noqa: F401  (registers the envs)
from wrappers import LatentWrapper, inject_latent

ENV_ID = "maesn_sb3/PointNav2D-v0"


class DictObsEnv(gym.Env):
    """A Dict-observation env that records the options it was reset with."""

    observation_space = spaces.Dict(
        {
            "position": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
            "velocity": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
        }
    )
    action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def __init__(self) -> None:
        self.last_options: dict[str, Any] | None = None

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "position": self.np_random.uniform(-1, 1, 2).astype(np.float32),
            "velocity": np.zeros(2, np.float32),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.last_options = options
        return self._obs(), {}

    def step(self, action: np.ndarray):
        return self._obs(), 0.0, False, False, {}


def make(latent_dim: int = 2, **kwargs: Any) -> LatentWrapper:
    return LatentWrapper(gym.make(ENV_ID), latent_dim=latent_dim, **kwargs)


def test_box_observation_space() -> None:
    env = make(latent_dim=3)
    space = env.observation_space
    assert isinstance(space, spaces.Box) and space.shape == (5,) and space.dtype == np.float32
    assert np.all(np.isinf(space.low)) and np.all(np.isinf(space.high))
    bounded = LatentWrapper(gym.make("CartPole-v1"), latent_dim=2)
    inner = gym.make("CartPole-v1").observation_space
    np.testing.assert_array_equal(bounded.observation_space.low[:4], inner.low)
    np.testing.assert_array_equal(bounded.observation_space.high[:4], inner.high)
    assert np.all(np.isinf(bounded.observation_space.low[4:]))
    assert np.all(np.isinf(bounded.observation_space.high[4:]))


def test_latent_fixed_for_the_episode_and_resampled_at_reset() -> None:
    env = make(latent_dim=3)
    obs, info = env.reset(seed=0)
    latent = info["latent"]
    assert latent.shape == (3,) and latent.dtype == np.float32
    np.testing.assert_array_equal(obs[2:], latent)
    np.testing.assert_array_equal(env.latent, latent)
    previous = None
    for _ in range(10):
        obs, _, _, _, info = env.step(env.action_space.sample())
        np.testing.assert_array_equal(obs[2:], latent)
        np.testing.assert_array_equal(info["latent"], latent)
        assert obs.dtype == np.float32 and env.observation_space.contains(obs)
        if previous is not None:
            assert obs is not previous and not np.shares_memory(obs, previous)
        previous = obs
    obs, info = env.reset()
    assert not np.allclose(info["latent"], latent)
    np.testing.assert_array_equal(obs[2:], info["latent"])
    # the returned arrays belong to the caller: writing into them changes nothing in the wrapper
    obs[2:] = 99.0
    info["latent"][:] = 99.0
    obs2, *_ = env.step(env.action_space.sample())
    assert not np.any(obs2[2:] == 99.0) and not np.any(env.latent == 99.0)


def test_reset_seed_reproduces_the_latent() -> None:
    first = [make().reset(seed=s)[1]["latent"] for s in (5, 5, 6)]
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.allclose(first[0], first[2])
    env = make()
    env.reset(seed=11)
    sequence = [env.reset()[1]["latent"] for _ in range(3)]
    env.reset(seed=11)
    np.testing.assert_array_equal([env.reset()[1]["latent"] for _ in range(3)], sequence)


def test_prior_is_standard_normal() -> None:
    env = make(latent_dim=2)
    env.reset(seed=0)
    latents = np.array([env.reset()[1]["latent"] for _ in range(3000)])
    np.testing.assert_allclose(latents.mean(axis=0), 0.0, atol=0.08)
    np.testing.assert_allclose(latents.std(axis=0), 1.0, atol=0.06)
    assert abs(np.corrcoef(latents.T)[0, 1]) < 0.08


def test_set_latent_distribution_from_next_reset() -> None:
    env = make(latent_dim=2)
    _, info = env.reset(seed=0)
    env.set_latent_distribution(mean=[3.0, -2.0], std=[0.5, 0.0])
    _, _, _, _, step_info = env.step(env.action_space.sample())
    np.testing.assert_array_equal(step_info["latent"], info["latent"])  # current episode unchanged
    mean, std = env.latent_distribution
    np.testing.assert_array_equal(mean, [3.0, -2.0])
    np.testing.assert_array_equal(std, [0.5, 0.0])
    mean[0] = 100.0  # a copy
    assert env.latent_distribution[0][0] == 3.0
    latents = np.array([env.reset()[1]["latent"] for _ in range(2000)])
    np.testing.assert_allclose(latents[:, 1], -2.0)
    assert latents[:, 0].mean() == pytest.approx(3.0, abs=0.05)
    assert latents[:, 0].std() == pytest.approx(0.5, abs=0.03)
    env.set_latent_distribution(mean=1.5, std=0.0)  # scalars broadcast
    np.testing.assert_array_equal(env.reset()[1]["latent"], [1.5, 1.5])


def test_constructor_distribution() -> None:
    env = make(latent_dim=3, mean=[1.0, 2.0, 3.0], std=0.0)
    np.testing.assert_array_equal(env.reset(seed=0)[1]["latent"], [1.0, 2.0, 3.0])


def test_forced_latent_through_options() -> None:
    env = make(latent_dim=2)
    obs, info = env.reset(seed=0, options={"latent": [0.25, -4.0]})
    np.testing.assert_array_equal(obs[2:], [0.25, -4.0])
    np.testing.assert_array_equal(info["latent"], [0.25, -4.0])
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_array_equal(obs[2:], [0.25, -4.0])
    # only for one episode; other options reach the inner env, without the latent
    inner = DictObsEnv()
    wrapped = LatentWrapper(inner, latent_dim=2)
    options = {"latent": np.ones(2), "level": 3}
    wrapped.reset(seed=0, options=options)
    assert inner.last_options == {"level": 3}
    assert "latent" in options  # the caller's dict is left alone
    _, info = wrapped.reset()
    assert not np.allclose(info["latent"], 1.0)


def test_set_latent_distribution_through_vec_env() -> None:
    venv = DummyVecEnv([lambda: make(latent_dim=2) for _ in range(3)])
    venv.env_method("set_latent_distribution", [1.0, 1.0], [0.0, 0.0], indices=[1])
    venv.seed(0)
    obs = venv.reset()
    np.testing.assert_array_equal(obs[1, 2:], [1.0, 1.0])
    assert not np.allclose(obs[0, 2:], 1.0) and not np.allclose(obs[2, 2:], 1.0)
    assert venv.get_attr("latent_dim") == [2, 2, 2]


def test_dict_observations() -> None:
    env = LatentWrapper(DictObsEnv(), latent_dim=3)
    assert isinstance(env.observation_space, spaces.Dict)
    assert set(env.observation_space.spaces) == {"position", "velocity", "latent"}
    latent_space = env.observation_space["latent"]
    assert latent_space.shape == (3,) and latent_space.dtype == np.float32
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs["latent"], info["latent"])
    assert env.observation_space.contains(obs)
    step_obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_array_equal(step_obs["latent"], info["latent"])
    assert step_obs["latent"] is not obs["latent"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)


def test_recreated_from_spec() -> None:
    env = make(latent_dim=3, mean=[0.5, 0.0, -0.5], std=0.1)
    assert env.spec is not None and env.spec.additional_wrappers[-1].name == "LatentWrapper"
    copy = gym.make(env.spec)
    assert isinstance(copy, LatentWrapper) and copy.latent_dim == 3
    np.testing.assert_array_equal(copy.latent_distribution[0], [0.5, 0.0, -0.5])
    np.testing.assert_array_equal(copy.latent_distribution[1], [0.1, 0.1, 0.1])
    np.testing.assert_array_equal(copy.reset(seed=4)[0], env.reset(seed=4)[0])


@pytest.mark.parametrize("latent_dim", [0, -2, 1.5, True, "2", None])
def test_bad_latent_dim(latent_dim: Any) -> None:
    with pytest.raises(ValueError, match="latent_dim must be an int >= 1"):
        make(latent_dim=latent_dim)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"mean": [0.0, 0.0, 0.0]},
            ValueError,
            r"mean must have shape \(2,\) \(latent_dim\), got shape \(3,\)",
        ),
        ({"mean": [[0.0, 0.0]]}, ValueError, r"mean must have shape \(2,\)"),
        ({"mean": [np.nan, 0.0]}, ValueError, "mean must be finite"),
        ({"mean": "zero"}, TypeError, "mean must be a number or an array of numbers"),
        ({"std": -1.0}, ValueError, "std must be >= 0"),
        ({"std": [1.0, -0.1]}, ValueError, "std must be >= 0"),
        ({"std": [np.inf, 1.0]}, ValueError, "std must be finite"),
        ({"std": np.ones(3)}, ValueError, r"std must have shape \(2,\)"),
    ],
)
def test_bad_distribution(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make(latent_dim=2, **kwargs)
    env = make(latent_dim=2)
    with pytest.raises(error, match=match):
        env.set_latent_distribution(**{"mean": 0.0, "std": 1.0, **kwargs})
    mean, std = env.latent_distribution  # a failed call leaves the distribution as it was
    np.testing.assert_array_equal(mean, [0.0, 0.0])
    np.testing.assert_array_equal(std, [1.0, 1.0])


@pytest.mark.parametrize(
    ("latent", "match"),
    [
        ([1.0, 2.0, 3.0], r"options\['latent'\] must have shape \(2,\)"),
        ([np.nan, 0.0], r"options\['latent'\] must be finite"),
    ],
)
def test_bad_forced_latent(latent: Any, match: str) -> None:
    env = make(latent_dim=2)
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0, options={"latent": latent})


def test_unsupported_observation_spaces() -> None:
    with pytest.raises(TypeError, match="needs a 1-D Box or a Dict observation space, got Discrete"):
        LatentWrapper(gym.make("FrozenLake-v1"))
    image_env = gym.make(ENV_ID)
    image_env.observation_space = spaces.Box(0, 255, shape=(8, 8, 3), dtype=np.uint8)
    with pytest.raises(TypeError, match="FlattenObservation"):
        LatentWrapper(image_env)
    clash = DictObsEnv()
    clash.observation_space = spaces.Dict({"latent": spaces.Box(-1, 1, shape=(2,))})
    with pytest.raises(ValueError, match="already has a 'latent' key"):
        LatentWrapper(clash)


def test_inject_latent_adds_a_latent_only_where_one_is_missing() -> None:
    box = spaces.Box(-1.0, 1.0, shape=(5,))  # 3 features and a 2-D latent
    asked: list[int] = []

    def latents(n: int) -> np.ndarray:
        asked.append(n)
        return np.arange(2 * n, dtype=np.float64).reshape(n, 2)

    one = inject_latent(np.zeros(3), box, 2, latents)
    assert one.dtype == np.float32 and one.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    batch = inject_latent(np.ones((2, 3)), box, 2, latents)
    np.testing.assert_array_equal(batch[:, 3:], [[0.0, 1.0], [2.0, 3.0]])
    with_latent = np.full((2, 5), 7.0)
    np.testing.assert_array_equal(inject_latent(with_latent, box, 2, latents), with_latent)
    assert asked == [1, 2]  # not asked for observations that carry their latent
    with pytest.raises(
        ValueError, match=r"5 features \(with the latent\) or 3 \(without\), got shape \(4,\)"
    ):
        inject_latent(np.zeros(4), box, 2, latents)

    dict_space = spaces.Dict(
        {"position": spaces.Box(-1, 1, shape=(3,)), "latent": spaces.Box(-1, 1, shape=(2,))}
    )
    single = inject_latent({"position": np.zeros(3)}, dict_space, 2, latents)
    assert single["latent"].dtype == np.float32 and single["latent"].tolist() == [0.0, 1.0]
    batched = inject_latent({"position": np.zeros((4, 3))}, dict_space, 2, latents)
    assert batched["latent"].shape == (4, 2)
    carried = {"position": np.zeros(3), "latent": np.ones(2)}
    assert inject_latent(carried, dict_space, 2, latents) is carried
    assert asked == [1, 2, 1, 4]
