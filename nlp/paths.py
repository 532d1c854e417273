"""Where data lives. One place, so no module guesses paths on its own (models: ``nlp.models.model_path``).

- The project's own data (sample corpus, split manifests, alias table) is the ``corpora``
  package, found through ``importlib.resources``: it ships inside the wheel, so a non-editable
  install finds it as an editable checkout does.
- Public datasets are *read* from a folder outside the repository (never copied in):
  ``$ALTSIGNAL_DATASETS`` if set, else ``../shared/datasets`` next to the checkout.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA_DIR = Path(resources.files("corpora"))
SAMPLE_DIR = CORPORA_DIR / "sample"
SPLITS_DIR = CORPORA_DIR / "splits"


def datasets_dir() -> Path:
    """Folder holding the shared public datasets (may not exist on a user's machine)."""
    env = os.environ.get("ALTSIGNAL_DATASETS")
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT.parent / "shared" / "datasets").resolve()


def dataset_path(name: str, *parts: str) -> Path:
    """Path of a file inside one shared dataset, with a clear error if it is missing."""
    p = datasets_dir().joinpath(name, *parts)
    if not p.exists():
        raise FileNotFoundError(
            f"dataset file {p} not found; set ALTSIGNAL_DATASETS to the folder that holds '{name}/'"
        )
    return p


def resolve_data_path(value: str) -> str:
    """``datasets:<name>/<file>`` -> a path under :func:`datasets_dir`; anything else unchanged.

    Configs name shared data this way so the same file runs wherever ``$ALTSIGNAL_DATASETS`` points.
    """
    return str(datasets_dir() / value[len("datasets:"):]) if value.startswith("datasets:") else value
