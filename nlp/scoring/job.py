"""A resumable, streaming batch scoring job.

Layout of ``--out``::

    manifest.json                      # job fingerprint, arguments, model, inputs; status + counts at the end
    parts.jsonl                        # one line per finished chunk, appended after its files exist
    scores/part-<chunk>.parquet        # Score rows (nlp.contracts.SCORE_SCHEMA; pd.read_parquet(<out>/scores) reads all)
    documents/part-<chunk>.parquet     # transcripts' document aggregates (units.AGGREGATE_SCHEMA)
    embeddings/part-<chunk>.parquet    # with --embed: one embedding row per document (nlp.embeddings)
    rejects/part-<chunk>.jsonl         # rejects met while making that chunk
    rejects.jsonl                      # all rejects, written when the job completes

Resume protocol (kill -9 safe): chunk ids are deterministic (file index + chunk index of the
reader's stream, whose chunking depends only on the input and ``chunk_rows``). A chunk's files
are written to temp files and renamed into place, then one line is appended to ``parts.jsonl``
and fsynced. A restart with the same arguments re-reads the input (cheap next to scoring), skips
every chunk listed in ``parts.jsonl`` and rewrites, under the same names, any chunk whose files
were renamed but not yet listed. A torn last line is cut off first. Scores are exact functions
of (text, model, numeric path, batch shape), so the rows equal those of an uninterrupted run bit
for bit; ``ingested_at`` is fixed once per job in the manifest for the same reason. The job
fingerprint (arguments, model content hash, input paths and content hashes; not mtimes, so a
``touch`` or a copy keeps a job resumable) guards against resuming into a folder written by a
different job. ``--out`` is checked (a folder, writable, not another job's) before anything is
written. There is no ``source=`` partition folder: the Score rows carry ``source`` themselves,
and a hive key of the same name would clash with that column in ``pd.read_parquet``.

Entity level (``JobConfig.entity_model``, off by default): each unit that names a ticker of its
document (a ``$CASHTAG`` or an alias-table name, :meth:`nlp.entities.EntityResolver.mentions`)
also gets one row per such ticker, ``entity`` set, scored by the entity model on the unit's text
with that first mention marked (:mod:`nlp.entity_input`). The unit's own row (``entity`` null, the
sentence model's) stays, so document aggregates and market-wide features are unchanged; tickers
a unit does not name (a vendor's tag) have no entity row. All rows of such a job carry
``model_id`` = ``<sentence model id>+<entity model id>``: features never mix them with a
sentence-only job's rows (``signals.features`` reads one model_id). The entity model's hash and
numeric path enter the fingerprint; the manifest records it under ``entity_model``.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import atomic_write_text
from core.errors import UsageError
from core.hashing import file_sha256
from core.lifecycle import marks_interruption
from core.rejects import Rejects
from nlp.contracts import ContractError
from nlp.scoring.config import JobConfig
from nlp.scoring.quality import check_text
from nlp.scoring.units import AGGREGATE_SCHEMA, document_aggregates, entity_units, score_rows, to_units

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"  # held (flock) by the job writing the folder


class JobMismatch(UsageError, RuntimeError):
    """The output folder belongs to a job with other arguments, model or inputs."""


class JobBusy(UsageError):
    """Another scoring job is writing the same output folder right now."""


@dataclass
class JobSpec:
    inputs: list[str]
    source: str  # news | social | transcript (resolved; see score_cli for "auto")
    mapping: object  # nlp.readers.documents.ColumnMapping
    model_path: Path | None  # the model a scorer loads (transformers); None for model-free scorers
    out: Path
    config: JobConfig = field(default_factory=JobConfig)
    scorer: str = "transformer"  # a name in nlp.registry.scorers


@dataclass
class Counts:
    docs_read: int = 0
    docs_scored: int = 0
    docs_rejected: int = 0  # by the job's text checks (the reader's own rejects are in reader_rejects)
    reader_rejects: int = 0
    units_scored: int = 0
    units_deduplicated: int = 0  # units answered from the job's dedup cache
    entity_rows: int = 0  # (unit, ticker) rows from the entity model (JobConfig.entity_model)
    truncated: int = 0
    html_stripped: int = 0
    chunks_done: int = 0
    chunks_skipped: int = 0  # finished by an earlier run of this job
    docs_skipped: int = 0

    def add(self, other: dict) -> None:
        for k, v in other.items():
            if hasattr(self, k):
                setattr(self, k, getattr(self, k) + v)


def _file_identity(path: Path) -> dict:
    return {"path": str(path.resolve()), "size": path.stat().st_size, "sha256": file_sha256(path)}


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that cannot hold a job, before anything is written."""
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is a file, not a folder", hint="pass a folder path for --out")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write in {existing} ({exc.strerror})",
                         hint="pass a writable folder for --out") from exc


def _existing_manifest(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or "fingerprint" not in manifest:
        raise UsageError(f"{path} is not a scoring job's manifest", hint="use a new --out folder")
    return manifest


def fingerprint(spec: JobSpec, files: list[Path], scorer_identity: dict,
                embed_hash: str | None = None, entity_identity: dict | None = None) -> tuple[str, dict]:
    # The embed and entity settings are part of the identity only when on (with their models'
    # content hashes): fingerprints of jobs without them are unchanged by their existence.
    off = set() if spec.config.embed else {"embed", "embed_model"}
    if spec.config.entity_model is None:
        off.add("entity_model")
    ident = {
        "source": spec.source,
        "mapping": spec.mapping.model_dump(mode="json"),
        "config": spec.config.model_dump(mode="json", exclude={"engine_kind", "ray_concurrency", "use_cache", *off}),
        **scorer_identity,  # a transformer's numeric path and model_hash
        "inputs": [_file_identity(f) for f in files],
    }
    ident["config"]["engine"].pop("threads", None)  # threads do not change results
    if spec.config.embed:
        ident["embed_model_hash"] = embed_hash
    if entity_identity is not None:
        ident["entity_scorer"] = entity_identity
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
    return digest, ident


def _atomic_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a disk that filled up gets its space back for the manifest
        raise


def _read_parts(path: Path) -> dict[str, dict]:
    """Finished chunks; a torn last line (killed mid-append) is cut off the file."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with open(path, "r+b") as fh:
            fh.truncate(len(data))
    done = {}
    for line in data.decode().splitlines():
        entry = json.loads(line)
        done[entry["chunk"]] = entry
    return done


def _append_line(path: Path, entry: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _guarded(stream, path: Path, file_rejects: Rejects):
    """The reader's chunks until it fails on the file as a whole (e.g. a required column missing)."""
    try:
        yield from stream
    except (ContractError, ValueError, OSError, pa.ArrowException) as exc:
        file_rejects.add(str(path), 0, "", f"unreadable input file: {exc}", "")
        log.error("skipping the rest of %s: %s", path, exc)


def estimate_rows(files: list[Path]) -> int:
    """Rows to expect, for the progress bar's ETA (Parquet metadata; lines for CSV/JSONL)."""
    total = 0
    for f in files:
        if f.suffix.lower() == ".parquet":
            try:
                total += pq.ParquetFile(f).metadata.num_rows
            except (pa.ArrowException, OSError):  # not Parquet after all: the reader rejects it
                continue
        else:
            with open(f, "rb") as fh:
                total += sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24), b""))
            total -= f.suffix.lower() == ".csv"
    return max(total, 0)


class ChunkScorer:
    """Score one chunk of Documents: text checks, entities, units, scorer, rows."""

    def __init__(self, spec: JobSpec, scorer, model_id: str, labels: list[str], embedder=None,
                 entity_scorer=None) -> None:
        """``scorer``: texts -> ``nlp.protocol.Scored`` (the scorer's own, or through Ray or the cache);
        ``entity_scorer`` the same for marked texts (entity level on)."""
        self.spec, self.scorer, self.model_id, self.labels = spec, scorer, model_id, labels
        self.embedder = embedder  # nlp.embeddings.Embedder when the job embeds documents
        self.entity_scorer = entity_scorer
        self.last_embeddings: pa.Table | None = None  # the last call's embedding rows (embedder set)
        self.resolver = None
        if spec.config.resolve_entities or entity_scorer is not None:
            from nlp.entities import EntityResolver

            self.resolver = EntityResolver.default()

    def __call__(self, docs: pd.DataFrame, where: str, rejects: Rejects) -> tuple[pa.Table, pa.Table | None, dict]:
        cfg = self.spec.config
        keep, texts, html = [], [], 0
        for i, (doc_id, text) in enumerate(zip(docs["doc_id"], docs["text"])):
            checked = check_text(text, cfg.max_chars, cfg.strip_html, cfg.flag_non_english)
            html += checked.html_stripped
            if checked.reason:
                rejects.add(where, 0, "text", checked.reason, f"doc_id={doc_id}: {str(text)[:300]}")
            else:
                keep.append(i)
                texts.append(checked.text)
        docs = docs.iloc[keep].reset_index(drop=True)
        if cfg.resolve_entities and len(docs):
            docs["entities"] = self.resolver.resolve(texts, docs["entities"].tolist())
        units = to_units(docs["doc_id"].tolist(), texts, self.spec.source)
        doc_ids_with_units = set(units["doc_id"])
        for doc_id in docs["doc_id"]:
            if doc_id not in doc_ids_with_units:
                rejects.add(where, 0, "text", "empty text: no sentences after removing markers and headers", f"doc_id={doc_id}")
        scored = self.scorer(units["text"].tolist())
        if self.embedder is not None:  # the same unit texts the model scored
            self.last_embeddings = self.embedder.documents(units, docs)
        table = score_rows(units, docs, scored, self.labels, self.model_id)
        aggregates = document_aggregates(table) if self.spec.source == "transcript" else None
        stats = {"docs_scored": len(doc_ids_with_units),
                 "units_scored": len(units), "truncated": int(scored.truncated.sum()), "html_stripped": html,
                 "units_deduplicated": scored.deduplicated}
        if self.entity_scorer is not None:
            marked = entity_units(units, docs, self.resolver)
            if len(marked):
                escored = self.entity_scorer(marked["text"].tolist())
                table = pa.concat_tables([table, score_rows(marked, docs, escored, self.labels, self.model_id)])
                stats["truncated"] += int(escored.truncated.sum())
            stats["entity_rows"] = len(marked)
        return table, aggregates, stats


def run_job(spec: JobSpec, progress: bool = True) -> dict:
    """Run (or resume) a job; returns the final manifest with counts."""
    from nlp.readers.records import expand_paths
    from nlp.registry import scorers

    cfg = spec.config
    out = Path(spec.out)
    files = expand_paths(spec.inputs)
    check_out(out)
    _existing_manifest(out / "manifest.json")  # another folder's file fails before the model loads
    # check=True: `auto` must not depend on whether a check record happened to be cached (the
    # numeric path is part of the job fingerprint that guards resumes).
    scorer = scorers.get(spec.scorer).load(spec.model_path, config=cfg.engine, check=True)
    entity_scorer = load_entity_scorer(spec, scorer) if cfg.entity_model is not None else None
    embedder = None
    if cfg.embed:
        from nlp.embeddings import Embedder

        embedder = Embedder(cfg.embed_model, threads=cfg.engine.threads)
    fp, ident = fingerprint(spec, files, scorer.identity,
                            embed_hash=embedder.model_hash if embedder is not None else None,
                            entity_identity=entity_scorer.identity if entity_scorer is not None else None)
    with _exclusive(out), _disk_full(out):
        return _score_files(spec, files, fp, ident, scorer, embedder, progress, entity_scorer)


def load_entity_scorer(spec: JobSpec, scorer):
    """The scorer of ``JobConfig.entity_model``: a model that reads a marked entity, with the sentence model's labels."""
    from nlp.models import model_path
    from nlp.models.artifact import read_meta
    from nlp.registry import scorers

    path = model_path(spec.config.entity_model)
    if not read_meta(path).entity_markers:
        raise UsageError(f"entity_model {spec.config.entity_model}: {path} is a sentence model (it does not read a "
                         "marked entity)", hint="use the shipped `entity` model or one fine-tuned on entity sets")
    entity_scorer = scorers.get(spec.scorer).load(path, config=spec.config.engine, check=True)
    if entity_scorer.labels != scorer.labels:
        raise UsageError(f"entity_model {path} has labels {entity_scorer.labels}, the model {scorer.labels}")
    return entity_scorer


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` while the job runs: a second job into the same folder is refused.

    The manifest alone cannot: two jobs started together both find no manifest (loading the model
    takes seconds), both write, and only one job's rows survive. ``flock`` ends with the process,
    so a killed job never leaves the folder locked.
    """
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobBusy(f"{out} is being written by another scoring job right now",
                          hint="wait for it to finish, or use another --out folder") from None
        yield
    finally:
        os.close(fd)


@contextmanager
def _disk_full(out: Path) -> Iterator[None]:
    """A full disk (ENOSPC) ends the job with an error naming ``out`` and the manifest marked
    ``failed``, not ``running``; finished chunks stay listed, so a rerun resumes once there is space."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        path = out / "manifest.json"
        if path.exists():
            text = json.dumps(json.loads(path.read_text()) | {"status": "failed", "error": "no space left on device"},
                              indent=2) + "\n"
            try:
                atomic_write_text(path, text)
            except OSError:  # no room for a temp copy: rewrite in place, in the blocks the manifest holds
                path.write_text(text)
        raise UsageError(f"no space left on the device holding {out} while writing scores",
                         hint="free space (or move --out), then rerun the same command: the job resumes "
                              "from its finished chunks") from exc


def _cached_runner(scorer, cfg: JobConfig):
    """``texts -> Scored`` for ``scorer`` (local or Ray), behind the cross-job cache when it is on; and the cache."""
    from nlp.scoring.runner import make_runner

    run = make_runner(scorer, cfg)
    if not (cfg.use_cache and scorer.cache_key is not None):
        return run, None
    from nlp.scoring.score_cache import ScoreCache, default_root

    cache = ScoreCache(default_root(), scorer.cache_key, len(scorer.labels))
    return cache.wrap(run, scorer.normalize), cache


def _cache_summary(cache) -> dict | None:
    from nlp.scoring.score_cache import COMPACT_AT

    if cache is None:
        return None
    compacted = cache.compact(min_parts=COMPACT_AT)
    return {"folder": str(cache.folder), "hits": cache.hits, "misses": cache.misses, "parts_compacted": compacted}


def _score_files(spec: JobSpec, files: list[Path], fp: str, ident: dict, scorer, embedder, progress: bool,
                 entity_scorer=None) -> dict:
    """The job's work, under its folder lock: open or check the manifest, score, complete it."""
    from nlp.readers.documents import iter_documents

    cfg = spec.config
    out = Path(spec.out)
    model_id = scorer.name if entity_scorer is None else f"{scorer.name}+{entity_scorer.name}"
    manifest_path = out / "manifest.json"
    manifest = _existing_manifest(manifest_path)  # again, under the lock: a job may have started meanwhile
    if manifest is not None:
        if manifest["fingerprint"] != fp:
            raise JobMismatch(
                f"{out} holds job {manifest['fingerprint']} (other arguments, model or inputs); "
                f"this job is {fp}. Use a new --out folder, or delete the old one."
            )
        log.info("resuming job %s in %s", fp, out)
    else:
        manifest = {"fingerprint": fp, "job": ident, "model_id": model_id, "model_path": str(spec.model_path),
                    "created_at": datetime.now(timezone.utc).isoformat(), "status": "running",
                    "ingested_at": pd.Timestamp.now(tz="UTC").isoformat()}
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    ingested_at = pd.Timestamp(manifest["ingested_at"])
    parts_log = out / "parts.jsonl"
    done = _read_parts(parts_log)
    run, cache = _cached_runner(scorer, cfg)
    entity_run, entity_cache = _cached_runner(entity_scorer, cfg) if entity_scorer is not None else (None, None)
    chunk_scorer = ChunkScorer(spec, run, model_id, scorer.labels, embedder, entity_run)
    counts = Counts()
    rejects_parts: list[Path] = []
    file_rejects = Rejects()  # rows rejected after a file's last chunk
    unreadable = Rejects()  # one per file that failed as a whole
    seen: set[str] = set()  # doc ids across files (the reader checks within a file)

    from core.progress import Progress

    def mark_interrupted(signame: str) -> None:  # a rerun resumes from the finished chunks
        atomic_write_text(manifest_path, json.dumps(manifest | {"status": "interrupted", "signal": signame}, indent=2) + "\n")

    bar = Progress(total=estimate_rows(files), unit="doc", enabled=progress, dynamic_ncols=True, desc="scoring")
    try:
        with marks_interruption(mark_interrupted):
            for fi, path in enumerate(files):
                reader_rejects = Rejects()
                seen_before = len(reader_rejects)
                stream = iter_documents(path, spec.mapping, spec.source, reader_rejects, chunk_rows=cfg.rows_per_chunk(spec.source),
                                        ingested_at=ingested_at, max_field_chars=cfg.max_chars)
                for ci, docs in enumerate(_guarded(stream, path, unreadable)):
                    chunk = f"f{fi:05d}-c{ci:06d}"
                    chunk_rejects = Rejects(reader_rejects.items[seen_before:])
                    seen_before = len(reader_rejects)
                    dup = docs["doc_id"].isin(seen)
                    for doc_id in docs.loc[dup, "doc_id"]:
                        chunk_rejects.add(str(path), 0, "doc_id", "duplicate doc_id: also in an earlier input file", doc_id)
                    docs = docs.loc[~dup].reset_index(drop=True)
                    seen.update(docs["doc_id"])
                    rej_path = out / "rejects" / f"part-{chunk}.jsonl"
                    rejects_parts.append(rej_path)
                    if chunk in done:
                        counts.chunks_skipped += 1
                        counts.docs_skipped += len(docs)
                        counts.add(done[chunk]["counts"])
                        bar.update(len(docs) + len(chunk_rejects))
                        continue
                    n_reader = len(chunk_rejects)
                    table, aggregates, stats = chunk_scorer(docs, str(path), chunk_rejects)
                    stats["docs_read"] = len(docs)
                    stats["docs_rejected"] = len(chunk_rejects) - n_reader
                    stats["reader_rejects"] = n_reader
                    _atomic_parquet(table, out / "scores" / f"part-{chunk}.parquet")
                    if aggregates is not None:
                        _atomic_parquet(aggregates, out / "documents" / f"part-{chunk}.parquet")
                    if embedder is not None:  # renamed into place before the chunk is listed, like the scores
                        _atomic_parquet(chunk_scorer.last_embeddings, out / "embeddings" / f"part-{chunk}.parquet")
                    chunk_rejects.write(rej_path)
                    _append_line(parts_log, {"chunk": chunk, "rows": table.num_rows, "counts": stats})
                    counts.add(stats)
                    counts.chunks_done += 1
                    bar.update(len(docs) + n_reader)
                    bar.set_postfix(units=counts.units_scored, rejected=counts.docs_rejected + counts.reader_rejects)
                tail = reader_rejects.items[seen_before:]  # rows rejected after the last yielded chunk
                file_rejects.extend(Rejects(tail))
                counts.reader_rejects += len(tail)
    finally:
        bar.close()

    counts.reader_rejects += len(unreadable)
    all_rejects = Rejects(unreadable.items + file_rejects.items)
    for p in rejects_parts:
        if p.exists():
            for line in p.read_text().splitlines():
                all_rejects.add(**json.loads(line))
    all_rejects.write(out / "rejects.jsonl")
    manifest.update(status="complete", completed_at=datetime.now(timezone.utc).isoformat(),
                    numeric=scorer.identity.get("numeric"),  # a transformer's path; model-free scorers have none
                    counts=counts.__dict__, score_cache=_cache_summary(cache),
                    entity_model=None if entity_scorer is None else
                    {"model_id": entity_scorer.name, "model_path": str(entity_scorer.model_path),
                     **entity_scorer.identity, "score_cache": _cache_summary(entity_cache)},
                    reject_reasons=all_rejects.counts(), files=[str(f) for f in files],
                    unreadable_files=[{"path": r.source, "reason": r.reason} for r in unreadable.items])
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    if counts.truncated:
        log.warning("%d units were longer than %s's token limit and were truncated", counts.truncated, scorer.name)
    return manifest


def read_scores(out: str | Path) -> pd.DataFrame:
    """All Score rows of a finished job, in chunk order."""
    return _read_table(Path(out) / "scores")


def read_aggregates(out: str | Path) -> pd.DataFrame:
    return _read_table(Path(out) / "documents", AGGREGATE_SCHEMA)


def _read_table(folder: Path, schema: pa.Schema | None = None) -> pd.DataFrame:
    # rglob also reads folders written with the earlier source=<src>/ partition folders.
    files = sorted(folder.rglob("part-*.parquet"), key=lambda p: p.name)
    if not files:
        return (schema or pa.schema([])).empty_table().to_pandas()
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
