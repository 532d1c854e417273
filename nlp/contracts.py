"""The data contracts of DESIGN.md, in code: Document, LabeledExample, Score, DailyFeature.

Frames crossing a package seam go through ``validate_*``. Row-level problems (a missing text,
a naive timestamp...) become :class:`~core.rejects.Reject` entries that name the row, the column
and what was expected; the good rows go on. Frame-level problems (a required column missing)
raise :class:`ContractError`, because no row can be trusted then.
"""
from __future__ import annotations

import pandas as pd
import pyarrow as pa

from core.errors import UsageError
from core.rejects import Rejects

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
SOURCES: tuple[str, ...] = ("news", "social", "transcript")
MARKET_ENTITY = "__MARKET__"  # entity key of market-wide rows (documents without tickers)


class ContractError(UsageError):
    """A frame does not meet a contract as a whole (e.g. a required column is missing)."""


DOCUMENT_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("published_at", pa.timestamp("us", tz="UTC")),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
        ("text", pa.string()),
        ("entities", pa.list_(pa.string())),
        ("title", pa.string()),
        ("publisher", pa.string()),
        ("url", pa.string()),
    ]
)

SCORE_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("unit", pa.int32()),
        ("model_id", pa.string()),
        ("p_neg", pa.float32()),
        ("p_neu", pa.float32()),
        ("p_pos", pa.float32()),
        ("score", pa.float32()),
        ("n_tokens", pa.int32()),
        ("source", pa.string()),
        ("published_at", pa.timestamp("us", tz="UTC")),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
        ("entities", pa.list_(pa.string())),
        ("section", pa.string()),
        ("speaker_role", pa.string()),
        # Entity-level row (JobConfig.entity_model): the tone toward this ticker in the unit, from
        # the job's entity model. Null = the unit's sentence score, the only kind without the switch.
        ("entity", pa.string()),
    ]
)

DAILY_FEATURE_KEYS: tuple[str, ...] = ("date", "entity", "source", "n_docs", "known_at")


def require_columns(df: pd.DataFrame, columns: list[str] | tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ContractError(
            f"{what}: missing required column(s) {missing}; got columns {list(df.columns)}"
        )


def _line_numbers(df: pd.DataFrame) -> pd.Series:
    """Source line of each row: the reader's ``_line`` column if present, else 1-based position."""
    if "_line" in df.columns:
        return df["_line"]
    return pd.Series(range(1, len(df) + 1), index=df.index)


def _reject_mask(
    df: pd.DataFrame, mask: pd.Series, column: str, reason: str, rejects: Rejects, source: str
) -> pd.DataFrame:
    """Send rows where ``mask`` is true to ``rejects`` and return the rest."""
    if mask.any():
        lines = _line_numbers(df)
        for idx in df.index[mask]:
            rejects.add(source, int(lines[idx]), column, reason, df.at[idx, column] if column in df else "")
    return df.loc[~mask]


def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | s.astype("string").str.strip().fillna("").eq("")


def validate_documents(
    df: pd.DataFrame, rejects: Rejects, source: str = "documents", keep: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Check a Document frame; bad rows go to ``rejects``; returns the good rows in contract form.

    ``published_at`` must already be timezone-aware (readers localize naive times only when the
    caller declared the zone); it is returned in UTC. ``keep`` names extra columns carried after
    the contract columns (e.g. a tweet's ``lang``).
    """
    require_columns(df, ["doc_id", "source", "published_at", "text"], "Document")
    out = df.copy()
    out = _reject_mask(out, _blank(out["doc_id"]), "doc_id", "missing doc_id: expected a non-empty string", rejects, source)
    ids = out["doc_id"].astype("string")
    out = _reject_mask(out, ids.str.contains(r"[\x00-\x1f\x7f]").fillna(False).astype(bool), "doc_id",
                       "invalid doc_id: control characters (NUL, tab, newline...) are not allowed in ids", rejects, source)
    out = _reject_mask(out, _blank(out["text"]), "text", "missing text: expected non-empty text", rejects, source)
    nul = out["text"].astype("string").str.contains("\x00", regex=False).fillna(False).astype(bool)
    out = _reject_mask(out, nul, "text", "invalid text: NUL bytes (binary data?)", rejects, source)
    bad_src = ~out["source"].isin(SOURCES)
    out = _reject_mask(out, bad_src, "source", f"unknown source: expected one of {list(SOURCES)}", rejects, source)
    ts = out["published_at"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise ContractError(
            "Document.published_at must be timezone-aware; declare the zone of naive timestamps "
            f"(got dtype {ts.dtype})"
        )
    out = _reject_mask(out, ts.isna(), "published_at", "missing or unparseable published_at", rejects, source)
    dup = out["doc_id"].duplicated(keep="first")
    out = _reject_mask(out, dup, "doc_id", "duplicate doc_id: expected unique ids (first occurrence kept)", rejects, source)

    out["published_at"] = out["published_at"].dt.tz_convert("UTC")
    if "ingested_at" not in out:
        out["ingested_at"] = pd.Timestamp.now(tz="UTC")
    if "entities" not in out:
        out["entities"] = [[] for _ in range(len(out))]
    for col in ("title", "publisher", "url"):
        if col not in out:
            out[col] = None
    out["doc_id"] = out["doc_id"].astype(str)
    return out[[f.name for f in DOCUMENT_SCHEMA] + [c for c in keep if c not in DOCUMENT_SCHEMA.names]].reset_index(drop=True)


def validate_labeled(df: pd.DataFrame, rejects: Rejects, source: str = "labeled") -> pd.DataFrame:
    """Check a labeled-text frame (``text``, ``label`` in :data:`LABELS`)."""
    require_columns(df, ["text", "label"], "LabeledExample")
    out = df.copy()
    out = _reject_mask(out, _blank(out["text"]), "text", "missing text: expected non-empty text", rejects, source)
    bad = ~out["label"].isin(LABELS)
    out = _reject_mask(out, bad, "label", f"unknown label: expected one of {list(LABELS)}", rejects, source)
    return out.reset_index(drop=True)


def validate_scores(df: pd.DataFrame) -> pd.DataFrame:
    """Check a Score frame produced by our own scorer: problems here are bugs, so they raise."""
    require_columns(df, [f.name for f in SCORE_SCHEMA if f.name not in ("section", "speaker_role", "ingested_at", "entity")], "Score")
    probs = df[["p_neg", "p_neu", "p_pos"]].to_numpy()
    if len(df) and (abs(probs.sum(axis=1) - 1) > 1e-3).any():
        row = int((abs(probs.sum(axis=1) - 1) > 1e-3).argmax())
        raise ContractError(f"Score row {row}: p_neg + p_neu + p_pos must sum to 1, got {probs[row].sum():.4f}")
    if not isinstance(df["published_at"].dtype, pd.DatetimeTZDtype):
        raise ContractError("Score.published_at must be timezone-aware")
    return df


def validate_daily_features(df: pd.DataFrame) -> pd.DataFrame:
    """Check a DailyFeature frame: key columns present, ``known_at`` aware and after the session."""
    require_columns(df, list(DAILY_FEATURE_KEYS), "DailyFeature")
    if not isinstance(df["known_at"].dtype, pd.DatetimeTZDtype):
        raise ContractError("DailyFeature.known_at must be timezone-aware")
    dupe = df.duplicated(["date", "entity", "source"])
    if dupe.any():
        row = df[dupe].iloc[0]
        raise ContractError(
            f"DailyFeature: duplicate key (date={row['date']}, entity={row['entity']}, source={row['source']})"
        )
    return df
