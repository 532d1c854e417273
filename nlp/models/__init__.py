"""Sentiment models: the on-disk artifact format, fine-tuning, calibration, baselines."""
from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "default_model"


def default_model_path() -> Path:
    """Folder of the shipped default model (an artifact, see nlp.models.artifact)."""
    if not (DEFAULT_MODEL_DIR / "altsignal_model.json").exists():
        raise FileNotFoundError(
            f"the default model is missing from {DEFAULT_MODEL_DIR}; reinstall altsignal "
            "(the folder ships as package data)"
        )
    return DEFAULT_MODEL_DIR
