"""Where data lives. One place, so no module guesses paths on its own (models: ``nlp.models.model_path``).

- The project's own data (sample corpus, split manifests, alias table, dataset cards) is the
  ``corpora`` package, found through ``importlib.resources``; the shipped models and the timing
  configs sit inside ``nlp`` and ``timing`` and are found from those modules' ``__file__``. All of
  it ships in the wheel, so a non-editable install (``pip install .``) finds it as an editable
  checkout does, from any working directory (``.ci/install_elsewhere`` proves it in CI).
- Public datasets are *read* from a folder outside the package (never copied in):
  :func:`datasets_dir` has the rule.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from core.errors import MissingFileError, UsageError

CORPORA_DIR = Path(resources.files("corpora"))
SAMPLE_DIR = CORPORA_DIR / "sample"
SPLITS_DIR = CORPORA_DIR / "splits"

# The folder the packages were imported from: a source checkout when it holds the project's
# pyproject.toml (editable install, or the checkout on sys.path), else site-packages (an install).
_PACKAGES_PARENT = Path(__file__).resolve().parents[1]
_CHECKOUT = _PACKAGES_PARENT if (_PACKAGES_PARENT / "pyproject.toml").is_file() else None


def datasets_dir() -> Path:
    """Folder holding the shared public datasets (may not exist on a user's machine).

    First match wins:

    1. ``$ALTSIGNAL_DATASETS``;
    2. ``../shared/datasets`` beside the source checkout the package is imported from (an editable
       install): the project's layout, so tests and CI find it whatever their working directory;
    3. ``../shared/datasets`` relative to the working directory (an installed package, which has
       no checkout): run from a checkout's root, as the README's commands are, a non-editable
       install then reads what an editable one reads.

    Anywhere else, set ``$ALTSIGNAL_DATASETS``; a fixed per-user default was not chosen because
    the folder is shared data that the user places, not a cache the package fills.
    """
    env = os.environ.get("ALTSIGNAL_DATASETS")
    if env:
        return Path(env).expanduser().resolve()
    base = _CHECKOUT if _CHECKOUT is not None else Path.cwd()
    return (base.parent / "shared" / "datasets").resolve()


def dataset_path(name: str, *parts: str) -> Path:
    """Path of a file inside one shared dataset, with an error saying how to point at it if missing."""
    p = datasets_dir().joinpath(name, *parts)
    if not p.exists():
        where = "$ALTSIGNAL_DATASETS" if os.environ.get("ALTSIGNAL_DATASETS") else "the default ../shared/datasets"
        raise MissingFileError(
            f"dataset file {p} not found (datasets folder: {where}); set ALTSIGNAL_DATASETS to the "
            f"folder that holds '{name}/': export ALTSIGNAL_DATASETS=/path/to/datasets"
        )
    return p


def resolve_data_path(value: str) -> str:
    """``datasets:<name>/<file>`` -> a path under :func:`datasets_dir`; anything else unchanged.

    Configs name shared data this way so the same file runs wherever ``$ALTSIGNAL_DATASETS`` points.
    """
    return str(datasets_dir() / value[len("datasets:"):]) if value.startswith("datasets:") else value


def check_distinct(outputs: dict[str, str | Path | None], inputs: dict[str, Iterable[str | Path]] | None = None) -> None:
    """Refuse an output path that is another output or an input of the same command.

    Keys name the options (``--out``, ``--rejects``); None outputs are not given. Writing the
    rejects over the documents, or the documents over their input, would lose data silently.
    Paths are compared resolved (``./a`` and ``a``, and links, are one file).
    """
    taken: dict[Path, str] = {}
    for option, paths in (inputs or {}).items():
        taken |= {Path(p).resolve(): option for p in paths}
    for option, path in outputs.items():
        if path is None:
            continue
        real = Path(path).resolve()
        if real in taken:
            raise UsageError(f"{option} {path} is also {taken[real]}: writing it would overwrite that",
                             hint="give each output its own path, apart from the inputs")
        taken[real] = option
