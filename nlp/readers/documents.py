"""Any CSV / JSONL / Parquet file -> Documents (DESIGN.md contract), through a ``ColumnMapping``.

``iter_documents`` streams chunk by chunk (see :mod:`nlp.readers.records`); ``read_documents``
is the same stream concatenated, so both give identical rows. Bad rows (missing text or id,
unparseable, naive or implausible timestamps, undecodable bytes, values of the wrong type such
as a number in the text column, duplicate ids across the whole stream) go to the ``Rejects``
with file and line; the good rows load.

Presets name the sets this project reads (see ``corpora/cards/``):

- ``news``: the Benzinga slice in ``dated_news`` (US/Eastern times with explicit offsets;
  ``doc_id`` = the row id of the full Kaggle file; one ticker per row).
- ``social``: StockNet tweets (UTC, Twitter's ``created_at`` layout). The same tweet is filed
  under every ticker folder it was collected for, so a Document is one (ticker, tweet) row with
  ``doc_id`` ``TICKER:tweet_id``. Decision: this keeps streaming one-pass and per-ticker features
  exact; a market-wide aggregate that wants each tweet once can group by the ``tweet_id`` extra.
- ``transcripts``: MAEC calls; ``call_date`` has no time of day, so a call is known at the end
  of that day in America/New_York unless ``date_only``/``timezone`` are overridden.
- ``sample:news``, ``sample:social``, ``sample:transcripts``: the project's own sample corpus
  in ``corpora/sample/`` (formats in ``corpora/README.md``).
"""
from __future__ import annotations

import codecs
import json
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, field_validator

from core.atomic import atomic_path
from core.config_files import Strict
from core.errors import UnknownNameError
from core.paths import SAMPLE_DIR, dataset_path
from core.rejects import Rejects
from nlp.contracts import DOCUMENT_SCHEMA, SOURCES, ContractError, validate_documents
from nlp.readers.records import CSV_FIELD_LIMIT, DEFAULT_CHUNK_ROWS, iter_records
from nlp.readers.timestamps import DateOnlyPolicy, implausible, parse_published

log = logging.getLogger(__name__)

# A cashtag: $ + 1-6 letters, optionally a class suffix ($BRK.A, $RDS-B); not "$5" or "$ 15".
CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:[.-][A-Za-z]{1,2})?)\b")


class ColumnMapping(Strict):
    """Which source columns make up a Document, and how to read its time stamps."""

    doc_id: str | tuple[str, ...]  # several columns are joined with ':'
    text: str
    published_at: str
    entities: str | None = None  # a ticker, a separated list (entity_sep) or a list column
    entity_sep: str | None = None
    cashtags: bool = False  # also take tickers from $CASHTAGS in the text
    title: str | None = None
    publisher: str | None = None
    url: str | None = None
    timezone: str | None = None  # zone of naive timestamps and date-only values; None = refuse them
    date_only: DateOnlyPolicy = "end_of_day"
    time_format: str | None = None  # strptime layout when the source is not ISO-8601
    extra: tuple[str, ...] = ()  # source columns carried through unchanged
    encoding: str = "utf-8"  # of CSV/JSONL files without a byte-order mark (a mark wins)
    earliest: date = date(1990, 1, 1)  # published_at before this day (UTC) is implausible: rejected
    latest: date | None = None  # ... after the end of this day (UTC); None = one day after ingestion

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}: use an IANA name such as America/New_York or UTC") from exc
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}: use a Python codec name such as utf-8, latin-1, cp1252") from exc
        return value

    def plausible_range(self, ingested_at: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The published_at range a document may have (see nlp.readers.timestamps)."""
        day = pd.Timedelta(days=1)
        latest = ingested_at + day if self.latest is None else pd.Timestamp(self.latest, tz="UTC") + day - pd.Timedelta(1, "us")
        return pd.Timestamp(self.earliest, tz="UTC"), latest

    def source_columns(self) -> list[str]:
        ids = [self.doc_id] if isinstance(self.doc_id, str) else list(self.doc_id)
        cols = ids + [self.text, self.published_at]
        cols += [c for c in (self.entities, self.title, self.publisher, self.url) if c]
        return list(dict.fromkeys(cols + list(self.extra)))


class Preset(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str  # Document.source
    files: tuple[str, ...]  # dataset name + file, or "sample" + file
    mapping: ColumnMapping

    def path(self) -> Path:
        where, name = self.files
        return SAMPLE_DIR / name if where == "sample" else dataset_path(where, name)


PRESETS: dict[str, Preset] = {
    "news": Preset(
        source="news",
        files=("dated_news", "analyst_ratings_processed_partial_to2018.parquet"),
        mapping=ColumnMapping(doc_id="source_row", text="headline", published_at="published_at",
                              entities="ticker", publisher="publisher"),
    ),
    "social": Preset(
        source="social",
        files=("dated_social", "stocknet_tweets.parquet"),
        mapping=ColumnMapping(doc_id=("ticker", "tweet_id"), text="text", published_at="published_at",
                              time_format="%a %b %d %H:%M:%S %z %Y", entities="ticker",
                              extra=("tweet_id", "lang", "is_retweet")),
    ),
    "transcripts": Preset(
        source="transcript",
        files=("earnings_transcripts", "maec_transcripts.parquet"),
        mapping=ColumnMapping(doc_id="call_id", text="text", published_at="call_date", entities="ticker",
                              title="title", timezone="America/New_York", date_only="end_of_day"),
    ),
    "sample:news": Preset(
        source="news",
        files=("sample", "news.csv"),
        mapping=ColumnMapping(doc_id="doc_id", text="headline", published_at="published_at",
                              entities="tickers", entity_sep=";", publisher="publisher", url="url"),
    ),
    "sample:social": Preset(
        source="social",
        files=("sample", "social.jsonl"),
        mapping=ColumnMapping(doc_id="id", text="text", published_at="created_at", cashtags=True,
                              extra=("user",)),
    ),
    "sample:transcripts": Preset(
        source="transcript",
        files=("sample", "transcripts.jsonl"),
        mapping=ColumnMapping(doc_id="call_id", text="text", published_at="call_start", entities="ticker",
                              title="title", extra=("company",)),
    ),
}


def iter_documents(
    paths: str | Path | Iterable[str | Path],
    mapping: ColumnMapping,
    source: str,
    rejects: Rejects,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ingested_at: pd.Timestamp | None = None,
    max_field_chars: int = CSV_FIELD_LIMIT,
) -> Iterator[pd.DataFrame]:
    """Stream Document frames (DOCUMENT_SCHEMA columns, then ``mapping.extra``)."""
    if source not in SOURCES:
        raise ContractError(f"source must be one of {list(SOURCES)}, got {source!r}")
    ingested_at = ingested_at or pd.Timestamp.now(tz="UTC")
    seen: dict[str, str] = {}  # doc_id -> "file:line" of its first occurrence
    needed = mapping.source_columns()
    before, n = len(rejects), 0
    for raw in iter_records(paths, rejects, chunk_rows, columns=needed, encoding=mapping.encoding,
                            max_field_chars=max_field_chars):
        docs = to_documents(raw, mapping, source, rejects, seen, ingested_at)
        n += len(docs)
        if len(docs):
            yield docs
    log.info("%s: %d documents, %d rejects", paths, n, len(rejects) - before)


def read_documents(
    paths: str | Path | Iterable[str | Path],
    mapping: ColumnMapping,
    source: str,
    rejects: Rejects,
    ingested_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The whole of ``iter_documents`` as one frame (empty frame in contract form if no row)."""
    parts = list(iter_documents(paths, mapping, source, rejects, ingested_at=ingested_at))
    if not parts:
        return empty_documents(mapping.extra)
    return pd.concat(parts, ignore_index=True)


def load_preset(name: str, rejects: Rejects, **overrides) -> pd.DataFrame:
    """Documents of a preset; ``overrides`` replace mapping fields (e.g. ``timezone="UTC"``)."""
    preset = get_preset(name)
    mapping = preset.mapping.model_copy(update=overrides) if overrides else preset.mapping
    return read_documents(preset.path(), mapping, preset.source, rejects)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UnknownNameError(f"unknown document preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]


def empty_documents(extra: tuple[str, ...] = ()) -> pd.DataFrame:
    df = DOCUMENT_SCHEMA.empty_table().to_pandas()
    for col in extra:
        df[col] = pd.Series(dtype="object")
    return df


def to_documents(
    raw: pd.DataFrame,
    mapping: ColumnMapping,
    source: str,
    rejects: Rejects,
    seen: dict[str, str] | None = None,
    ingested_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One chunk of raw rows (with ``_source``/``_line``) -> valid Documents; bad rows rejected."""
    where = str(raw["_source"].iloc[0]) if "_source" in raw and len(raw) else "documents"
    missing = [c for c in mapping.source_columns() if c not in raw.columns]
    if missing:
        raise ContractError(
            f"{where}: column mapping names missing column(s) {missing}; got columns "
            f"{[c for c in raw.columns if not c.startswith('_')]}"
        )
    ingested_at = ingested_at or pd.Timestamp.now(tz="UTC")
    raw = raw.assign(_line=raw["_line"] if "_line" in raw else range(1, len(raw) + 1))
    if mapping.entities:
        listed, reasons = _listed_entities(raw[mapping.entities])
        raw = _drop(raw.assign(**{mapping.entities: listed}), reasons, mapping.entities, raw[mapping.entities],
                    where, rejects)
    for col, types, what in ((mapping.text, (str,), "a string"),
                             (mapping.entities, (str, list, tuple, np.ndarray), "a ticker string or a list of tickers")):
        if col:
            raw = _drop(raw, _wrong_type(raw[col], types, f"{col} must be {what}"), col, raw[col], where, rejects)
    df = pd.DataFrame(index=raw.index)
    df["_line"] = raw["_line"]
    df["doc_id"] = _doc_ids(raw, mapping.doc_id)
    df["source"] = source
    df["text"] = raw[mapping.text].astype("string")
    for field in ("title", "publisher", "url"):
        col = getattr(mapping, field)
        df[field] = raw[col].astype("string") if col else None
    df["entities"] = _entities(raw, mapping)
    for col in mapping.extra:
        df[col] = raw[col]

    ts, reasons = parse_published(raw[mapping.published_at], mapping.timezone, mapping.date_only, mapping.time_format)
    df["published_at"] = ts
    reasons = reasons.where(reasons.notna(), implausible(ts, *mapping.plausible_range(ingested_at)))
    df = _drop(df, reasons, mapping.published_at, raw[mapping.published_at], where, rejects)

    if seen is not None:
        dup = df["doc_id"].map(lambda d: f"duplicate doc_id: first seen at {seen[d]}" if d in seen else None)
        df = _drop(df, dup.astype("object"), "doc_id", df["doc_id"], where, rejects)

    out = validate_documents(df.assign(ingested_at=ingested_at), rejects, where,
                             keep=mapping.extra)
    if seen is not None:
        first: dict = {}
        for doc_id, line in zip(df["doc_id"].tolist(), df["_line"].tolist()):
            first.setdefault(doc_id, line)
        for doc_id in out["doc_id"].tolist():
            seen.setdefault(doc_id, f"{where}:{first[doc_id]}")
    return out


def _listed_entities(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Text holding a JSON list (``"[\\"LMSL\\", \\"RDLP\\"]"``: a writer that stringified a list) as
    the list, and a reason for text that starts with ``[`` but is not a JSON list of strings.

    No ticker starts with ``[``: taken as one ticker, such text would be a wrong entity, silently.
    """
    reasons = pd.Series(None, index=values.index, dtype="object")
    if not (isinstance(values.dtype, pd.StringDtype) or values.dtype == object):
        return values, reasons
    text = values.map(lambda v: isinstance(v, str) and v.lstrip().startswith("["))
    if not text.any():
        return values, reasons
    values = values.astype(object)
    for idx in text[text].index:
        try:
            items = json.loads(values[idx])
        except ValueError:
            items = None
        if isinstance(items, list) and all(isinstance(t, str) for t in items):
            values[idx] = items
        else:
            reasons[idx] = "entities: text starting with '[' is not a JSON list of tickers"
    return values, reasons


def _wrong_type(values: pd.Series, types: tuple[type, ...], expected: str) -> pd.Series:
    """A reason for each present value that is not one of ``types`` (e.g. a number as text)."""
    if str in types and isinstance(values.dtype, pd.StringDtype):  # CSV columns: all text
        return pd.Series(None, index=values.index, dtype="object")

    def why(value) -> str | None:
        if value is None or value is pd.NA or isinstance(value, types) or (isinstance(value, float) and np.isnan(value)):
            return None
        return f"wrong type: {expected}, got {type(value).__name__}"

    return values.map(why).astype("object")


def _drop(df: pd.DataFrame, reasons: pd.Series, column: str, values: pd.Series, where: str,
          rejects: Rejects) -> pd.DataFrame:
    """Rows with a reason go to ``rejects`` (line, column, offending value); the rest are returned."""
    bad = reasons.notna()
    for idx in df.index[bad]:
        rejects.add(where, int(df.at[idx, "_line"]), column, reasons[idx], values[idx])
    return df.loc[~bad]


def documents_table(df: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    """Documents as an Arrow table: the contract schema, then extras (types inferred if no schema)."""
    if schema is None:
        schema = DOCUMENT_SCHEMA
        for col in (c for c in df.columns if c not in DOCUMENT_SCHEMA.names):
            schema = schema.append(pa.field(col, pa.Array.from_pandas(df[col]).type))
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


def write_documents(frames: Iterable[pd.DataFrame], path: str | Path, extra: tuple[str, ...] = ()) -> int:
    """Stream Document frames into one Parquet file, atomically; returns the number of rows."""
    import pyarrow.parquet as pq

    rows = 0
    writer = None
    with atomic_path(path) as tmp:
        try:
            for df in frames:
                table = documents_table(df, writer.schema if writer else None)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
                rows += table.num_rows
            if writer is None:
                pq.write_table(documents_table(empty_documents(extra)), tmp, compression="zstd")
        finally:
            if writer is not None:
                writer.close()
    return rows


def _doc_ids(raw: pd.DataFrame, spec: str | tuple[str, ...]) -> pd.Series:
    cols = [spec] if isinstance(spec, str) else list(spec)
    parts = [raw[c].astype("string").str.strip() for c in cols]
    ids = parts[0]
    for p in parts[1:]:
        ids = ids + ":" + p
    return ids


def _entities(raw: pd.DataFrame, mapping: ColumnMapping) -> list[list[str]]:
    col = raw[mapping.entities] if mapping.entities else pd.Series([None] * len(raw), index=raw.index)
    texts = raw[mapping.text] if mapping.cashtags else None
    out = []
    for i, value in enumerate(col.tolist()):
        if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
            tickers: list[str] = []
        elif isinstance(value, str):
            items = value.split(mapping.entity_sep) if mapping.entity_sep else [value]
            tickers = [t.strip().upper() for t in items if t.strip()]
        else:  # a list column (Parquet list<string>)
            tickers = [str(t).strip().upper() for t in value if t is not None and str(t).strip()]
        if texts is not None and isinstance(texts.iloc[i], str):
            tickers += [m.upper() for m in CASHTAG.findall(texts.iloc[i])]
        out.append(list(dict.fromkeys(tickers)))
    return out
