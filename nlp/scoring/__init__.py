"""Batch scoring: a fast, batch-invariant engine, streaming resumable jobs, Ray scale-out.

The public entry point is :class:`nlp.scorer.Scorer` (``from nlp import Scorer``), the transformer
scorer; the engine below is what it runs. The job and the runner take any scorer of
:mod:`nlp.protocol`, named in :data:`nlp.registry.scorers`.

- :mod:`nlp.scoring.config`: every knob (``EngineConfig``, ``JobConfig``).
- :mod:`nlp.scoring.engine`: ``ScoringEngine.score(texts)`` - dedup, token-sorted fixed-shape batches.
- :mod:`nlp.scoring.backends`: torch fp32/bf16/fp16 and ONNX Runtime static int8.
- :mod:`nlp.scoring.numeric`: the accuracy check that decides which fast path may be used (it
  scores through a probe callable, so it imports no engine).
- :mod:`nlp.scoring.quality`: empty/too long/undecodable/HTML/non-English handling.
- :mod:`nlp.scoring.units`: documents -> units (transcript sentences) -> Score rows (through
  :func:`nlp.protocol.score_frame`), aggregates.
- :mod:`nlp.scoring.runner`: a scorer in-process or on Ray Data actors.
- :mod:`nlp.scoring.job`: the resumable job behind ``altsignal score``.
"""
