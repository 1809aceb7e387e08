"""Skills combined with MAESN: SkillActionVecEnv (MAESN over skills) and VecSkillReward (mixed reward)."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from maesn_sb3 import MAESN, make_meta_vec_env
from maesn_sb3.skills import SkillActionVecEnv, SkillRewardCallback, SkillVecNormalize, VecSkillReward
from wrappers import LatentWrapper, SkillActionWrapper, SkillDiscriminator, SkillWrapper

ENV_ID = "maesn_sb3/PointNav2D-v0"
SUBPROC_ENV_ID = "maesn_sb3:maesn_sb3/PointNav2D-v0"  # "module:id" imports maesn_sb3 in the workers
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def low_model() -> SAC:
    """An (untrained) skill-conditioned SAC: its deterministic actions differ per skill and state."""
    env = SkillWrapper(gym.make(ENV_ID), n_skills=4)
    return SAC("MlpPolicy", env, policy_kwargs={"net_arch": [16, 16]}, seed=0, device="cpu")


class DictObs(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """PointNav2D with a Dict observation {"position": ...}."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        self.observation_space = gym.spaces.Dict({"position": env.observation_space})

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"position": observation}


def skill_space(n_skills: int = 4) -> gym.Space:
    return SkillWrapper(gym.make(ENV_ID), n_skills=n_skills).observation_space


def latent_skill_wrapper(env: gym.Env) -> gym.Env:
    return LatentWrapper(SkillWrapper(env, n_skills=4), latent_dim=2)


# -- SkillActionVecEnv ------------------------------------------------------------------------------
@pytest.mark.parametrize("normalized", [False, True])
def test_skill_action_vec_env_matches_the_per_env_wrapper(low_model: SAC, normalized: bool) -> None:
    """Batched low level == SkillActionWrapper env by env, with a latent outside, across an episode end."""
    n_envs, skill_steps = 3, 7  # 50 = 7 * 7 + 1: the 8th skill action runs 1 step and ends the episode
    normalizer = None
    if normalized:  # the low level trained on normalised observations: both apply the same statistics
        normalizer = SkillVecNormalize(
            make_vec_env(ENV_ID, n_envs=1, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": 4})
        )
        normalizer.obs_rms.mean[:2], normalizer.obs_rms.var[:2] = [0.5, 0.2], [0.3, 2.0]
    venv = make_vec_env(
        ENV_ID, n_envs=n_envs, seed=0, wrapper_class=LatentWrapper, wrapper_kwargs={"latent_dim": 2},
        vec_env_cls=SkillActionVecEnv,
        vec_env_kwargs={"model": low_model, "skill_steps": skill_steps, "obs_normalizer": normalizer},
    )  # fmt: skip
    assert venv.action_space == gym.spaces.Discrete(4)
    assert venv.observation_space.shape == (4,)  # x, y and the latent: the high level sees the latent
    refs = [
        LatentWrapper(
            SkillActionWrapper(gym.make(ENV_ID), low_model, skill_steps, obs_normalizer=normalizer), 2
        )
        for _ in range(3)
    ]
    obs = venv.reset()
    ref_obs = np.array([ref.reset(seed=i)[0] for i, ref in enumerate(refs)])
    np.testing.assert_allclose(obs, ref_obs)
    rng = np.random.default_rng(0)
    for step in range(10):
        skills = rng.integers(4, size=n_envs)
        obs, rewards, dones, infos = venv.step(skills)
        for i, ref in enumerate(refs):
            ref_o, ref_r, term, trunc, ref_info = ref.step(int(skills[i]))
            assert infos[i]["skill"] == skills[i]
            assert infos[i]["skill_steps"] == ref_info["skill_steps"] == (1 if step == 7 else skill_steps)
            assert rewards[i] == pytest.approx(ref_r, abs=1e-4)  # the sum of the env rewards
            assert dones[i] == (term or trunc) == (step == 7)
            if dones[i]:
                assert infos[i]["TimeLimit.truncated"]
                np.testing.assert_allclose(infos[i]["terminal_observation"], ref_o, atol=1e-5)
                ref_o, _ = ref.reset()
            np.testing.assert_allclose(obs[i], ref_o, atol=1e-5)
    # the Monitors count env steps: 50 for the finished episodes, 2 skill actions of 7 since
    assert venv.env_method("get_total_steps") == [50 + 14] * n_envs


def test_skill_action_vec_env_dict_observations() -> None:
    low = SAC("MultiInputPolicy", SkillWrapper(DictObs(gym.make(ENV_ID)), n_skills=3), seed=0, device="cpu")
    venv = SkillActionVecEnv(
        [lambda: LatentWrapper(DictObs(gym.make(ENV_ID)), latent_dim=2) for _ in range(2)], low, skill_steps=5
    )
    ref = LatentWrapper(SkillActionWrapper(DictObs(gym.make(ENV_ID)), low, skill_steps=5), latent_dim=2)
    venv.seed(3)
    obs = venv.reset()
    ref_obs, _ = ref.reset(seed=3)
    np.testing.assert_allclose(obs["latent"][0], ref_obs["latent"])
    for skill in (2, 0, 1):
        obs, rewards, _, infos = venv.step(np.array([skill, 0]))
        ref_obs, ref_reward, *_ = ref.step(skill)
        assert infos[0]["skill_steps"] == 5 and set(obs) == {"position", "latent"}
        np.testing.assert_allclose(obs["position"][0], ref_obs["position"], atol=1e-5)
        assert rewards[0] == pytest.approx(ref_reward, abs=1e-4)


def test_skill_action_vec_env_sums_reward_like_infos(low_model: SAC) -> None:
    fns = [lambda: gym.make(ENV_ID, reward_type="dense")]
    venv = SkillActionVecEnv(fns, low_model, skill_steps=10, sum_info_keys=("distance",))
    plain = SkillActionVecEnv(fns, low_model, skill_steps=10)
    venv.reset()
    plain.reset()
    for skill in (0, 3):
        _, rewards, _, infos = venv.step(np.array([skill]))
        _, _, _, plain_infos = plain.step(np.array([skill]))
        # the dense reward is -distance per step, so the summed distance is -reward
        assert infos[0]["distance"] == pytest.approx(-rewards[0], rel=1e-5)
        # without sum_info_keys, the info holds the last step's distance only
        assert plain_infos[0]["distance"] < infos[0]["distance"] / 5
    missing = SkillActionVecEnv(fns, low_model, sum_info_keys=["sparse"])
    missing.reset()
    with pytest.raises(KeyError, match="sparse"):
        missing.step(np.array([0]))
    with pytest.raises(TypeError, match="sum_info_keys"):
        SkillActionVecEnv(fns, low_model, sum_info_keys="distance")


def test_skill_action_vec_env_bad_inputs(low_model: SAC) -> None:
    fns = [lambda: gym.make(ENV_ID)]
    with pytest.raises(ValueError, match="skill_steps"):
        SkillActionVecEnv(fns, low_model, skill_steps=0)
    with pytest.raises(TypeError, match="model"):
        SkillActionVecEnv(fns, object())
    no_skill = SAC("MlpPolicy", gym.make(ENV_ID), policy_kwargs={"net_arch": [8]}, device="cpu")
    with pytest.raises(ValueError, match=r"model\.observation_space"):
        SkillActionVecEnv(fns, no_skill)
    venv = SkillActionVecEnv(fns, low_model)
    venv.reset()
    with pytest.raises(ValueError, match=r"skills in \[0, 4\)"):
        venv.step(np.array([4]))
    with pytest.raises(ValueError, match="actions must be 1 skill indices"):
        venv.step(np.array([[0.5, 0.5]]))


def test_maesn_over_skills_learns_and_adapts(low_model: SAC) -> None:
    env = make_meta_vec_env(
        ENV_ID, n_tasks=2, envs_per_task=3, seed=0, latent_dim=2, vec_env_cls=SkillActionVecEnv,
        vec_env_kwargs={"model": low_model, "skill_steps": 10},
    )  # fmt: skip
    model = MAESN("MlpPolicy", env, n_train_tasks=4, seed=0).learn(60)
    assert model.action_space == gym.spaces.Discrete(4)
    assert model.num_timesteps == 60  # 2 phases x 6 episodes x 5 skill actions
    assert sum(env.env_method("get_total_steps")) == 600  # env steps
    test_env = make_meta_vec_env(
        ENV_ID, n_tasks=2, envs_per_task=2, seed=1, latent_dim=2, env_kwargs={"reward_type": "dense"},
        vec_env_cls=SkillActionVecEnv, vec_env_kwargs={"model": low_model, "skill_steps": 10},
    )  # fmt: skip
    result = model.adapt(test_env, n_iterations=2, evaluate=False)
    assert result.success.shape == (3, 2)
    np.testing.assert_array_equal(result.env_steps, [10, 20, 30])  # per task slot
    assert not np.allclose(result.latent_means[-1], 0.0)  # the dense reward moved the latent


# -- VecSkillReward -----------------------------------------------------------------------------------
def hand_intrinsic(disc: SkillDiscriminator, positions: np.ndarray, skills: np.ndarray) -> np.ndarray:
    """log q(z | x, y) from the discriminator's network, computed by hand."""
    with th.no_grad():
        logits = disc.net(th.as_tensor(positions, dtype=th.float32)).numpy().astype(np.float64)
    log_q = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return log_q[np.arange(len(skills)), skills]


@pytest.mark.parametrize("include_prior", [True, False])
def test_mixed_reward_is_exact_and_strips_the_latent(include_prior: bool) -> None:
    venv = make_vec_env(ENV_ID, n_envs=3, seed=0, wrapper_class=latent_skill_wrapper)
    assert venv.observation_space.shape == (2 + 4 + 2,)  # x, y, one-hot, latent
    disc = SkillDiscriminator(skill_space(), 4, net_arch=(16,), seed=0)
    wrapped = VecSkillReward(
        venv, disc, extrinsic_coef=0.5, intrinsic_coef=2.0, include_prior=include_prior,
        train_discriminator=False,
    )  # fmt: skip
    assert wrapped.latent_dim == 2
    obs = wrapped.reset()
    rng = np.random.default_rng(0)
    for step in range(50):
        obs, rewards, dones, infos = wrapped.step(rng.uniform(-1, 1, size=(3, 2)).astype(np.float32))
        next_obs = np.array(
            [
                info["terminal_observation"] if done else o
                for info, o, done in zip(infos, obs, dones, strict=True)
            ]
        )
        assert dones.all() == (step == 49)
        extrinsic = np.array([-info["distance"] for info in infos])  # the dense reward
        intrinsic = hand_intrinsic(disc, next_obs[:, :2], next_obs[:, 2:6].argmax(1))
        intrinsic += math.log(4) if include_prior else 0.0
        np.testing.assert_allclose([info["extrinsic_reward"] for info in infos], extrinsic, rtol=1e-6)
        np.testing.assert_allclose([info["intrinsic_reward"] for info in infos], intrinsic, rtol=1e-5)
        np.testing.assert_allclose(rewards, 0.5 * extrinsic + 2.0 * intrinsic, rtol=1e-5, atol=1e-6)
    # the discriminator sees the observation without the latent
    stripped = disc.intrinsic_reward(next_obs[:, :-2], include_prior)
    np.testing.assert_allclose([info["intrinsic_reward"] for info in infos], stripped, rtol=1e-6)


def test_mixed_reward_dict_observations_drop_the_latent_key() -> None:
    def make() -> gym.Env:
        return LatentWrapper(SkillWrapper(DictObs(gym.make(ENV_ID)), n_skills=4), latent_dim=2)

    venv = DummyVecEnv([make, make])
    disc = SkillDiscriminator(SkillWrapper(DictObs(gym.make(ENV_ID)), 4).observation_space, 4, net_arch=(8,))
    wrapped = VecSkillReward(venv, disc, extrinsic_coef=0.0, train_freq=5, discriminator_batch_size=10)
    before = pickle.loads(pickle.dumps(disc))  # the discriminator of steps 1 to 5
    wrapped.reset()
    for _ in range(5):
        obs, rewards, _, _ = wrapped.step(np.full((2, 2), 0.5, dtype=np.float32))
    state = {k: v for k, v in obs.items() if k != "latent"}
    np.testing.assert_allclose(rewards, before.intrinsic_reward(state), rtol=1e-6)
    assert disc.n_updates == 1  # trained after step 5's rewards, on its 10 transitions
    assert not np.allclose(disc.intrinsic_reward(state), rewards)


def test_discriminator_trains_at_reset_and_rewards_follow_it() -> None:
    venv = make_vec_env(ENV_ID, n_envs=4, seed=0, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": 4})
    disc = SkillDiscriminator(venv.observation_space, 4, net_arch=(16,), learning_rate=1e-2, seed=0)
    wrapped = VecSkillReward(venv, disc, extrinsic_coef=0.0, discriminator_batch_size=50, seed=0)

    def episode() -> np.ndarray:
        wrapped.seed(0)
        wrapped.reset()
        actions = np.random.default_rng(1)
        out = [wrapped.step(actions.uniform(-1, 1, size=(4, 2)).astype(np.float32))[1] for _ in range(50)]
        return np.array(out)

    first = episode()
    assert disc.n_updates == 0  # nothing trains during the episode: one discriminator per batch
    second = episode()  # the reset trained it on the 200 transitions: 4 minibatches of 50
    assert disc.n_updates == 4
    assert not np.allclose(first, second)  # same states, fresh rewards
    stats = wrapped.pop_stats()
    assert set(stats) == {"intrinsic_reward", "loss", "accuracy"}
    assert wrapped.pop_stats() == {}


def test_vec_skill_reward_bad_inputs() -> None:
    venv = make_vec_env(ENV_ID, n_envs=1, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": 4})
    disc = SkillDiscriminator(venv.observation_space, 4, net_arch=(8,))
    with pytest.raises(TypeError, match="discriminator"):
        VecSkillReward(venv, object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="venv"):
        VecSkillReward(gym.make(ENV_ID), disc)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"discriminator\.observation_space"):
        VecSkillReward(venv, SkillDiscriminator(skill_space(5), 5, net_arch=(8,)))
    with pytest.raises(ValueError, match="intrinsic_coef"):
        VecSkillReward(venv, disc, intrinsic_coef=float("nan"))
    with pytest.raises(ValueError, match="train_freq"):
        VecSkillReward(venv, disc, train_freq=0)
    with pytest.raises(ValueError, match="discriminator_batch_size"):
        VecSkillReward(venv, disc, discriminator_batch_size=True)
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=16, device="cpu")
    with pytest.raises(TypeError, match="VecSkillReward"):
        model.learn(16, callback=SkillRewardCallback())


@pytest.mark.parametrize("vec_env_cls", [DummyVecEnv, SubprocVecEnv])
def test_ppo_with_vec_skill_reward_logs_the_discriminator(vec_env_cls: type, tmp_path: Path) -> None:
    venv = make_vec_env(
        SUBPROC_ENV_ID, n_envs=2, seed=0, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": 4},
        vec_env_cls=vec_env_cls,
    )  # fmt: skip
    disc = SkillDiscriminator(venv.observation_space, 4, net_arch=(16,), seed=0)
    wrapped = VecSkillReward(venv, disc, intrinsic_coef=0.5, train_freq=64, discriminator_batch_size=64)
    model = PPO("MlpPolicy", wrapped, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(256, callback=SkillRewardCallback())
    assert disc.n_updates == 2 * 2  # 128 vec steps: every 64, 128 transitions in minibatches of 64
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"diayn/discriminator_loss", "diayn/discriminator_accuracy", "diayn/intrinsic_reward"} <= set(
        header
    )
    wrapped.close()


def test_vec_skill_reward_pickles_with_its_discriminator() -> None:
    venv = make_vec_env(ENV_ID, n_envs=2, seed=0, wrapper_class=SkillWrapper, wrapper_kwargs={"n_skills": 4})
    disc = SkillDiscriminator(venv.observation_space, 4, net_arch=(8,), seed=0)
    wrapped = VecSkillReward(venv, disc, discriminator_batch_size=20)
    wrapped.reset()
    for _ in range(10):
        wrapped.step(np.ones((2, 2), dtype=np.float32))
    wrapped.reset()
    restored = pickle.loads(pickle.dumps(wrapped))
    obs = np.concatenate([np.full((4, 2), 0.3, dtype=np.float32), np.eye(4, dtype=np.float32)], axis=1)
    assert restored.discriminator.n_updates == disc.n_updates == 1
    np.testing.assert_array_equal(restored.discriminator.intrinsic_reward(obs), disc.intrinsic_reward(obs))


def test_maesn_with_mixed_reward_in_subprocesses() -> None:
    disc = SkillDiscriminator(skill_space(), 4, net_arch=(16,), seed=0)
    env = make_meta_vec_env(
        ENV_ID, n_tasks=2, envs_per_task=2, seed=0, latent_dim=2, wrapper_class=SkillWrapper,
        wrapper_kwargs={"n_skills": 4},
        vec_env_cls=lambda fns: VecSkillReward(SubprocVecEnv(fns), disc, intrinsic_coef=0.1),
    )  # fmt: skip
    model = MAESN("MlpPolicy", env, n_train_tasks=4, seed=0).learn(800)  # 2 meta-iterations, 4 batches
    assert model.num_timesteps == 800
    assert disc.n_updates == 3  # at the reset before each batch but the first: 200 transitions, 1 minibatch
    env.close()


def test_maesn_skill_reward_discriminator_accuracy_rises() -> None:
    """Learning test: MAESN on the skill reward alone (4 skills) makes the skills distinguishable."""
    disc = SkillDiscriminator(
        skill_space(), 4, features=[0, 1], net_arch=(32, 32), learning_rate=3e-3, seed=0
    )
    env = make_meta_vec_env(
        ENV_ID, n_tasks=4, envs_per_task=10, seed=0, latent_dim=2, wrapper_class=SkillWrapper,
        wrapper_kwargs={"n_skills": 4},
        vec_env_cls=lambda fns: VecSkillReward(
            DummyVecEnv(fns), disc, extrinsic_coef=0.0, discriminator_epochs=2, seed=0
        ),
    )  # fmt: skip
    model = MAESN("MlpPolicy", env, n_train_tasks=8, seed=0)

    def accuracy() -> float:
        probe = make_meta_vec_env(
            ENV_ID, n_tasks=1, envs_per_task=40, seed=5, latent_dim=2, wrapper_class=SkillWrapper,
            wrapper_kwargs={"n_skills": 4},
        )  # fmt: skip
        obs, states = probe.reset(), []
        for _ in range(50):
            obs, _, _, infos = probe.step(model.predict(obs)[0])
            states.append(
                np.array([info.get("terminal_observation", o) for info, o in zip(infos, obs, strict=True)])
            )
        return disc.accuracy(np.concatenate(states)[:, :-2])

    model.learn(8_000)
    before = accuracy()
    model.learn(96_000, reset_num_timesteps=False)
    after = accuracy()
    print(f"discriminator accuracy on the policy's states: {before:.2f} -> {after:.2f} (chance 0.25)")
    assert after >= 0.7 and after > before + 0.2


# -- examples -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "script, flags",
    [
        ("maesn_over_skills.py", ["--diayn-timesteps", "600", "--skills", "4"]),
        ("maesn_mixed_reward.py", []),
    ],
)
def test_examples_run_with_tiny_budgets(script: str, flags: list[str]) -> None:
    tiny = [
        "--timesteps",
        "400",
        "--n-tasks",
        "2",
        "--episodes",
        "2",
        "--test-tasks",
        "2",
        "--adapt-iterations",
        "1",
    ]
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *tiny, *flags],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "adaptation to 2 held-out goals" in out.stdout
    if script == "maesn_over_skills.py":  # --episodes sets the adaptation's episodes too
        assert "2 episodes per iteration" in out.stdout
