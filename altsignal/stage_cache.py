"""The stage cache of ``altsignal run``: each stage folder is built aside and kept by content hash.

Every stage is built in ``<output_dir>/<stage>.partial/`` and renamed to ``<output_dir>/<stage>/``
when complete; its ``stage.json`` holds the hash of everything that determines its output. A
re-run with the same hash reuses the folder; an interrupted stage is marked ``interrupted`` and
resumed when its builder can (the scoring job picks up its finished chunks). Only folders holding
the run's ``stage.json`` are ever removed: a folder of the user's is an error, never deleted.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from core.atomic import atomic_write_text
from core.errors import UsageError
from core.lifecycle import marks_interruption

log = logging.getLogger(__name__)

STAGE_FILE = "stage.json"  # written by the run into each stage folder: its key, status and summary
PARTIAL = ".partial"  # suffix of the folder a stage is built in before it is renamed into place


def stage_key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _state(folder: Path) -> dict | None:
    marker = folder / STAGE_FILE
    return json.loads(marker.read_text()) if marker.is_file() else None


def _set_state(folder: Path, key: str, status: str, **extra) -> None:
    state = {"key": key, "status": status, **extra}
    atomic_write_text(folder / STAGE_FILE, json.dumps(state, indent=2, default=str) + "\n")


def check_owned(folder: Path) -> None:
    """Refuse a folder the run did not create: only absent, empty or marked folders may be replaced."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file, where `altsignal run` keeps a stage folder",
                         hint="choose another output folder (--out) or move that file away")
    # a kill while the first stage.json was being written leaves only its temp file: still ours
    if folder.is_dir() and _state(folder) is None and not all(
            p.name.startswith(f".{STAGE_FILE}.") and p.name.endswith(".tmp") for p in folder.iterdir()):
        raise UsageError(f"{folder} was not written by `altsignal run` (no {STAGE_FILE}); it is left untouched",
                         hint="choose another output folder (--out) or move that folder away")


def remove_stage(folder: Path) -> None:
    """Delete a stage folder of the run's (refusing any other folder)."""
    check_owned(folder)
    if not folder.is_dir():
        return
    for p in folder.iterdir():  # the marker last: a removal cut short leaves a folder still marked
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.name != STAGE_FILE:
            p.unlink()
    shutil.rmtree(folder)


def cached_stage(folder: Path, key: str, build: Callable[[Path], dict], resume: bool = False) -> dict:
    """Run ``build`` unless ``folder/stage.json`` records the same key as complete; return the summary.

    The stage is built in ``<folder>.partial`` and renamed to ``folder`` once complete, so a stage
    folder is always whole. A partial folder with the same key is resumed when ``resume`` (the
    scoring job picks up its finished chunks), else rebuilt; an interruption marks it
    ``interrupted``. Only folders holding the run's ``stage.json`` are ever removed.
    """
    done = _state(folder)
    if done is not None and done.get("key") == key and done.get("status", "complete") == "complete":
        log.info("stage %s: cached (%s)", folder.name, key)
        return done["summary"] | {"cached": True}
    partial = folder.with_name(folder.name + PARTIAL)
    state = _state(partial)
    if state is None or state["key"] != key or not (resume or state["status"] == "complete"):
        remove_stage(partial)
        partial.mkdir(parents=True)
    if state is None or state["key"] != key or state["status"] != "complete":
        log.info("stage %s: %s", folder.name, "resuming" if partial.joinpath(STAGE_FILE).exists() else "computing")
        _set_state(partial, key, "running")
        t0 = time.perf_counter()
        with marks_interruption(lambda signame: _set_state(partial, key, "interrupted", signal=signame)):
            summary = build(partial)
            summary["seconds"] = round(time.perf_counter() - t0, 1)
            _set_state(partial, key, "complete", summary=summary)
    remove_stage(folder)
    partial.rename(folder)
    return _state(folder)["summary"] | {"cached": False}


@contextmanager
def staged(folder: Path, names: tuple[str, ...]) -> Iterator[Path]:
    """Copies of ``folder``'s ``names`` (files or folders; absent ones stay absent) to change in
    ``folder/staged.partial``, moved over the originals, in ``names`` order, only if the block
    finishes.

    The stage folders' build-aside-then-rename, for outputs that persist from run to run (the
    daily store): an error leaves the originals exactly as they were. A copy left by a killed run
    is discarded: the originals are the truth. Each file is moved with one rename; a name the
    block removed is removed from ``folder`` too, so a stale file never outlives its copy.
    """
    work = folder / f"staged{PARTIAL}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in names:
        if (folder / name).is_dir():
            shutil.copytree(folder / name, work / name)
        elif (folder / name).exists():
            shutil.copy2(folder / name, work / name)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    for name in names:
        _move_over(work / name, folder / name)
    shutil.rmtree(work)


def _move_over(src: Path, dst: Path) -> None:
    """Make ``dst`` what ``src`` is (file, folder or absent), one rename per file."""
    if src.is_dir():
        new = {p.relative_to(src) for p in src.rglob("*") if p.is_file()}
        for rel in sorted(new):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src / rel, dst / rel)
        for p in [p for p in dst.rglob("*") if p.is_file() and p.relative_to(dst) not in new]:
            p.unlink()
    elif src.exists():
        if dst.is_dir():
            shutil.rmtree(dst)
        os.replace(src, dst)
    elif dst.is_dir():
        shutil.rmtree(dst)
    else:
        dst.unlink(missing_ok=True)
