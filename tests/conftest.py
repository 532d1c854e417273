"""Shared test fixtures.

Tests never reach a hub: HF_HUB_OFFLINE is forced on. Tests that need the public datasets use
the ``shared_datasets`` fixture: it skips only when the folder is absent *and* CI is not set;
in CI a missing folder is a failure, never a skip.
"""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from core.paths import datasets_dir


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Every test session writes its caches (numeric checks, ONNX graphs, teacher labels) to a
    temporary folder, never to the user's ~/.cache/altsignal."""
    path = tmp_path_factory.mktemp("altsignal_cache")
    old = os.environ.get("ALTSIGNAL_CACHE")
    os.environ["ALTSIGNAL_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("ALTSIGNAL_CACHE", None)
    else:
        os.environ["ALTSIGNAL_CACHE"] = old


@pytest.fixture(autouse=True)
def private_score_cache(tmp_path, monkeypatch):
    """A cold cross-job score cache per test, so a test comparing two scoring paths compares
    computations, not one computation with its cached copy (tests/test_score_cache.py tests the cache)."""
    monkeypatch.setenv("ALTSIGNAL_SCORE_CACHE", str(tmp_path / "score_cache"))


@pytest.fixture(scope="session")
def shared_datasets():
    path = datasets_dir()
    if not path.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the shared datasets folder {path} is missing")
        pytest.skip(f"shared datasets folder {path} not present")
    return path


@pytest.fixture
def synthetic_run(tmp_path):
    """``make(template, n)`` -> (config path, output folder): a synthetic Parquet panel of ``n``
    months (timing.synthetic) and a timing config from ``template`` (``{out}``, ``{panel}`` filled)."""
    from timing.synthetic import synthetic_panel

    def make(template: str, n: int):
        panel_path, out, cfg = tmp_path / "panel.parquet", tmp_path / "run", tmp_path / "c.toml"
        synthetic_panel(n=n).rename_axis("date").reset_index().to_parquet(panel_path)
        cfg.write_text(template.format(out=out, panel=panel_path))
        return cfg, out

    return make
