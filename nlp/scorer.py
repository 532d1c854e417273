"""``Scorer``: a transformer sentiment model behind the scorer protocol, loaded in one call.

    from nlp import Scorer

    scorer = Scorer.load("default")               # or "fast", "labeled", or an artifact folder
    scorer.predict_proba(["Profit rose 12%."])    # (n, 3) array, columns in scorer.labels order
    scorer.score(["Profit rose 12%."])            # DataFrame: p_neg, p_neu, p_pos, score, n_tokens...

It is the scorer ``transformer`` of :data:`nlp.registry.scorers` (:mod:`nlp.protocol`), so
evaluation (``nlp.evaluate``), batch jobs and their Ray actors (``nlp.scoring``) and research
code all take the same path: NFKC-normalized text, token-length buckets in fixed shapes
(batch-invariant, see ``EngineConfig``), the artifact's temperature.

Decisions:

- ``numeric="auto"`` takes the fastest path that passed the model's recorded accuracy check and
  fp32 when there is no record; the minute-long check itself runs only when asked:
  :meth:`Scorer.check_numeric`, or ``Scorer.load(..., check=True)`` (what batch jobs do, so a
  job's numeric path, part of its identity, never depends on whether a cache file existed).
- Loading changes no process-wide state unless asked: torch's global thread count is set only
  when ``threads`` is given (it is per process, so it also applies to other torch code).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlp.models import model_path
from nlp.protocol import Scored, ScorerBase
from nlp.registry import scorers
from nlp.scoring import numeric as checks
from nlp.scoring.config import EngineConfig, Numeric
from nlp.scoring.engine import ScoringEngine, normalize_text
from nlp.scoring.score_cache import output_fingerprint


@scorers.register("transformer")
class Scorer(ScorerBase):
    """A loaded sentiment model; :meth:`load` builds one."""

    def __init__(self, engine: ScoringEngine, requested_numeric: str) -> None:
        self.engine = engine
        self.requested_numeric = requested_numeric

    @classmethod
    def load(cls, model: str | Path | None = "default", *, numeric: Numeric | None = None, threads: int | None = None,
             device: str | None = None, check: bool = False, config: EngineConfig | None = None,
             model_hash: str | None = None) -> "Scorer":
        """Load a model by name (``default``, ``fast``) or artifact folder.

        ``numeric``, ``threads`` and ``device`` override the fields of ``config`` (default
        ``EngineConfig()``: numeric ``auto``, threads left as they are, CPU). ``check=True`` runs
        the numeric accuracy check first when ``numeric`` is ``auto`` and none is recorded.
        ``model_hash``: the artifact's content hash when the caller already has it (Ray actors get
        the driver's instead of re-reading every weight file).
        """
        given = {"numeric": numeric, "threads": threads, "device": device}
        cfg = EngineConfig(**{**(config or EngineConfig()).model_dump(), **{k: v for k, v in given.items() if v is not None}})
        scorer = cls(ScoringEngine(model_path(model), cfg, model_hash=model_hash), cfg.numeric)
        if check and cfg.numeric == "auto":
            scorer.check_numeric()
        return scorer

    @property
    def name(self) -> str:
        return self.engine.model_id

    @property
    def labels(self) -> list[str]:
        return self.engine.labels

    @property
    def model_id(self) -> str:
        return self.engine.model_id

    @property
    def model_path(self) -> Path:
        return self.engine.model_path

    @property
    def numeric(self) -> str:
        """The numeric path in use (``auto`` resolved)."""
        return self.engine.numeric

    def normalize(self, text: str) -> str:
        return normalize_text(text)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, shape ``(len(texts), len(self.labels))``, float32."""
        return self.engine.score(list(texts)).probs

    def scored(self, texts: Sequence[str]) -> Scored:
        """Probabilities, token counts and truncation; identical normalized texts computed once."""
        return self.engine.score(list(texts))

    @property
    def identity(self) -> dict:
        return {"numeric": self.numeric, "model_hash": self.engine.model_hash}

    @property
    def cache_key(self) -> str:
        cfg = self.engine.config
        return output_fingerprint(self.engine.model_hash, self.numeric, cfg.device, cfg.bucket_tokens,
                                  cfg.batch_tokens, self.engine.max_tokens)

    def remote(self, workers: int) -> dict:
        eng = self.engine
        # Each worker gets an equal share of this machine's threads unless told otherwise, and
        # the path already resolved here, so workers never run the numeric check.
        threads = eng.config.threads or max(1, eng.threads // workers)
        config = eng.config.model_copy(update={"threads": threads, "numeric": eng.numeric})
        return {"model": str(eng.model_path), "config": config, "model_hash": eng.model_hash}

    def check_numeric(self, force: bool = False) -> dict | None:
        """Run the numeric accuracy check (or read its record) and return the record.

        Every candidate path scores the model's validation split; the record is cached per model
        content hash in ``$ALTSIGNAL_CACHE/checks/`` (``force`` re-runs it). A scorer loaded with
        ``numeric="auto"`` then switches to the path the check chose. Returns None, and stays on
        its path, when the validation data is not available.
        """
        eng = self.engine
        record = None if force else checks.read_check(eng.model_hash, eng.config.batch_tokens)
        if record is None:
            name = checks.validation_set_of(eng.sm.meta)
            got = checks.labeled_texts(name, checks.VALIDATION_CAP)
            if got is None:
                return None
            about = {"model_id": eng.model_id, "validation_set": name, "threads": eng.threads}
            record = checks.check_numeric_paths(
                eng.probe, got[0], got[1], label_order=eng.labels, paths=checks.candidate_paths(eng.config.device),
                model_hash=eng.model_hash, batch_tokens=eng.config.batch_tokens, about=about)
        chosen = (checks.resolve_numeric("auto", eng.config.device, record) if self.requested_numeric == "auto"
                  else eng.numeric)
        eng.use(chosen)  # also lets go of the backends the check built for other paths
        return record
