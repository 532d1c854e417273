"""Content hashes and the cache folder: what keys cached work, so it is rebuilt exactly when its inputs change."""
from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import lru_cache
from pathlib import Path


def file_sha256(path: Path) -> str:
    """Content hash of a file, streamed (dataset files and job inputs can be large)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("ALTSIGNAL_CACHE", Path.home() / ".cache" / "altsignal")).expanduser()


def artifact_hash(model_path: str | Path) -> str:
    """Content hash of what defines a model's outputs: metadata, configs, tokenizer, weights.

    Model cards, evaluation reports and other documents in the folder are left out, so that
    rewriting them does not invalidate resumable jobs or recorded numeric checks.
    """
    model_path = Path(model_path)
    h = hashlib.sha256()
    files = [p for p in model_path.rglob("*") if p.is_file() and not p.name.startswith(".")
             and p.suffix in (".json", ".safetensors", ".txt", ".model") and "eval" not in p.relative_to(model_path).parts]
    for f in sorted(files):
        h.update(str(f.relative_to(model_path)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def file_digest(path: Path) -> str:
    """Content hash of a file, or of a folder's files (names and contents, in name order)."""
    paths = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
    return hashlib.sha256("".join(f"{p.name}\t{file_sha256(p)}\n" for p in paths).encode()).hexdigest()


@lru_cache(maxsize=None)
def code_digest(package: str) -> str:
    """Hash of a package's Python source (file names and contents, in name order).

    Stage keys include the code that builds the stage, so a run folder written by another version
    (a changed scores layout, a fixed feature) is rebuilt instead of being reported as cached.
    """
    root = Path(importlib.util.find_spec(package).origin).parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(f"{p.relative_to(root).as_posix()}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()[:16]
