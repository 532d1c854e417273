"""Beyond tone: novelty, event type and relevance of each document, and the derived score rows
that turn them into point-in-time daily features.

:func:`annotate` gives one row per (document, entity) (a document without entities gets one row
under ``MARKET_ENTITY``):

- ``event_type``, ``event_how``: :class:`nlp.events.EventTyper` (rules on formulaic headlines,
  then the nearest prototype in MiniLM space); an earnings call is ``earnings`` by definition.
- ``novelty``, ``max_sim``, ``stale``: :func:`signals.novelty.novelty` on the same MiniLM
  embeddings (one encoding pass serves both), against the same entity's documents known
  strictly earlier in the trailing ``window_sessions`` sessions.
- ``relevance``, ``prominence``: :func:`signals.relevance.relevance` (1.0 for the market row).

Everything a row holds depends on its document and on documents known before it, so a row is
known when its document is (``ingested_at``): adding later documents never changes it.

:func:`derived_scores` turns annotations into Score rows under *derived sources*, so the
engine's one feature pipeline (sessions, trailing windows, versioned builds, the provider, the
research tools) computes the new features without a second implementation:

- ``<source>.novel`` / ``<source>.stale``: the document's rows, under the entities for which it
  is novel / stale (a document can be novel news for one company and a reprint for another;
  market-wide it then counts in both, rarely: it is novel or stale for at least one company).
  Their ``n_docs`` and ``tone`` are
  the counts and tone of novel vs stale documents, and ``<source>.novel`` tone is the
  novelty-weighted tone with 0/1 weights (``novelty >= threshold``).
- ``<source>.<event_type>`` for each type in ``event_types``: event counts (``n_docs``) and net
  tone by type; the provider adds ``net_analyst = n(analyst_up) - n(analyst_down)``.
- ``<source>.relevant``: the rows of entities with ``relevance >= relevant_min``: the
  relevance-weighted tone with 0/1 weights.

Decision: weights are 0/1 so the derived features are the ordinary ones on a subset; continuous
weights would need a weighted variant of every feature. Buzz keeps its one definition,
``abnormal_volume``, on each derived source. The derived rows live in their own store
(``text.duckdb``): their ``all``-sources rows would count a document several times and are not
read (``FeatureProvider`` drops them).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pydantic import Field

from core.config_files import Strict
from nlp.contracts import MARKET_ENTITY
from nlp.models import PACKAGED_MINILM
from signals.novelty import DEFAULT_WINDOW_SESSIONS, STALE_THRESHOLD

log = logging.getLogger(__name__)

DEFAULT_EVENT_TYPES = ("earnings", "guidance", "analyst_up", "analyst_down", "mna", "legal", "management")


class AnnotationConfig(Strict):
    """Settings of the text feature group (``[annotations]`` of a run config)."""

    enabled: bool = False
    window_sessions: int = Field(DEFAULT_WINDOW_SESSIONS, ge=1)  # trailing sessions a document is compared with
    stale_threshold: float = Field(STALE_THRESHOLD, gt=0, lt=1)  # novelty below it is stale (measured: signals.novelty)
    relevant_min: float = Field(0.5, gt=0, le=1)  # relevance of the entities counted as "relevant"
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES  # one derived source per type
    embed_model: str = PACKAGED_MINILM


def annotate(docs: pd.DataFrame, cfg: AnnotationConfig = AnnotationConfig(), sessions=None, typer=None) -> pd.DataFrame:
    """One row per (document, entity); see the module docstring.

    ``docs``: Document rows (``feed`` optional, ``source``, ``doc_id``, ``text``, ``title``
    optional, ``published_at``, ``ingested_at``, ``entities``). ``sessions``: a
    ``signals.config.SessionConfig`` (default: the engine's).
    """
    from nlp.events import EventTyper
    from signals.config import DEFAULT_CONFIG
    from signals.novelty import novelty
    from signals.relevance import relevance
    from signals.sessions import Sessions

    s = sessions or DEFAULT_CONFIG.sessions
    docs = docs.reset_index(drop=True)
    if "feed" not in docs.columns:
        docs = docs.assign(feed=docs["source"])
    if docs.empty:
        return pd.DataFrame(columns=ANNOTATION_COLUMNS)
    typer = typer or EventTyper(model=cfg.embed_model)
    texts = docs["text"].astype(str).tolist()
    emb = typer.encode(texts)
    events = typer.predict_with_source(texts, embeddings=emb)
    events.loc[docs["source"].eq("transcript").to_numpy(), ["event_type", "how"]] = ["earnings", "source"]
    # one identity per document across feeds and sources (the store's), for novelty's doc_id
    key = docs["feed"].astype(str) + "\x1f" + docs["source"].astype(str) + "\x1f" + docs["doc_id"].astype(str)
    ents = [list(e) if e is not None and len(e) else [MARKET_ENTITY] for e in docs["entities"]]
    known = pd.to_datetime(docs["ingested_at"], utc=True)
    frame = pd.DataFrame({"doc_id": key, "entities": ents, "known_at": known, "embedding": list(emb)})
    nov = novelty(frame, window_sessions=cfg.window_sessions, threshold=cfg.stale_threshold, time_col="known_at",
                  sessions=Sessions(s))
    rel = relevance(docs.assign(doc_id=key))[["doc_id", "entity", "relevance", "prominence"]]
    out = nov.rename(columns={"doc_id": "key"}).merge(rel.rename(columns={"doc_id": "key"}), on=["key", "entity"], how="left")
    out[["relevance", "prominence"]] = out[["relevance", "prominence"]].fillna(1.0)  # the market row
    meta = docs[["feed", "source", "doc_id", "published_at", "ingested_at"]].assign(
        key=key, event_type=events["event_type"].to_numpy(), event_how=events["how"].to_numpy())
    out = meta.merge(out, on="key").drop(columns=["key", "nearest_doc_id"])
    return out[ANNOTATION_COLUMNS]


ANNOTATION_COLUMNS = ["feed", "source", "doc_id", "entity", "published_at", "ingested_at", "event_type", "event_how",
                      "novelty", "max_sim", "stale", "relevance", "prominence"]


def derived_scores(scores: pd.DataFrame, annotations: pd.DataFrame, cfg: AnnotationConfig = AnnotationConfig()) -> pd.DataFrame:
    """Score rows under the derived sources of the module docstring.

    ``scores``: Score rows (with ``feed`` when the annotations have one); each derived row is a
    copy of a document's rows with ``source`` and ``entities`` replaced.
    """
    if scores.empty or annotations.empty:
        return scores.iloc[0:0]
    if "feed" not in scores.columns:
        scores = scores.assign(feed=scores["source"])
    a = annotations
    market = a["entity"].eq(MARKET_ENTITY)
    keys = ["feed", "source", "doc_id"]
    groups = []  # (derived suffix, frame of keys + entities list)

    def per_doc(mask: pd.Series, suffix: str) -> None:
        sel = a[mask]
        if sel.empty:
            return
        ents = sel[~sel["entity"].eq(MARKET_ENTITY)].groupby(keys)["entity"].agg(list)
        docs = sel[keys].drop_duplicates().set_index(keys)
        docs["entities_new"] = ents.reindex(docs.index).map(lambda v: v if isinstance(v, list) else [])
        groups.append((suffix, docs.reset_index()))

    stale = a["stale"].astype(bool)
    per_doc(~stale, "novel")
    per_doc(stale, "stale")
    for etype in cfg.event_types:
        per_doc(a["event_type"].eq(etype), etype)
    per_doc((a["relevance"] >= cfg.relevant_min) & ~market, "relevant")
    out = []
    for suffix, docs in groups:
        rows = scores.merge(docs, on=keys)
        if rows.empty:
            continue
        rows["entities"] = rows.pop("entities_new")
        rows["source"] = rows["source"] + "." + suffix
        out.append(rows)
    if not out:
        return scores.iloc[0:0]
    derived = pd.concat(out, ignore_index=True)
    log.info("derived %d score rows under %d sources from %d documents", len(derived), derived["source"].nunique(),
             a[keys].drop_duplicates().shape[0])
    return derived


def net_analyst(panel: pd.DataFrame) -> pd.DataFrame:
    """Add ``<source>.net_analyst_n_docs`` (upgrades minus downgrades) where a panel has both counts."""
    out = panel.copy()
    for up in [c for c in panel.columns if c.endswith(".analyst_up_n_docs")]:
        down = up.replace(".analyst_up_", ".analyst_down_")
        if down in panel.columns:
            out[up.replace(".analyst_up_", ".net_analyst_")] = panel[up].fillna(0) - panel[down].fillna(0)
    return out


def summary(annotations: pd.DataFrame) -> dict:
    """Counts for run summaries: documents, share stale, event types, mean relevance."""
    docs = annotations.drop_duplicates(["feed", "source", "doc_id"])
    return {"documents": len(docs), "stale_share": round(float(annotations["stale"].mean()), 4) if len(annotations) else None,
            "event_types": docs["event_type"].value_counts().to_dict(),
            "mean_relevance": round(float(np.nanmean(annotations["relevance"])), 4) if len(annotations) else None}
def build_text_store(db, text_db, cfg: AnnotationConfig = AnnotationConfig(), signals=None,
                     documents: pd.DataFrame | None = None) -> dict:
    """Annotate every document of the store ``db`` (their last versions), write
    ``<text_db folder>/annotations.parquet`` and build ``text_db`` from the derived score rows.

    ``documents``: Document rows to take the text from when the store holds scores only (a store
    of ``altsignal research store``); each is matched to its scores by ``(source, doc_id)`` (and
    ``feed`` when it has one) and takes their ``ingested_at``, so it is known when they are.
    The text store is built as of now; its rows carry their documents' ``ingested_at``, so its
    ``as_of`` reads and ``known_at`` follow the documents'. Returns counts for the run summary.
    """
    from pathlib import Path

    from core.atomic import atomic_path
    from core.errors import UsageError
    from signals.config import DEFAULT_CONFIG
    from signals.store import FeatureStore

    signals = signals or DEFAULT_CONFIG
    text_db = Path(text_db)
    with FeatureStore(db, signals, read_only=True) as store:
        docs = store.documents()
        scores = store.scores()
    if documents is not None:
        keys = ["feed", "source", "doc_id"] if "feed" in documents.columns else ["source", "doc_id"]
        known = scores.groupby(["feed", "source", "doc_id"], as_index=False)["ingested_at"].max()
        docs = documents.drop(columns=["ingested_at"], errors="ignore").merge(known, on=keys)
    if docs.empty:
        raise UsageError(f"{db} holds no documents to annotate (a store of scores only?)",
                         hint="pass the documents' text with --documents (a Document Parquet of `altsignal data load`)")
    annotations = annotate(docs, cfg, signals.sessions)
    with atomic_path(text_db.parent / "annotations.parquet") as tmp:
        annotations.to_parquet(tmp, index=False)
    with FeatureStore(text_db, signals) as text:
        with text.transaction():
            text.add_scores(derived_scores(scores, annotations, cfg))
            text.build()
        counts = text.counts()
    return summary(annotations) | {"text_store": counts}
