"""Checkpoints of a cell's meta-training, so that a stopped cell continues where it stopped.

A checkpoint is one file, ``<output>/checkpoints/<method>_seed<seed>_<steps>.ckpt``: a zip of the model
(SB3's save, which carries the random states of torch, the sub-envs and the task sampler) and
``checkpoint.json`` (the run's config, the cell, its meta-training progress and the model's SHA-256).
It is written to a temporary file, flushed to disk and renamed, so a write that is killed leaves the
previous checkpoint intact; the newest :data:`KEEP` are kept, and a damaged one (a torn or truncated
file, a bad CRC or hash) is passed over, with a warning, for the one before it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import signal
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: the methods whose meta-training is checkpointed: the meta-algorithms, whose save/load then
#: ``learn(..., reset_num_timesteps=False)`` continues exactly (the others run a cell all or nothing)
CHECKPOINTED = ("maesn", "lsbaseline", "maml")
#: checkpoints kept per cell (the newest first): a damaged newest one falls back to the one before
KEEP = 2
FORMAT = 1
_NAME = re.compile(r"^(?P<method>[a-z0-9]+)_seed(?P<seed>\d+)_(?P<steps>\d+)\.ckpt$")


class CellInterrupted(Exception):
    """A cell stopped by SIGTERM: after checkpointing ``steps`` env steps of meta-training, or with no
    checkpoint (``steps`` None: it had not begun, or its method runs all or nothing)."""

    def __init__(self, method: str, seed: int, steps: int | None = None) -> None:
        super().__init__(method, seed, steps)
        self.method, self.seed, self.steps = method, seed, steps

    def __str__(self) -> str:
        if self.steps is None:
            return f"{self.method} seed {self.seed}: stopped by SIGTERM, no checkpoint (it starts afresh)"
        return f"{self.method} seed {self.seed}: stopped by SIGTERM, checkpointed at {self.steps:,} steps"


class TornCheckpoint(Exception):
    """A checkpoint file that cannot be read back whole."""


# -- SIGTERM: finish the meta-iteration, checkpoint, stop --------------------------------------------
_stop = threading.Event()
_stop_at_once: tuple[str, int] | None = None  # the cell (method, seed) that a SIGTERM stops at once


def request_stop(signum: int = signal.SIGTERM, frame: Any = None) -> None:
    """The SIGTERM handler of a cell's process: a checkpointed cell checkpoints after its current
    meta-iteration and raises :class:`CellInterrupted`; a cell inside :func:`stop_at_once` raises it
    at once; a cell that has not begun does not begin. A SIGTERM after the first is ignored, so that
    a stop being handled (reading the newest checkpoint, say) is not cut short by a fresh exception."""
    if _stop.is_set():
        return
    _stop.set()
    if _stop_at_once is not None:
        raise CellInterrupted(*_stop_at_once)


@contextlib.contextmanager
def stop_at_once(method: str, seed: int) -> Iterator[None]:
    """While open, a SIGTERM stops the cell at once (a method with nothing to checkpoint)."""
    global _stop_at_once
    _stop_at_once = (method, seed)
    try:
        yield
    finally:
        _stop_at_once = None


def stop_requested() -> bool:
    """Whether a SIGTERM has asked this process's cells to stop."""
    return _stop.is_set()


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """While open, SIGTERM calls :func:`request_stop`, where the handler is still the default one and
    this is the main thread (a pool worker has it installed for good)."""
    installed = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )
    if installed:
        signal.signal(signal.SIGTERM, request_stop)
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _stop.clear()


# -- files ---------------------------------------------------------------------------------------------
def _folder(output: Path) -> Path:
    return Path(output) / "checkpoints"


def _cell_files(output: Path, method: str, seed: int) -> list[tuple[int, Path]]:
    """The cell's checkpoint files as ``(steps, path)``, the newest first."""
    folder = _folder(output)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match and match["method"] == method and int(match["seed"]) == seed:
            found.append((int(match["steps"]), path))
    return sorted(found, reverse=True)


def _settings(config: Any) -> dict[str, Any]:
    """A run's config as a dict: the benchmark's dataclass, or a dict of JSON values as it is."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def config_differences(saved: dict[str, Any], config: Any) -> list[str]:
    """The settings in which a saved config (a dict) differs from ``config`` (the benchmark's dataclass,
    or a dict); a setting that the saved one lacks (added to the dataclass since it was written) reads as
    its default.

    Where both record ``resolved_kwargs`` (each meta-learner's hyperparameters, class defaults included),
    the outer update is compared through them, one entry per hyperparameter that differs (``maesn
    kl_coef: 0.1 saved, 0.02 now``): ``outer_kwargs`` ``{}`` and the same defaults written out are the
    same run, and a class default changed since is a difference. Without them (a config written before
    they were recorded) ``outer_update`` and ``outer_kwargs`` are compared as written."""
    if dataclasses.is_dataclass(config):
        saved = {**dataclasses.asdict(type(config)(env_id=config.env_id)), **saved}
    saved, current = dict(saved), _settings(config)
    differences = []
    resolved = saved.pop("resolved_kwargs", None), current.pop("resolved_kwargs", None)
    if all(resolved):
        for key in ("outer_update", "outer_kwargs"):
            saved.pop(key, None), current.pop(key, None)
        before, now = resolved
        for method in sorted({*before, *now}):
            a, b = before.get(method, {}), now.get(method, {})
            differences += [
                f"{method} {name}: {a.get(name)!r} saved, {b.get(name)!r} now"
                for name in sorted({*a, *b})
                if a.get(name) != b.get(name)
            ]
    return sorted(key for key in {*saved, *current} if saved.get(key) != current.get(key)) + differences


def write_checkpoint(
    output: Path, config: Any, method: str, seed: int, model: Any, progress: dict[str, Any]
) -> Path:
    """Save ``model`` with the cell's ``progress`` (``iterations``, ``train_seconds``) atomically; keep the
    newest :data:`KEEP` checkpoints of the cell. Returns the new file."""
    buffer = io.BytesIO()
    model.save(buffer)
    payload = buffer.getvalue()
    header = {
        "format": FORMAT,
        "method": method,
        "seed": seed,
        "num_timesteps": int(model.num_timesteps),
        **progress,
        "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "model_sha256": hashlib.sha256(payload).hexdigest(),
        "config": _settings(config),
    }
    folder = _folder(output)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{method}_seed{seed}_{int(model.num_timesteps):012d}.ckpt"
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:  # the model zip is compressed
            archive.writestr("checkpoint.json", json.dumps(header, indent=1))
            archive.writestr("model.zip", payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    _fsync_folder(folder)
    for _, old in _cell_files(output, method, seed)[KEEP:]:
        old.unlink(missing_ok=True)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_checkpoint(path: Path) -> tuple[dict[str, Any], bytes]:
    """The header and model bytes of a checkpoint; :class:`TornCheckpoint` if the file is not whole."""
    try:
        with zipfile.ZipFile(path) as archive:
            header = json.loads(archive.read("checkpoint.json"))
            payload = archive.read("model.zip")  # zipfile checks each member's CRC-32
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError) as error:
        raise TornCheckpoint(f"{path}: {type(error).__name__}: {error}") from error
    if hashlib.sha256(payload).hexdigest() != header.get("model_sha256"):
        raise TornCheckpoint(f"{path}: the model's SHA-256 does not match the one recorded")
    return header, payload


def latest_checkpoint(
    output: Path, config: Any, method: str, seed: int
) -> tuple[dict[str, Any], bytes] | None:
    """The newest whole checkpoint of the cell (None: none), after checking it was written with
    ``config``: a ``ValueError`` naming the settings that differ otherwise."""
    for _, path in _cell_files(output, method, seed):
        try:
            header, payload = read_checkpoint(path)
        except TornCheckpoint as error:
            warnings.warn(f"skipping a damaged checkpoint ({error}); using the one before it", stacklevel=2)
            continue
        differences = config_differences(header.get("config", {}), config)
        if differences or header.get("format") != FORMAT:
            what = ", ".join(differences) if differences else f"format {header.get('format')} != {FORMAT}"
            raise ValueError(
                f"checkpoint {path} was written by a run with another config (it differs in: {what}); "
                "remove it to start the cell afresh, or run with the config it was written with"
            )
        return header, payload
    return None


def checkpointed_cells(output: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """The header of each cell's newest whole checkpoint in the run's folder, by (method, seed)."""
    folder = _folder(output)
    names = [_NAME.match(path.name) for path in folder.iterdir()] if folder.is_dir() else []
    progress = {}
    for method, seed in {(match["method"], int(match["seed"])) for match in names if match}:
        for _, path in _cell_files(output, method, seed):
            try:
                progress[method, seed] = read_checkpoint(path)[0]
                break
            except TornCheckpoint:
                continue
    return progress


def remove_checkpoints(output: Path, method: str, seed: int) -> None:
    """Delete the cell's checkpoints (its rows are written) and the folder once it is empty."""
    for _, path in _cell_files(output, method, seed):
        path.unlink(missing_ok=True)
    folder = _folder(output)
    if folder.is_dir():
        for stale in folder.glob(f"{method}_seed{seed}_*.ckpt.tmp"):  # a write that was killed
            stale.unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()


# -- meta-training that checkpoints --------------------------------------------------------------------
@dataclasses.dataclass
class Checkpointing:
    """Where and how often a cell checkpoints: under ``output/checkpoints``, every ``every``
    meta-iterations (0: only on SIGTERM)."""

    output: Path
    config: Any
    method: str
    seed: int
    every: int = 10


def meta_train(
    new_model: Callable[[], Any],
    load_model: Callable[[io.BytesIO], Any],
    budget: int,
    checkpointing: Checkpointing | None = None,
) -> tuple[Any, float]:
    """Meta-train up to ``budget`` env steps one meta-iteration at a time, which is the same run as
    ``new_model().learn(budget)`` (a learning-rate schedule would see each call's own progress; the
    benchmark's rates are constants); with ``checkpointing``, start from the cell's newest checkpoint
    (``load_model`` rebuilds it from the model's bytes), write one every ``every`` meta-iterations and,
    after SIGTERM, write one at the end of the meta-iteration and raise :class:`CellInterrupted`.

    Returns the model and the seconds of meta-training the checkpoint it resumed from had done.
    """
    found = None
    if checkpointing is not None:
        c = checkpointing
        found = latest_checkpoint(c.output, c.config, c.method, c.seed)
    if found is None:
        model, iterations, before = new_model(), 0, 0.0
    else:
        header, payload = found
        model = load_model(io.BytesIO(payload))
        iterations, before = header["iterations"], header["train_seconds"]
    start = time.perf_counter()

    def save() -> None:
        seconds = round(before + time.perf_counter() - start, 2)
        progress = {"iterations": iterations, "train_seconds": seconds}
        write_checkpoint(c.output, c.config, c.method, c.seed, model, progress)

    with stop_on_sigterm(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"learn\(\) runs whole meta-iterations")
        while model.num_timesteps < budget:
            model.learn(1, reset_num_timesteps=False)  # one whole meta-iteration
            iterations += 1
            if checkpointing is None:
                continue
            if stop_requested():
                save()
                raise CellInterrupted(c.method, c.seed, model.num_timesteps)
            if c.every and iterations % c.every == 0 and model.num_timesteps < budget:
                save()
    return model, before
