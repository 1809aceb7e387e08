"""mkdocs hook: serve the paper tier's committed figures (``benchmarks/results/paper/<family>/*.png``)
at ``paper/<family>/<name>.png``, so the comparison page shows the figures the benchmark wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "paper"


def on_files(files: Files, config: Any) -> Files:
    for figure in sorted(RESULTS.glob("*/*.png")):
        uri = f"paper/{figure.parent.name}/{figure.name}"
        files.append(File.generated(config, uri, abs_src_path=str(figure)))
    return files
