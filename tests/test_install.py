"""The project installed alone into a fresh virtual environment makes every env it registers.

Building the environment takes a minute or two (torch's CPU wheel, then the project and its
dependencies), so it runs in CI (``CI=true``, as ``.ci/run`` sets) or with ``MAESN_TEST_INSTALL=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_CPU = os.environ.get("TORCH_CPU", "torch==2.13.0")  # the Makefile's CPU build, installed first

MAKE_ALL = """
import gymnasium as gym
import maesn_sb3

ids = sorted(env_id for env_id in gym.registry if env_id.startswith("maesn_sb3/"))
assert set(maesn_sb3.list_envs()) <= set(ids), (sorted(maesn_sb3.list_envs()), ids)
for env_id in ids:
    env = gym.make(env_id)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()
print("made", len(ids), "envs from", maesn_sb3.__file__)
"""


@pytest.mark.skipif(
    os.environ.get("CI") != "true" and os.environ.get("MAESN_TEST_INSTALL") != "1",
    reason="builds a fresh virtual environment (1-2 minutes): runs in CI (CI=true) or with "
    "MAESN_TEST_INSTALL=1",
)
def test_the_project_alone_in_a_fresh_venv_makes_every_registered_env(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ behind
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", "__pycache__", "results"),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = [python, "-m", "pip", "install", "--quiet"]
    subprocess.run([*install, TORCH_CPU], check=True, timeout=600)
    subprocess.run([*install, str(source)], check=True, timeout=600)
    done = subprocess.run(
        [python, "-c", MAKE_ALL],
        cwd=tmp_path,  # not the checkout: the installed package is imported
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert str(venv) in done.stdout
    # the benchmark ships in the package: `maesn-sb3 benchmark` runs without a source checkout
    bench = subprocess.run(
        [str(venv / "bin" / "maesn-sb3"), "benchmark", "--", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bench.returncode == 0 and "--tier" in bench.stdout, bench.stderr[-3000:]


QUICKSTART_TINY = ["--timesteps", "1000", "--tasks-per-iteration", "2", "--episodes", "4",
                   "--test-tasks", "2", "--adapt-iterations", "1"]  # fmt: skip


@pytest.mark.skipif(
    os.environ.get("CI") != "true" and os.environ.get("MAESN_TEST_INSTALL") != "1",
    reason="builds a wheel and an sdist (python -m build) and a fresh virtual environment (1-2 minutes): "
    "runs in CI (CI=true) or with MAESN_TEST_INSTALL=1",
)
def test_the_built_wheel_installs_in_a_fresh_venv_and_runs_the_quickstart(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "results"
        ),
    )
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)], check=True, timeout=600
    )
    wheels, sdists = sorted(dist.glob("maesn_sb3-*.whl")), sorted(dist.glob("maesn_sb3-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(dist.iterdir())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = [python, "-m", "pip", "install", "--quiet"]
    subprocess.run([*install, TORCH_CPU], check=True, timeout=600)
    subprocess.run([*install, str(wheels[0])], check=True, timeout=600)
    done = subprocess.run(
        [python, str(source / "examples" / "quickstart.py"), *QUICKSTART_TINY],
        cwd=tmp_path,  # not the checkout: the installed wheel is imported
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "held-out goal 0 with its adapted mean latent" in done.stdout
