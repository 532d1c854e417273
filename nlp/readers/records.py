"""Raw rows of CSV, JSON-lines and Parquet files, each tagged with where it came from.

Every row carries ``_source`` (the file) and ``_line`` (1-based physical line of the record's
first line for CSV/JSONL, 1-based row number for Parquet), so a reject can point a person at the
exact place in the file.

Decision: CSV and JSONL are parsed here with Python's ``csv`` and ``json`` modules,
decoding UTF-8 line by line (invalid bytes kept as surrogates, then flagged per row), not with pyarrow's CSV/JSON readers. pyarrow cannot report the line of
a good row (its ``InvalidRow.number`` ignores newlines inside quoted values), and one invalid
UTF-8 byte or one broken JSON line aborts its whole block; here such a row becomes a reject and
the rest loads. Parquet (already typed and valid UTF-8) streams through ``pyarrow.dataset``
record batches. All three are streamed in chunks of ``chunk_rows``; a chunk never mixes files.
"""
from __future__ import annotations

import csv
import glob
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from nlp.contracts import ContractError
from nlp.rejects import Rejects

SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
DEFAULT_CHUNK_ROWS = 50_000
_UNDECODABLE = "undecodable bytes: expected UTF-8 text"


def expand_paths(spec: str | Path | Iterable[str | Path]) -> list[Path]:
    """A file, a folder (its supported files, sorted) or a glob -> the list of files to read."""
    if not isinstance(spec, (str, Path)):
        return [p for s in spec for p in expand_paths(s)]
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    elif path.exists():
        files = [path]
    else:
        files = sorted(Path(p) for p in glob.glob(str(spec), recursive=True) if Path(p).is_file())
    if not files:
        raise FileNotFoundError(f"no CSV/JSONL/Parquet file matches {spec}")
    for f in files:
        if f.suffix.lower() not in SUFFIXES:
            raise ValueError(f"{f}: unsupported file type {f.suffix!r}; expected one of {sorted(SUFFIXES)}")
    return files


def iter_records(
    paths: str | Path | Iterable[str | Path],
    rejects: Rejects,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    columns: list[str] | None = None,
) -> Iterator[pd.DataFrame]:
    """Stream raw rows as DataFrames (string/object columns plus ``_source``, ``_line``).

    ``columns`` limits Parquet reads to the columns needed (CSV keeps every field). In JSONL a
    key is optional per record, so a requested key that no record of a chunk has becomes an
    all-missing column (its rows are then judged like any missing value) instead of an error.
    Rows that cannot be decoded or parsed go to ``rejects``.
    """
    for path in expand_paths(paths):
        kind = SUFFIXES[path.suffix.lower()]
        if kind == "parquet":
            chunks = _iter_parquet(path, chunk_rows, columns)
        else:
            reader = _csv_rows(path, rejects) if kind == "csv" else _jsonl_rows(path, rejects)
            chunks = _chunk(reader, chunk_rows)
        for df in chunks:
            if kind == "jsonl" and columns:
                for col in columns:
                    if col not in df:
                        df[col] = None
            df["_source"] = str(path)
            yield df


def _chunk(rows: Iterator[tuple[int, dict]], chunk_rows: int) -> Iterator[pd.DataFrame]:
    buf: list[dict] = []
    lines: list[int] = []
    for line, row in rows:
        buf.append(row)
        lines.append(line)
        if len(buf) >= chunk_rows:
            yield _frame(buf, lines)
            buf, lines = [], []
    if buf:
        yield _frame(buf, lines)


def _frame(rows: list[dict], lines: list[int]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows)
    df["_line"] = lines
    return df


def _decoded_lines(path: Path) -> Iterator[str]:
    """Lines split on LF only, decoded one at a time; bad bytes survive as lone surrogates."""
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh):
            if i == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            yield raw.decode("utf-8", errors="surrogateescape")


def has_surrogates(value: str) -> bool:
    """True if ``value`` holds lone surrogates: bytes that did not decode (surrogateescape)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _csv_rows(path: Path, rejects: Rejects) -> Iterator[tuple[int, dict]]:
    # Lines are split on LF only and nothing is translated (what newline="" does, except that a
    # lone CR is not a line break): quoted "\r\n" survives, and a CR left unquoted by a sloppy
    # writer rejects its whole row instead of silently cutting it in two.
    reader = csv.reader(_decoded_lines(path))
    try:
        header = next(reader)
    except StopIteration:
        return
    if any(has_surrogates(h) for h in header):
        raise ValueError(f"{path}: the header line is not valid UTF-8")
    end = reader.line_num
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a NUL byte, an unquoted CR, an unterminated quote at EOF
            end = reader.line_num
            why = "carriage return inside an unquoted field" if "new-line character" in str(exc) else str(exc)
            rejects.add(str(path), start, "", f"malformed CSV row: {why}", "")
            continue
        end = reader.line_num
        if not fields:  # a blank line separates nothing in CSV; it is not a row
            continue
        raw = ",".join(fields)
        if any(has_surrogates(f) for f in fields):
            rejects.add(str(path), start, "", _UNDECODABLE, raw.encode("utf-8", "replace").decode())
        elif len(fields) != len(header):
            rejects.add(str(path), start, "", f"malformed CSV row: expected {len(header)} fields, got {len(fields)}", raw)
        else:
            yield start, dict(zip(header, fields))


def _jsonl_rows(path: Path, rejects: Rejects) -> Iterator[tuple[int, dict]]:
    for line_no, line in enumerate(_decoded_lines(path), start=1):
        if not line.strip():
            continue
        if has_surrogates(line):
            rejects.add(str(path), line_no, "", _UNDECODABLE, line.encode("utf-8", "replace").decode())
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rejects.add(str(path), line_no, "", f"malformed JSON line: {exc.msg} at column {exc.colno}", line)
            continue
        if not isinstance(obj, dict):
            rejects.add(str(path), line_no, "", f"malformed JSON line: expected an object, got {type(obj).__name__}", line)
            continue
        yield line_no, obj


def _iter_parquet(path: Path, chunk_rows: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    dataset = ds.dataset(path, format="parquet")
    if columns is not None:
        missing = [c for c in columns if c not in dataset.schema.names]
        if missing:
            raise ContractError(f"{path}: missing column(s) {missing}; got columns {dataset.schema.names}")
    first = 1
    for batch in dataset.to_batches(columns=columns, batch_size=chunk_rows):
        if batch.num_rows == 0:
            continue
        df = batch.to_pandas()
        df["_line"] = range(first, first + batch.num_rows)
        first += batch.num_rows
        yield df
