"""Skills (DIAYN): wrapper, discriminator, fresh rewards for SAC and PPO, VecNormalize, save/load,
skills as actions, and a learning test."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

import maesn_sb3  # noqa: F401  (registers the envs)
from maesn_sb3.skills import (
    DIAYNCallback,
    DIAYNDictReplayBuffer,
    DIAYNDictRolloutBuffer,
    DIAYNReplayBuffer,
    DIAYNRolloutBuffer,
    SkillVecNormalize,
    mix_rewards,
)
from wrappers import SkillActionWrapper, SkillDiscriminator, SkillWrapper

ENV_ID = "maesn_sb3/PointNav2D-v0"
SUBPROC_ENV_ID = "maesn_sb3:maesn_sb3/PointNav2D-v0"  # "module:id" imports maesn_sb3 in the workers
K = 4


class DictObs(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """PointNav2D with a Dict observation {"position": ...}."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        self.observation_space = spaces.Dict({"position": env.observation_space})

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"position": observation}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CPU is shared: one torch thread is faster for these small nets."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


def skill_env(n_skills: int = K, dict_obs: bool = False) -> gym.Env:
    env = gym.make(ENV_ID)
    return SkillWrapper(DictObs(env) if dict_obs else env, n_skills=n_skills)


def dict_skill_env() -> gym.Env:
    return skill_env(dict_obs=True)


def small_disc(space: spaces.Space, n_skills: int = K, **kwargs) -> SkillDiscriminator:
    kwargs.setdefault("net_arch", (32, 32))
    kwargs.setdefault("seed", 0)
    return SkillDiscriminator(space, n_skills, device="cpu", **kwargs)


def exact_disc(space: spaces.Space, probs: list[float]) -> SkillDiscriminator:
    """A discriminator with q(z | s) = probs for every state (zero last-layer weights, log-prob bias)."""
    disc = small_disc(space, len(probs))
    with th.no_grad():
        disc.net[-1].weight.zero_()
        disc.net[-1].bias.copy_(th.log(th.tensor(probs)))
    return disc


def obs_batch(states: np.ndarray, skills: list[int], n_skills: int = K) -> np.ndarray:
    return np.concatenate([states, np.eye(n_skills, dtype=np.float32)[skills]], axis=1).astype(np.float32)


class Capture(KVWriter):
    def __init__(self) -> None:
        self.keys: set[str] = set()

    def write(self, key_values, key_excluded, step=0) -> None:
        self.keys.update(key_values)


# -- SkillWrapper ---------------------------------------------------------------------------------------
def test_skill_wrapper_box_and_dict_layout() -> None:
    env = skill_env()
    assert env.observation_space.shape == (2 + K,)
    obs, info = env.reset(seed=0, options={"skill": 3})
    np.testing.assert_array_equal(obs, [0, 0, 0, 0, 0, 1])
    assert info["skill"] == 3 and env.skill == 3
    obs, _, _, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
    np.testing.assert_allclose(obs, [0.1, 0, 0, 0, 0, 1], atol=1e-7)
    assert info["skill"] == 3

    denv = skill_env(dict_obs=True)
    assert set(denv.observation_space.spaces) == {"position", "skill"}
    obs, info = denv.reset(seed=0, options={"skill": 1})
    np.testing.assert_array_equal(obs["skill"], [0, 1, 0, 0])
    assert obs["position"].shape == (2,)


def test_skill_sampling_reproducible_from_seed() -> None:
    def skills(seed: int) -> list[int]:
        env = skill_env(n_skills=10)
        first = [env.reset(seed=seed)[1]["skill"]]
        return first + [env.reset()[1]["skill"] for _ in range(199)]

    assert skills(3) == skills(3)
    assert skills(3) != skills(4)
    assert set(skills(3)) == set(range(10))  # uniform prior: every skill appears in 200 draws


def test_vec_env_auto_reset_resamples_skill() -> None:
    venv = make_vec_env(ENV_ID, n_envs=1, seed=0, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": 10})
    venv.reset()
    seen = []
    for _ in range(5 * 50):
        obs, _, dones, infos = venv.step(np.zeros((1, 2), dtype=np.float32))
        if dones[0]:
            terminal = infos[0]["terminal_observation"]
            assert int(terminal[2:].argmax()) == infos[0]["skill"]  # the ending episode's skill
            seen.append(int(obs[0, 2:].argmax()))
    assert len(seen) == 5 and len(set(seen)) > 1


def test_skill_wrapper_bad_input() -> None:
    with pytest.raises(ValueError, match="n_skills"):
        SkillWrapper(gym.make(ENV_ID), n_skills=1)
    with pytest.raises(ValueError, match="n_skills"):
        SkillWrapper(gym.make(ENV_ID), n_skills=True)
    env = skill_env()
    for bad in (4, -1, 1.0, "0"):
        with pytest.raises(ValueError, match=r"options\['skill'\]"):
            env.reset(options={"skill": bad})
    with pytest.raises(TypeError, match="Box or a Dict"):
        SkillWrapper(gym.make("FrozenLake-v1"), n_skills=2)


@pytest.mark.parametrize("dict_obs", [False, True])
def test_skill_wrapper_passes_env_checkers(dict_obs: bool) -> None:
    gym_check_env(skill_env(dict_obs=dict_obs), skip_render_check=True)
    sb3_check_env(skill_env(dict_obs=dict_obs))


# -- SkillDiscriminator -----------------------------------------------------------------------------------
def test_discriminator_strips_one_hot_and_selects_features() -> None:
    space = skill_env().observation_space
    disc = small_disc(space)
    assert disc.net[0].in_features == 2  # the state only
    states = np.array([[0.3, -0.2], [0.3, -0.2]], dtype=np.float32)
    obs = obs_batch(states, [0, 2])
    logits = disc(th.as_tensor(states))
    np.testing.assert_allclose(logits[0].detach(), logits[1].detach())  # same state, same q(. | s)
    lp = disc.log_prob(obs).detach().numpy()
    ref = th.log_softmax(logits, dim=1).detach().numpy()
    np.testing.assert_allclose(lp, [ref[0, 0], ref[1, 2]], rtol=1e-6)
    assert disc.predict(obs)[0] == disc.predict(obs)[1]

    only_y = small_disc(space, features=[1])
    assert only_y.net[0].in_features == 1
    moved_x = obs.copy()
    moved_x[:, 0] += 5.0
    np.testing.assert_allclose(only_y.log_prob(obs).detach(), only_y.log_prob(moved_x).detach())

    dict_disc = small_disc(skill_env(dict_obs=True).observation_space)
    out = dict_disc.log_prob({"position": states, "skill": np.eye(K, dtype=np.float32)[[0, 2]]})
    assert out.shape == (2,)


def test_discriminator_bad_input() -> None:
    space = skill_env().observation_space
    with pytest.raises(ValueError, match="n_skills"):
        SkillDiscriminator(space, 1)
    with pytest.raises(ValueError, match="features"):
        SkillDiscriminator(space, K, features=[2])
    with pytest.raises(ValueError, match="features"):
        SkillDiscriminator(space, K, features=[0, 0])
    with pytest.raises(ValueError, match="observation_space"):
        SkillDiscriminator(spaces.Box(-1, 1, (3,)), K)
    with pytest.raises(TypeError, match="observation_space"):
        SkillDiscriminator(spaces.Discrete(3), K)
    with pytest.raises(ValueError, match="learning_rate"):
        SkillDiscriminator(space, K, learning_rate=0.0)
    disc = small_disc(space)
    normalised = obs_batch(np.zeros((2, 2), np.float32), [0, 1])
    normalised[:, 2:] = (normalised[:, 2:] - 0.25) / 0.43
    with pytest.raises(ValueError, match="not a one-hot"):
        disc.log_prob(normalised)
    with pytest.raises(ValueError, match="shape"):
        disc.log_prob(np.zeros((2, 5), np.float32))


def test_discriminator_update_learns_a_separable_batch() -> None:
    disc = small_disc(skill_env().observation_space, learning_rate=1e-2)
    rng = np.random.default_rng(0)
    skills = rng.integers(K, size=256)
    centres = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.float32)
    obs = obs_batch(centres[skills] + 0.1 * rng.standard_normal((256, 2)).astype(np.float32), list(skills))
    first = disc.update(obs)
    for _ in range(100):
        last = disc.update(obs)
    assert last["loss"] < first["loss"] and disc.accuracy(obs) > 0.95 and disc.n_updates == 101


# -- rewards: prior term, mixing, freshness ------------------------------------------------------------------
PROBS = [0.1, 0.2, 0.3, 0.4]


def test_mix_rewards_exact() -> None:
    np.testing.assert_allclose(mix_rewards(np.array([1.0, -2.0]), np.array([0.5, 3.0]), 0.3, 2.0), [1.3, 5.4])


@pytest.mark.parametrize(
    ("extrinsic_coef", "intrinsic_coef", "include_prior"),
    [(0.0, 1.0, True), (1.0, 0.0, True), (0.5, 2.0, False), (0.25, -1.0, True)],
)
def test_replay_buffer_rewards_exact(
    extrinsic_coef: float, intrinsic_coef: float, include_prior: bool
) -> None:
    space = skill_env().observation_space
    disc = exact_disc(space, PROBS)
    buffer = DIAYNReplayBuffer(
        8,
        space,
        spaces.Box(-1, 1, (2,)),
        device="cpu",
        discriminator=disc,
        extrinsic_coef=extrinsic_coef,
        intrinsic_coef=intrinsic_coef,
        include_prior=include_prior,
        train_discriminator=False,
    )
    skills = [0, 1, 2, 3, 3]
    env_rewards = [1.0, -2.0, 0.5, 3.0, -1.5]
    for i, (skill, reward) in enumerate(zip(skills, env_rewards, strict=True)):
        obs = obs_batch(np.array([[i, 0.0]], np.float32), [skill])
        nxt = obs_batch(np.array([[i, 1.0]], np.float32), [skill])
        buffer.add(obs, nxt, np.zeros((1, 2)), np.array([reward]), np.array([False]), [{}])
    samples = buffer._get_samples(np.arange(5))
    prior = math.log(K) if include_prior else 0.0
    expected = [
        extrinsic_coef * r + intrinsic_coef * (math.log(PROBS[z]) + prior)
        for z, r in zip(skills, env_rewards, strict=True)
    ]
    np.testing.assert_allclose(samples.rewards.numpy().ravel(), expected, rtol=1e-5, atol=1e-6)


def test_rollout_buffer_rewards_exact_and_keep_timeout_bootstrap() -> None:
    space = skill_env().observation_space
    disc = exact_disc(space, PROBS)
    buffer = DIAYNRolloutBuffer(
        3,
        space,
        spaces.Box(-1, 1, (2,)),
        device="cpu",
        n_envs=2,
        discriminator=disc,
        extrinsic_coef=0.5,
        intrinsic_coef=2.0,
        train_discriminator=False,
    )
    buffer.reset()
    skills = np.array([[0, 3], [0, 3], [1, 3]])
    env_rewards = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    bootstrap = np.array([[0.0, 0.0], [7.0, 0.0], [0.0, 0.0]], np.float32)  # a timeout at step 1, env 0
    for t in range(3):
        obs = obs_batch(np.zeros((2, 2), np.float32), list(skills[t]))
        buffer.record_step(obs, env_rewards[t])
        buffer.add(
            obs, np.zeros((2, 2)), env_rewards[t] + bootstrap[t], np.zeros(2), th.zeros(2), th.zeros(2)
        )
    buffer.compute_returns_and_advantage(th.zeros(2), np.zeros(2))
    skill_reward = np.log(np.array(PROBS))[skills] + math.log(K)
    np.testing.assert_allclose(buffer.rewards, 0.5 * env_rewards + bootstrap + 2.0 * skill_reward, rtol=1e-5)


def test_relabelled_rewards_follow_the_discriminator() -> None:
    space = skill_env().observation_space
    disc = small_disc(space, learning_rate=1e-2)
    buffer = DIAYNReplayBuffer(16, space, spaces.Box(-1, 1, (2,)), device="cpu", discriminator=disc)
    rng = np.random.default_rng(0)
    for _ in range(16):
        skill = int(rng.integers(K))
        nxt = obs_batch(rng.standard_normal((1, 2)).astype(np.float32), [skill])
        buffer.add(nxt, nxt, np.zeros((1, 2)), np.array([0.0]), np.array([False]), [{}])
    buffer.train_discriminator = False
    before = buffer._get_samples(np.arange(16)).rewards.numpy().ravel()
    np.testing.assert_allclose(buffer._get_samples(np.arange(16)).rewards.numpy().ravel(), before)
    buffer.train_discriminator = True
    for _ in range(5):
        buffer.sample(16)  # each sample trains the discriminator once on its batch
    assert disc.n_updates == 5
    buffer.train_discriminator = False
    after = buffer._get_samples(np.arange(16))
    assert not np.allclose(after.rewards.numpy().ravel(), before)
    expected = disc.intrinsic_reward(after.next_observations.numpy())
    np.testing.assert_allclose(after.rewards.numpy().ravel(), expected, rtol=1e-6)


def test_buffers_reject_bad_setup() -> None:
    space = skill_env().observation_space
    act = spaces.Box(-1, 1, (2,))
    with pytest.raises(TypeError, match="discriminator"):
        DIAYNReplayBuffer(8, space, act, device="cpu")
    with pytest.raises(ValueError, match="observation_space"):
        DIAYNReplayBuffer(
            8, space, act, device="cpu", discriminator=small_disc(skill_env(n_skills=3).observation_space, 3)
        )
    with pytest.raises(ValueError, match="optimize_memory_usage"):
        DIAYNReplayBuffer(
            8,
            space,
            act,
            device="cpu",
            optimize_memory_usage=True,
            handle_timeout_termination=False,
            discriminator=small_disc(space),
        )
    with pytest.raises(ValueError, match="intrinsic_coef"):
        DIAYNReplayBuffer(
            8, space, act, device="cpu", discriminator=small_disc(space), intrinsic_coef=float("nan")
        )
    with pytest.raises(ValueError, match="discriminator_batch_size"):
        DIAYNRolloutBuffer(
            8, space, act, device="cpu", discriminator=small_disc(space), discriminator_batch_size=0
        )


def test_callback_errors() -> None:
    venv = make_vec_env(ENV_ID, n_envs=1, seed=0, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": K})
    with pytest.raises(TypeError, match="DIAYN buffer"):
        PPO("MlpPolicy", venv, n_steps=32, batch_size=32, device="cpu").learn(32, callback=DIAYNCallback())
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=32,
        batch_size=32,
        device="cpu",
        rollout_buffer_class=DIAYNRolloutBuffer,
        rollout_buffer_kwargs={"discriminator": small_disc(venv.observation_space)},
    )
    with pytest.raises(RuntimeError, match="DIAYNCallback"):
        model.learn(32)


# -- VecNormalize ------------------------------------------------------------------------------------------
def test_skill_vec_normalize_keeps_one_hot() -> None:
    venv = SkillVecNormalize(
        make_vec_env(ENV_ID, n_envs=2, seed=0, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": K})
    )
    assert venv.skill_dims == K
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(60):
        obs, _, _, infos = venv.step(rng.uniform(-1, 1, (2, 2)).astype(np.float32))
        assert np.all(np.isin(obs[:, 2:], [0.0, 1.0])) and np.all(obs[:, 2:].sum(axis=1) == 1)
        raw = venv.get_original_obs()
        np.testing.assert_array_equal(obs[:, 2:], raw[:, 2:])
        assert not np.allclose(obs[:, :2], raw[:, :2])  # the state is normalised
        np.testing.assert_allclose(venv.unnormalize_obs(obs), raw, rtol=1e-4, atol=1e-4)
        for info in infos:
            if "terminal_observation" in info:
                assert np.isin(info["terminal_observation"][2:], [0.0, 1.0]).all()
    # plain VecNormalize would break the one-hot
    plain = VecNormalize(
        make_vec_env(ENV_ID, n_envs=2, seed=0, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": K})
    )
    plain.reset()
    for _ in range(3):
        obs, *_ = plain.step(np.zeros((2, 2), np.float32))
    assert not np.all(np.isin(obs[:, 2:], [0.0, 1.0]))

    dvenv = SkillVecNormalize(DummyVecEnv([dict_skill_env]))
    assert dvenv.norm_obs_keys == ["position"]
    with pytest.raises(ValueError, match="n_skills"):
        SkillVecNormalize(make_vec_env(ENV_ID, n_envs=1), n_skills=None)  # no SkillWrapper: no n_skills
    with pytest.raises(ValueError, match="norm_obs_keys"):
        SkillVecNormalize(DummyVecEnv([dict_skill_env]), norm_obs_keys=["position", "skill"])


def test_skill_vec_normalize_save_load(tmp_path) -> None:
    venv = SkillVecNormalize(
        make_vec_env(ENV_ID, n_envs=1, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": K})
    )
    venv.save(str(tmp_path / "vn.pkl"))
    loaded = VecNormalize.load(
        str(tmp_path / "vn.pkl"),
        make_vec_env(ENV_ID, n_envs=1, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": K}),
    )
    assert isinstance(loaded, SkillVecNormalize) and loaded.skill_dims == K


# -- SAC and PPO train with the wrappers ---------------------------------------------------------------------
def make_venv(vec_env_cls, n_envs: int = 2, dict_obs: bool = False):
    if dict_obs:
        return SkillVecNormalize(vec_env_cls([dict_skill_env] * n_envs))
    return SkillVecNormalize(
        make_vec_env(
            SUBPROC_ENV_ID,
            n_envs=n_envs,
            seed=0,
            vec_env_cls=vec_env_cls,
            wrapper_class=SkillWrapper,
            wrapper_kwargs={"n_skills": K},
        )
    )


def train(algo: str, vec_env_cls, steps: int, dict_obs: bool = False):
    venv = make_venv(vec_env_cls, dict_obs=dict_obs)
    disc = small_disc(venv.observation_space)
    policy = "MultiInputPolicy" if dict_obs else "MlpPolicy"
    small = {"net_arch": [32, 32]}
    if algo == "sac":
        model = SAC(
            policy,
            venv,
            learning_starts=200,
            batch_size=64,
            train_freq=8,
            gradient_steps=2,
            seed=0,
            device="cpu",
            policy_kwargs=small,
            replay_buffer_class=DIAYNDictReplayBuffer if dict_obs else DIAYNReplayBuffer,
            replay_buffer_kwargs={"discriminator": disc, "extrinsic_coef": 0.1},
        )
    else:
        model = PPO(
            policy,
            venv,
            n_steps=256,
            batch_size=128,
            n_epochs=2,
            seed=0,
            device="cpu",
            policy_kwargs=small,
            rollout_buffer_class=DIAYNDictRolloutBuffer if dict_obs else DIAYNRolloutBuffer,
            rollout_buffer_kwargs={"discriminator": disc, "extrinsic_coef": 0.1},
        )
    capture = Capture()
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    model.learn(steps, callback=DIAYNCallback())
    venv.close()
    return model, disc, capture


@pytest.mark.parametrize("algo", ["sac", "ppo"])
@pytest.mark.parametrize("vec_env_cls", [DummyVecEnv, SubprocVecEnv])
def test_sac_and_ppo_train_with_skills(algo: str, vec_env_cls) -> None:
    model, disc, capture = train(algo, vec_env_cls, 2048)
    assert model.num_timesteps >= 2048
    assert disc.n_updates > 0
    assert {
        "diayn/discriminator_loss",
        "diayn/discriminator_accuracy",
        "diayn/intrinsic_reward",
    } <= capture.keys


@pytest.mark.parametrize("algo", ["sac", "ppo"])
def test_dict_observations_train(algo: str) -> None:
    _, disc, _ = train(algo, DummyVecEnv, 1024, dict_obs=True)
    assert disc.n_updates > 0 and disc.state_keys == ["position"]


def test_same_seed_same_run() -> None:
    weights = [list(train("ppo", DummyVecEnv, 512)[1].parameters()) for _ in range(2)]
    for a, b in zip(*weights, strict=True):
        th.testing.assert_close(a, b)


@pytest.mark.parametrize("algo", ["sac", "ppo"])
def test_save_load_keeps_discriminator(algo: str, tmp_path) -> None:
    model, disc, _ = train(algo, DummyVecEnv, 1024)
    buffer = model.replay_buffer if algo == "sac" else model.rollout_buffer
    assert buffer.discriminator is disc
    model.save(tmp_path / "model")
    cls = SAC if algo == "sac" else PPO
    loaded = cls.load(tmp_path / "model", env=make_venv(DummyVecEnv), device="cpu")
    new = (loaded.replay_buffer if algo == "sac" else loaded.rollout_buffer).discriminator
    assert new is not disc and new.n_updates == disc.n_updates > 0
    for a, b in zip(disc.state_dict().values(), new.state_dict().values(), strict=True):
        th.testing.assert_close(a, b)
    assert new.optimizer.state_dict()["state"].keys() == disc.optimizer.state_dict()["state"].keys()
    obs = obs_batch(np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32), [0, 1, 2, 3] * 2)
    np.testing.assert_array_equal(new.intrinsic_reward(obs), disc.intrinsic_reward(obs))
    loaded.learn(512, callback=DIAYNCallback(), reset_num_timesteps=False)  # keeps training it
    assert new.n_updates > disc.n_updates


# -- learning ----------------------------------------------------------------------------------------------
def test_discriminator_accuracy_rises_well_above_chance() -> None:
    """PPO + DIAYN on PointNav2D with 4 skills: accuracy on fresh episodes goes from ~chance to >= 0.7."""
    venv = make_vec_env(ENV_ID, n_envs=4, seed=0, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": K})
    disc = SkillDiscriminator(
        venv.observation_space, K, net_arch=(64, 64), learning_rate=1e-3, device="cpu", seed=0
    )
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=128,
        batch_size=256,
        learning_rate=1e-3,
        ent_coef=0.0,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [64, 64]},
        rollout_buffer_class=DIAYNRolloutBuffer,
        rollout_buffer_kwargs={
            "discriminator": disc,
            "discriminator_epochs": 4,
            "discriminator_batch_size": 128,
        },
    )

    def accuracy() -> float:
        env = skill_env()
        visited = []
        for skill in range(K):
            for episode in range(3):
                obs, _ = env.reset(seed=100 + episode, options={"skill": skill})
                done = False
                while not done:
                    obs, _, terminated, truncated, _ = env.step(model.predict(obs, deterministic=True)[0])
                    visited.append(obs)
                    done = terminated or truncated
        return disc.accuracy(np.array(visited))

    before = accuracy()
    model.learn(16_384, callback=DIAYNCallback())
    after = accuracy()
    print(f"discriminator accuracy before {before:.2f}, after {after:.2f} (chance 0.25)")
    assert before < 0.5 and after >= 0.7, (before, after)


# -- skills as actions ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def low_level() -> SAC:
    return SAC("MlpPolicy", skill_env(), seed=0, device="cpu", policy_kwargs={"net_arch": [16]})


def test_skill_actions_run_the_low_level_policy(low_level: SAC) -> None:
    env = SkillActionWrapper(gym.make(ENV_ID), low_level, skill_steps=15)
    assert (
        env.action_space == spaces.Discrete(K) and env.observation_space == gym.make(ENV_ID).observation_space
    )
    obs, _ = env.reset(seed=0)
    manual = skill_env()
    mobs, _ = manual.reset(seed=0, options={"skill": 2})
    expected = 0.0
    for _ in range(15):
        mobs, reward, *_ = manual.step(low_level.predict(mobs, deterministic=True)[0])
        expected += reward
    obs, total, terminated, truncated, info = env.step(2)
    assert info["skill"] == 2 and info["skill_steps"] == 15 and not (terminated or truncated)
    np.testing.assert_allclose(obs, mobs[:2])
    assert isinstance(total, float) and total == pytest.approx(expected)
    lengths = [env.step(1)[4]["skill_steps"] for _ in range(3)]
    assert lengths == [15, 15, 5]  # horizon 50: the last skill stops at the truncation


def test_skill_actions_checkers_and_errors(low_level: SAC) -> None:
    gym_check_env(SkillActionWrapper(gym.make(ENV_ID), low_level, skill_steps=5), skip_render_check=True)
    sb3_check_env(SkillActionWrapper(gym.make(ENV_ID), low_level, skill_steps=5))
    env = SkillActionWrapper(gym.make(ENV_ID), low_level, skill_steps=5)
    env.reset(seed=0)
    for bad in (K, -1, 0.5):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)
    with pytest.raises(ValueError, match="skill_steps"):
        SkillActionWrapper(gym.make(ENV_ID), low_level, skill_steps=0)
    with pytest.raises(ValueError, match="observation_space"):
        SkillActionWrapper(DictObs(gym.make(ENV_ID)), low_level)
    with pytest.raises(TypeError, match="model"):
        SkillActionWrapper(gym.make(ENV_ID), object())
    with pytest.raises(TypeError, match="obs_normalizer"):
        SkillActionWrapper(gym.make(ENV_ID), low_level, obs_normalizer=1)


def test_any_algorithm_acts_over_skills(low_level: SAC) -> None:
    venv = DummyVecEnv([lambda: SkillActionWrapper(gym.make(ENV_ID), low_level, skill_steps=10)] * 2)
    venv.seed(0)
    high = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, seed=0, device="cpu")
    high.learn(64)
    assert high.num_timesteps == 64
    norm = SkillVecNormalize(
        make_vec_env(ENV_ID, n_envs=1, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": K}),
        training=False,
    )
    env = SkillActionWrapper(gym.make(ENV_ID), low_level, skill_steps=3, obs_normalizer=norm)
    env.reset(seed=0)
    assert env.step(0)[4]["skill_steps"] == 3
