"""The documentation site: built strictly, its API pages show no raw Sphinx roles, ``>>>`` prompts or
private parameters (docs/griffe_sphinx.py renders them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RAW = re.compile(r":(?:class|meth|func|attr|data|mod|obj|exc):`|&gt;&gt;&gt;|_init_setup_model")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs", reason="mkdocs is in the docs extra: pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] is in the docs extra")
    folder = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)]
    result = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def test_no_built_page_shows_a_raw_role_a_prompt_or_a_private_parameter(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert pages
    raw = {str(page.relative_to(site)): RAW.findall(page.read_text(encoding="utf-8")) for page in pages}
    assert not {page: found for page, found in raw.items() if found}


def test_the_api_page_links_roles_and_renders_examples_as_code(site: Path) -> None:
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'href="#maesn_sb3.MAESN.adapt"><code>adapt</code></a>' in api
    assert '<div class="highlight"><pre><span></span><code><span class="kn">from</span>' in api
