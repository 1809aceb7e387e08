"""The documentation site: built strictly, its API pages show no raw Sphinx roles, reST ``::``, ``>>>``
prompts or private parameters (docs/griffe_sphinx.py renders them) and every public method of the
algorithms; the paper page captions every table and shows every figure its text names (the conventions
in docs/contributing.md); code blocks fit the text column; the site knows its address."""

from __future__ import annotations

import html
import inspect
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RAW = re.compile(r":(?:class|meth|func|attr|data|mod|obj|exc):`|&gt;&gt;&gt;|_init_setup_model")
RAW_ROLE = re.compile(r":[a-z]+:(?:`|<code>)")  # any Sphinx role left as text, rendered or not
LITERAL_MARKER = re.compile(r"\S*::(?=\s|$)")  # reST's "text::" before a literal block (not C++'s a::b)
NOT_TEXT = re.compile(r"<(pre|script|style)\b.*?</\1>|<!--.*?-->", re.S)
CODE = re.compile(r"<code\b.*?</code>", re.S)
TAG = re.compile(r"<[^>]+>")
CODE_WIDTH = 80  # characters of a code line that fit the text column at 1280 px (docs/screenshots.py)


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


def _text(page: str, code: bool = True) -> str:
    """A page's text with its inline code (or without: ``code=False``), without code blocks, scripts,
    styles, comments or tags."""
    page = NOT_TEXT.sub(" ", page)
    return html.unescape(TAG.sub(" ", page if code else CODE.sub(" ", page)))


def test_no_built_page_shows_a_raw_role_a_literal_marker_a_prompt_or_a_private_parameter(site: Path) -> None:
    found = {}
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        raw = RAW.findall(text) + RAW_ROLE.findall(text) + LITERAL_MARKER.findall(_text(text, code=False))
        if raw:
            found[str(page.relative_to(site))] = raw
    assert not found


def test_the_api_page_links_roles_and_renders_examples_as_code(site: Path) -> None:
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'href="#maesn_sb3.MAESN.adapt"><code>adapt</code></a>' in api
    assert '<div class="highlight"><pre><span></span><code><span class="kn">from</span>' in api
    zoo = api[api.index('id="maesn_sb3.zoo"') :]
    assert "<code>python -m maesn_sb3.zoo --algo maesn" in zoo  # its reST literal block, as code


def _public_methods(cls: type) -> dict[str, list[str]]:
    """``cls``'s public methods that maesn_sb3 defines -> the API page's anchors that may document each
    (on ``cls`` or on the class that defines it). An override of an SB3 method without a docstring of
    its own is left to SB3's documentation."""
    import maesn_sb3

    methods: dict[str, list[str]] = {}
    ours = [klass for klass in cls.__mro__ if klass.__module__.startswith("maesn_sb3")]
    for klass in ours:
        for name, member in vars(klass).items():
            function = getattr(member, "__func__", member)
            if name.startswith("_") or not inspect.isfunction(function):
                continue
            if not function.__doc__ and any(name in vars(base) for base in cls.__mro__ if base not in ours):
                continue
            exported = getattr(maesn_sb3, klass.__name__, None) is klass
            path = f"maesn_sb3.{klass.__name__}" if exported else f"{klass.__module__}.{klass.__qualname__}"
            methods.setdefault(name, [f"maesn_sb3.{cls.__name__}.{name}"]).append(f"{path}.{name}")
    return methods


def test_the_api_page_documents_every_public_method_of_the_algorithms(site: Path) -> None:
    from stable_baselines3.common.base_class import BaseAlgorithm

    import maesn_sb3

    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    anchors = set(re.findall(r'id="([\w.]+)"', api))
    algorithms = [getattr(maesn_sb3, name) for name in maesn_sb3.__all__]
    algorithms = [cls for cls in algorithms if isinstance(cls, type) and issubclass(cls, BaseAlgorithm)]
    assert {cls.__name__ for cls in algorithms} >= {"MAESN", "LSBaseline", "MAML", "RL2", "MultiTaskPPO"}
    missing = [
        f"{cls.__name__}.{name}"
        for cls in algorithms
        for name, ids in _public_methods(cls).items()
        if not anchors.intersection(ids)
    ]
    assert not missing
    assert {"maesn_sb3.MAESN.adapt_latents", "maesn_sb3.MAML.adapt_parameters"} <= anchors


class _Figures(HTMLParser):
    """Tables outside a captioned figure, the figures' captions, and the images."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[dict] = []  # the figures open around the current position
        self.uncaptioned = 0
        self.captions: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "figure":
            self.open.append({"tables": 0, "caption": None})
        elif tag == "table":
            if self.open:
                self.open[-1]["tables"] += 1
            else:
                self.uncaptioned += 1
        elif tag == "figcaption" and self.open:
            self.open[-1]["caption"] = ""
        elif tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1]["caption"] is not None:
            self.open[-1]["caption"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure" and self.open:
            figure = self.open.pop()
            if figure["tables"]:
                if figure["caption"] is None:
                    self.uncaptioned += figure["tables"]
                else:
                    self.captions.append(" ".join(figure["caption"].split()))


def _paper(site: Path) -> tuple[str, _Figures]:
    page = (site / "paper" / "index.html").read_text(encoding="utf-8")
    figures = _Figures()
    figures.feed(page)
    return page, figures


def test_every_table_on_the_paper_page_has_a_caption_naming_its_results_folder(site: Path) -> None:
    page, figures = _paper(site)
    assert page.count("<table") >= 8
    assert figures.uncaptioned == 0
    assert [caption for caption in figures.captions if "benchmarks/results/paper/" not in caption] == []


def test_the_paper_page_shows_every_figure_its_text_names(site: Path) -> None:
    """A PNG's name in the text (``<seed>`` standing for any seed) names that figure in every folder
    whose figures the page shows: a folder shown is shown whole."""
    page, figures = _paper(site)
    names = set(re.findall(r"[\w<>-]+\.png", _text(page)))
    named = [re.compile(re.sub(r"<\w+>", r"\\d+", re.escape(name))) for name in names]
    assert any(pattern.fullmatch("exploration_maesn_seed2.png") for pattern in named)
    shown = {(site / "paper" / src).resolve() for src in figures.images if src.endswith(".png")}
    assert all(path.is_file() for path in shown)
    folders = {path.parent for path in shown}
    assert len(folders) >= 3
    required = {
        path.resolve()
        for folder in folders
        for path in folder.glob("*.png")
        if any(pattern.fullmatch(path.name) for pattern in named)
    }
    assert sorted(str(path.relative_to(site)) for path in required - shown) == []


def test_the_site_knows_its_address(site: Path) -> None:
    sitemap = (site / "sitemap.xml").read_text(encoding="utf-8")
    locations = re.findall(r"<loc>(.*?)</loc>", sitemap)
    assert len(locations) >= 20 and all(loc.startswith("https://") for loc in locations)
    not_found = (site / "404.html").read_text(encoding="utf-8")
    assert re.findall(r'(?:href|src)="/(?:assets|stylesheets)/', not_found) == []


def test_code_blocks_in_the_pages_fit_the_text_column() -> None:
    long = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        inside = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                inside = not inside
            elif inside and len(line) > CODE_WIDTH:
                long.append(f"{page.relative_to(ROOT)}:{number}")
    assert long == []


def test_the_architecture_page_lists_every_private_sb3_name_the_package_uses(monkeypatch) -> None:
    """docs/architecture.md names each private SB3 name in use (counted by tests/_private_names.py), and
    its count; a new one must be listed with its reason."""
    import runpy

    monkeypatch.chdir(ROOT)
    count = runpy.run_path(str(ROOT / "tests" / "_private_names.py"))["used_private_names"]
    used = count(["maesn_sb3", "wrappers"])
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = page.split("## Stable-Baselines3's private names", 1)[1].split("\nGone in", 1)[0]
    assert sorted(name for name in used if f"`{name}`" not in section) == []
    assert f"uses {len(used)} private (underscore) names" in section
