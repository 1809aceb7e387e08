# `make demo` and `make test` create and reuse a local virtual environment in .venv.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build of torch is installed first so the project's torch range is already met
# and pip never pulls a multi-gigabyte CUDA build.
TORCH_CPU ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test test-one-core lint install clean gl docs dist test-metaworld

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_CPU)"
	$(PY) -m pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(PY) -m maesn_sb3.demo

# Headless MuJoCo rendering (the tests set MUJOCO_GL=egl) needs Mesa's EGL: installed once if missing.
gl:
	@ldconfig -p | grep -q libEGL_mesa.so.0 || { \
	  echo "installing Mesa EGL for headless MuJoCo rendering (libegl1 libegl-mesa0 libgl1-mesa-dri)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null ) \
	  || echo "warning: could not install Mesa EGL; MuJoCo rendering tests will fail"; }

test: $(STAMP) gl
	$(PY) -m pytest -m "not metaworld" $(PYTEST_ARGS)

# The determinism tests again on one core (the machine's count must not change a result; `make test`
# runs them on all the cores this process may use).
test-one-core: $(STAMP)
	taskset -c 0 $(PY) -m pytest -p no:cacheprovider -m "determinism and not metaworld" $(PYTEST_ARGS)

# Meta-World pins mujoco==3.3.0 (the main venv has the newest), so its tests run in a second venv made
# the same way (CPU torch first), with a smoke subset showing that the library works on MuJoCo 3.3.
MW_VENV ?= .venv-metaworld
MW_PY := $(MW_VENV)/bin/python
MW_STAMP := $(MW_VENV)/.installed
MW_TESTS ?= tests/test_metaworld.py tests/test_success_modes.py tests/test_tasks.py tests/test_vec_env.py \
	tests/test_mujoco_envs.py tests/test_maesn.py

$(MW_STAMP): pyproject.toml
	test -x $(MW_PY) || $(PYTHON) -m venv $(MW_VENV)
	$(MW_PY) -m pip install --quiet "$(TORCH_CPU)"
	$(MW_PY) -m pip install --quiet -e ".[dev,metaworld]"
	touch $(MW_STAMP)

test-metaworld: $(MW_STAMP) gl
	$(MW_PY) -c "import metaworld, mujoco; print('Meta-World', metaworld.__file__, 'MuJoCo', mujoco.__version__)"
	$(MW_PY) -m pytest -p no:cacheprovider $(MW_TESTS) $(PYTEST_ARGS)

# The docs site (mkdocs-material + mkdocstrings), built into site/ with warnings as errors.
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# A wheel and an sdist in dist/ (python -m build, in the dev extra).
dist: $(STAMP)
	$(PY) -m build --outdir dist .

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) $(MW_VENV) build *.egg-info runs site
