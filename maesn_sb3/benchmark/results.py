"""The benchmark's resumable CSV files: read, keep the finished cells, append durably."""

from __future__ import annotations

import csv
import importlib.metadata
import io
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from maesn_sb3.benchmark.config import PACKAGES, Config

# The paper tier's results, committed (CSVs, tables, figures; no models) so a run resumes anywhere.
PAPER_RESULTS = Path("benchmarks/results/paper")


def package_versions() -> dict[str, str]:
    """This process's Python and :data:`~maesn_sb3.benchmark.config.PACKAGES` versions, and ``cpu``: the
    machine, the instruction set of torch's CPU kernels and the processor's model where the system
    names it (e.g. ``x86_64 AVX512 (AMD EPYC)``) (``versions.csv``)."""
    import torch as th

    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    versions["cpu"] = f"{platform.machine()} {th.backends.cpu.get_cpu_capability()}"
    if model := cpu_model():
        versions["cpu"] += f" ({model})"
    return versions


def cpu_model() -> str:
    """The processor's model name (Linux's ``/proc/cpuinfo``, else :func:`platform.processor`; may be empty):
    runs are bit-identical on machines of one model, not always across models with the same packages."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor()


def read_csv(path: Path) -> list[dict[str, Any]]:
    """The complete rows of a CSV; a torn last line (a kill during its write) is left out."""
    if not path.exists():
        return []
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.DictReader(text.splitlines()))
    return [r for r in rows if None not in r and None not in r.values()]


def cell_rows(rows: list[dict[str, Any]], config: Config) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The rows of every finished cell: those with all ``n_test_tasks x (adapt_iterations + 1)`` rows."""
    cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["method"], int(r["seed"])), []).append(r)
    expected = config.n_test_tasks * (config.adapt_iterations + 1)
    return {key: cell for key, cell in cells.items() if len(cell) == expected}


def repair_csv(path: Path, keep: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    """Rewrite ``path`` with only ``keep`` (atomically: a temporary file, then a rename)."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(keep)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def append_csv(path: Path, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    """Append ``rows`` (and the header to a new file) with one ``write`` on an ``O_APPEND`` descriptor,
    so a kill leaves either none of them or a torn tail that :func:`read_csv` drops."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size == 0:
            writer.writeheader()
        writer.writerows(rows)
        data = buffer.getvalue().encode()
        written = os.write(fd, data)
        if written != len(data):  # a full disk: say so rather than leave a silent half row
            raise OSError(f"wrote {written} of {len(data)} bytes to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_output(output: Path) -> str | None:
    """Why results could not be written to ``output`` (None when they can)."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as error:
        return f"--output {output} is not a writable folder: {error.strerror or error}"
    return None
