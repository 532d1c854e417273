"""Raw rows of CSV, JSON-lines and Parquet files, each tagged with where it came from.

Every row carries ``_source`` (the file) and ``_line`` (1-based physical line of the record's
first line for CSV/JSONL, 1-based row number for Parquet), so a reject can point a person at the
exact place in the file.

Decision: CSV and JSONL are parsed here with Python's ``csv`` and ``json`` modules, decoding
the file's encoding as a stream (invalid bytes kept as surrogates, then flagged per row), not
with pyarrow's CSV/JSON readers. pyarrow cannot report the line of a good row (its
``InvalidRow.number`` ignores newlines inside quoted values), and one invalid UTF-8 byte or one
broken JSON line aborts its whole block; here such a row becomes a reject and the rest loads.
Parquet (already typed and valid UTF-8) streams through ``pyarrow.dataset`` record batches. All
three are streamed in chunks of ``chunk_rows``; a chunk never mixes files.

Text files are read in ``encoding`` (default UTF-8) unless they start with a byte-order mark,
which wins (UTF-8, UTF-16 or UTF-32). A file without a mark whose first bytes are a quarter NUL is
UTF-16/32 or binary, not UTF-8: it is refused as a whole, naming the encoding to pass.

Unbalanced quotes: a quoted CSV field may span lines. A record that spans lines but is not
well-formed CSV (its closing quote is not followed by a delimiter or the end of the line, the
file ends inside the quotes, or the field count is wrong), and whose later lines are complete
rows on their own (the header's number of fields), is taken as a stray opening quote: the line
holding it is rejected and reading resumes at the next line. A stray quote then costs one row
instead of silently merging the rows after it into one text.
"""
from __future__ import annotations

import codecs
import csv
import glob
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from core.errors import UsageError
from core.rejects import Rejects
from nlp.contracts import ContractError

SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
DEFAULT_CHUNK_ROWS = 50_000
CSV_FIELD_LIMIT = 131_072  # Python's csv default; a larger --max-chars lifts it
# Longest marks first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def undecodable(encoding: str) -> str:
    return f"undecodable bytes: not valid {encoding} text (if the file has another encoding, pass --encoding)"


def expand_paths(spec: str | Path | Iterable[str | Path]) -> list[Path]:
    """A file, a folder (its supported files, sorted) or a glob -> the list of files to read."""
    if not isinstance(spec, (str, Path)):
        return _distinct([p for s in spec for p in expand_paths(s)])
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    elif path.exists():
        if not path.is_file():  # a FIFO, socket or device: its bytes can be read once, and jobs read twice
            raise UsageError(f"{path} is not a regular file (a pipe, socket or device)",
                             hint="write the stream to a file first, then read that file")
        files = [path]
    else:
        files = sorted(Path(p) for p in glob.glob(str(spec), recursive=True) if Path(p).is_file())
    if not files:
        raise UsageError(f"no CSV/JSONL/Parquet file matches {spec}",
                         hint="check the path; a folder is read recursively, a glob may use * and **")
    for f in files:
        if f.suffix.lower() not in SUFFIXES:
            raise UsageError(f"{f}: unsupported file type {f.suffix!r}; expected one of {sorted(SUFFIXES)}")
    return files


def _distinct(files: list[Path]) -> list[Path]:
    """Refuse a file named twice (directly, through a folder or glob, or a link): its rows would be
    read twice, every document a duplicate of itself."""
    seen: dict[Path, Path] = {}
    for f in files:
        real = f.resolve()
        if real in seen:
            raise UsageError(f"input {f} is given twice (also as {seen[real]})", hint="name each input file once")
        seen[real] = f
    return files


def file_encoding(path: Path, encoding: str = "utf-8") -> str:
    """The codec to read ``path`` with: a byte-order mark wins over ``encoding``."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    if codecs.lookup(encoding).name == "utf-8" and head.count(b"\x00") * 4 > len(head):
        raise UsageError(f"{path}: not UTF-8 text: a quarter of its first bytes are NUL (UTF-16/32 without a "
                         "byte-order mark, or a binary file)", hint="pass --encoding utf-16-le (or utf-16-be)")
    return encoding


def input_columns(path: Path, encoding: str = "utf-8") -> list[str]:
    """Column names of a CSV/JSONL/Parquet file, read from its header/first record/schema only."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind == "parquet":
        try:
            return ds.dataset(path, format="parquet").schema.names
        except pa.ArrowException as exc:
            raise UsageError(f"{path}: not a readable Parquet file ({exc})") from exc
    lines = (line for line in _decoded_lines(path, encoding) if line.strip())
    first = next(lines, "")
    if kind == "csv":
        return next(csv.reader([first]), [])
    try:
        record = json.loads(first) if first else {}
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        raise UsageError(f"{path}: the first record is not a JSON object", hint="JSONL holds one object per line")
    return list(record)


def iter_records(
    paths: str | Path | Iterable[str | Path],
    rejects: Rejects,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    columns: list[str] | None = None,
    encoding: str = "utf-8",
    max_field_chars: int = CSV_FIELD_LIMIT,
) -> Iterator[pd.DataFrame]:
    """Stream raw rows as DataFrames (string/object columns plus ``_source``, ``_line``).

    ``columns`` limits Parquet reads to the columns needed (CSV keeps every field). In JSONL a
    key is optional per record, so a requested key that no record of a chunk has becomes an
    all-missing column (its rows are then judged like any missing value) instead of an error.
    Rows that cannot be decoded or parsed go to ``rejects``; a CSV field may hold up to
    ``max_field_chars`` characters (at least Python's default).
    """
    for path in expand_paths(paths):
        kind = SUFFIXES[path.suffix.lower()]
        if kind == "parquet":
            chunks = _iter_parquet(path, chunk_rows, columns)
        else:
            lines = _decoded_lines(path, encoding)
            reader = (_csv_rows(path, lines, rejects, encoding, max(max_field_chars, CSV_FIELD_LIMIT)) if kind == "csv"
                      else _jsonl_rows(path, lines, rejects, encoding))
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


def _decoded_lines(path: Path, encoding: str) -> Iterator[str]:
    """Lines split on LF only (nothing translated); bad bytes survive as lone surrogates."""
    codec = file_encoding(path, encoding)
    with open(path, encoding=codec, errors="surrogateescape", newline="\n") as fh:
        try:
            yield from fh
        except UnicodeDecodeError as exc:  # codecs whose errors surrogateescape cannot carry (UTF-16/32)
            raise UsageError(f"{path}: not valid {codec} text ({exc.reason} at byte {exc.start})",
                             hint="pass --encoding with the file's encoding") from exc


def has_surrogates(value: str) -> bool:
    """True if ``value`` holds lone surrogates: bytes that did not decode (surrogateescape)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _noted(numbered: Iterator[tuple[int, str]], taken: list[tuple[int, str]]) -> Iterator[str]:
    """Lines for ``csv.reader``, each (number, line) handed out noted in ``taken``."""
    for item in numbered:
        taken.append(item)
        yield item[1]


def _is_row(lines: list[str], n_fields: int, strict: bool = False) -> bool:
    """True if ``lines`` are exactly one CSV record of ``n_fields`` fields."""
    try:
        rows = list(csv.reader(lines, strict=strict))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == n_fields


def _stray_quote(lines: list[str], n_fields: int) -> bool:
    """A record over several lines that only a stray opening quote explains (module docstring)."""
    return not _is_row(lines, n_fields, strict=True) and any(_is_row([line], n_fields) for line in lines[1:])


def _csv_rows(path: Path, lines: Iterable[str], rejects: Rejects, encoding: str,
              field_limit: int) -> Iterator[tuple[int, dict]]:
    # Lines are split on LF only and nothing is translated (what newline="" does, except that a
    # lone CR is not a line break): quoted "\r\n" survives, and a CR left unquoted by a sloppy
    # writer rejects its whole row instead of silently cutting it in two.
    csv.field_size_limit(field_limit)
    numbered: Iterator[tuple[int, str]] = enumerate(lines, start=1)
    taken: list[tuple[int, str]] = []
    reader = csv.reader(_noted(numbered, taken))
    try:
        header = next(reader)
    except StopIteration:
        return
    if any(has_surrogates(h) for h in header):
        raise UsageError(f"{path}: the header line is not valid {encoding} text", hint="pass --encoding")
    while True:
        taken.clear()
        try:
            fields, why = next(reader), None
        except StopIteration:
            return
        except csv.Error as exc:  # an unquoted CR, a field over the limit
            fields, why = None, str(exc)
        start = taken[0][0]
        if len(taken) > 1 and _stray_quote([line for _, line in taken], len(header)):
            rejects.add(str(path), start, "", "malformed CSV row: unbalanced quote (the quoted field would swallow "
                        "the next line, which is a row of its own)", taken[0][1])
            numbered = itertools.chain(taken[1:], numbered)  # re-read the swallowed lines as rows
            reader = csv.reader(_noted(numbered, taken))
            continue
        if why is not None:
            if "new-line character" in why:
                why = "carriage return inside an unquoted field"
            elif "field limit" in why:
                why = f"a field is longer than {field_limit:,} characters (raise --max-chars to read it)"
            rejects.add(str(path), start, "", f"malformed CSV row: {why}", "")
            continue
        if not fields:  # a blank line separates nothing in CSV; it is not a row
            continue
        raw = ",".join(fields)
        if any(has_surrogates(f) for f in fields):
            rejects.add(str(path), start, "", undecodable(encoding), raw.encode("utf-8", "replace").decode())
        elif len(fields) != len(header):
            rejects.add(str(path), start, "", f"malformed CSV row: expected {len(header)} fields, got {len(fields)}", raw)
        else:
            yield start, dict(zip(header, fields))


def _jsonl_rows(path: Path, lines: Iterable[str], rejects: Rejects, encoding: str) -> Iterator[tuple[int, dict]]:
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if has_surrogates(line):
            rejects.add(str(path), line_no, "", undecodable(encoding), line.encode("utf-8", "replace").decode())
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rejects.add(str(path), line_no, "", f"malformed JSON line: {exc.msg} at column {exc.colno}", line)
            continue
        if not isinstance(obj, dict):
            rejects.add(str(path), line_no, "", f"malformed JSON line: expected an object, got {type(obj).__name__}", line)
            continue
        # json.loads turns an escaped lone surrogate (\ud800) into a str that no encoder accepts.
        if _LONE_SURROGATE_ESCAPE.search(line) and has_surrogates(json.dumps(obj, ensure_ascii=False)):
            rejects.add(str(path), line_no, "", "malformed JSON line: a \\u escape is a lone surrogate, not a character",
                        line)
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
