"""Leakage-free canonical train/validation/test splits of the labeled sets.

Method. Each text gets a *key*: NFKC, lower case, URLs and PhraseBank's mangled euro sign
(``x20ac``) removed, every character that is not an ASCII letter or digit removed (so
punctuation, whitespace and any non-ASCII letter go; mojibake only ever swaps non-ASCII letters
for other non-ASCII characters and punctuation, so ``Åland`` and ``+àland`` share a key), then
every run of digits collapsed to ``0``. Sentences that differ only in numbers, punctuation,
spacing, case or mojibake share a key, i.e. form one duplicate family. A key's split is
``sha256(salt + NUL + key)`` mod 100: < 10 test, < 20 validation, else train (80/10/10). It
depends on nothing but the key, so it is the same on every run, machine and data version, and a
whole family always lands in one split.

PhraseBank. The four agreement files are nested; they are split as ONE union (a key has one
split whatever file it is read from), so each level's test set is a subset of the next looser
level's. Within a level, exact repeats of (sentence, label) are kept once. Decision on the two
sentences that ``Sentences_50Agree.txt`` lists twice with conflicting labels (neutral and
positive): each takes the label it carries at the next stricter level where it appears (both are
``positive`` in 66Agree: more than 66% of annotators agreeing implies the >50% majority too),
which keeps the levels nested and consistent; a conflict found at no stricter level would be
dropped from that level and listed in the manifest.

TFNS. The published split is kept: ``sent_valid.csv`` is the test set. Validation is carved out
of ``sent_train.csv`` with the same key hash (keys in the validation bucket), the rest is train.
Decision: a train row whose key equals a test key (a near-duplicate of a test tweet) is dropped
from train/validation and counted in the manifest; the published test set stays whole.

Manifests (``corpora/splits/<set>.json``, written by ``altsignal data splits``) record the method,
the normalization version, the sha256 of each source file, duplicate and conflict counts (texts
named by ``file:line`` and a text hash, so no dataset text is copied into the repository), the
per-split counts per level and a digest of the key -> split assignment. Loading a split rebuilds
the manifest from the data and refuses to go on if it differs from the committed one.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from core.atomic import atomic_write_text
from core.errors import UnknownNameError, UsageError
from core.hashing import file_sha256
from core.paths import SPLITS_DIR, datasets_dir
from core.rejects import Rejects
from nlp.readers import entity_sentiment, phrasebank, tfns

NORMALIZATION_VERSION = 1
SPLITS = ("train", "validation", "test")
SETS = ("fpb", "tfns", "finentity", "sentfin")
ENTITY_SETS = ("finentity", "sentfin")


@dataclass(frozen=True)
class SplitConfig:
    salt: str = "altsignal-split-v1"
    test_pct: int = 10
    validation_pct: int = 10


CONFIG = SplitConfig()

_URL = re.compile(r"https?://\S+|www\.\S+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_DIGITS = re.compile(r"[0-9]+")


class SplitManifestError(UsageError, RuntimeError):
    """The committed split manifest does not describe the data on this machine."""


def normalize_key(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).lower()
    t = _URL.sub(" ", t).replace("x20ac", " ")
    t = _NOT_ALNUM.sub("", t)
    return _DIGITS.sub("0", t)


def assign_split(key: str, config: SplitConfig = CONFIG) -> str:
    bucket = int(hashlib.sha256(f"{config.salt}\0{key}".encode()).hexdigest(), 16) % 100
    if bucket < config.test_pct:
        return "test"
    if bucket < config.test_pct + config.validation_pct:
        return "validation"
    return "train"


def _assignment_digest(assignment: dict[str, str]) -> str:
    lines = "".join(f"{k}\t{assignment[k]}\n" for k in sorted(assignment))
    return hashlib.sha256(lines.encode()).hexdigest()


def _counts(df: pd.DataFrame) -> dict:
    return {s: {"rows": int((df.split == s).sum()),
                "labels": {lab: int(n) for lab, n in sorted(df[df.split == s].label.value_counts().items())}}
            for s in SPLITS}


def _exact_groups(df: pd.DataFrame) -> tuple[int, list[dict]]:
    """(number of texts listed more than once, those of them listed with different labels).

    Conflicts are described by source lines and a text hash, so no dataset text is copied into
    the committed manifest.
    """
    n = df.groupby("text").size()
    conflicts = []
    for text in n[n > 1].index:
        rows = df[df.text == text]
        if rows.label.nunique() > 1:
            conflicts.append({"text": text, "lines": rows.line.tolist(), "labels": rows.label.tolist()})
    return int((n > 1).sum()), conflicts


def _public(conflict: dict) -> dict:
    out = {k: v for k, v in conflict.items() if k != "text"}
    return {**out, "text_sha256": hashlib.sha256(conflict["text"].encode()).hexdigest()[:16]}


def _near_groups(df: pd.DataFrame) -> list[list[str]]:
    """Families of distinct texts sharing one key, as ``file:line`` of each text, largest first."""
    refs = df.drop_duplicates("text").groupby("key").ref.apply(sorted)
    return sorted((r for r in refs if len(r) > 1), key=lambda g: (-len(g), g[0]))


def _source_entry(path: Path) -> dict:
    return {"file": str(path.relative_to(datasets_dir())), "sha256": file_sha256(path)}


# ---------------------------------------------------------------- PhraseBank
def _fpb_frames(config: SplitConfig) -> tuple[dict[str, pd.DataFrame], dict]:
    rejects = Rejects()
    raw = {lv: phrasebank.read_level(lv, rejects) for lv in phrasebank.LEVELS}
    if len(rejects):
        raise SplitManifestError(f"PhraseBank has unreadable lines: {rejects.counts()}")
    order = list(phrasebank.LEVELS)  # loosest first
    stats: dict = {"levels": {}}
    frames: dict[str, pd.DataFrame] = {}
    for i, lv in enumerate(order):
        df = raw[lv].assign(key=raw[lv].text.map(normalize_key),
                            ref=phrasebank.LEVELS[lv] + ":" + raw[lv].line.astype(str))
        n_exact, conflicts = _exact_groups(df)
        resolved, dropped = [], []
        for c in conflicts:
            stricter = [s for s in order[i + 1:] if (raw[s].text == c["text"]).any()]
            if stricter:
                strict_rows = raw[stricter[0]]
                label = strict_rows.loc[strict_rows.text == c["text"], "label"].iloc[0]
                df = df[(df.text != c["text"]) | (df.label == label)]
                resolved.append({**_public(c), "kept_label": label, "from_level": stricter[0]})
            else:
                df = df[df.text != c["text"]]
                dropped.append(_public(c))
        df = df.drop_duplicates(["text", "label"], keep="first")
        df = df.assign(split=df.key.map(lambda k: assign_split(k, config)))
        frames[lv] = df
        stats["levels"][lv] = {
            "source": _source_entry(phrasebank.level_path(lv)),
            "rows_in_file": len(raw[lv]),
            "labels_in_file": {k: int(v) for k, v in sorted(raw[lv].label.value_counts().items())},
            "exact_duplicate_groups": n_exact,
            "conflicting_label_groups": len(conflicts),
            "conflicts_resolved": resolved,
            "conflicts_dropped": dropped,
            "rows_after_dedup": len(df),
            "splits": _counts(df),
        }
    union = pd.concat(frames.values(), ignore_index=True)
    near = _near_groups(union)
    near_conflicting = union.groupby("key").label.nunique()
    assignment = dict(zip(union.key, union.split))
    stats["union"] = {
        "distinct_texts": int(union.text.nunique()),
        "distinct_keys": len(assignment),
        "near_duplicate_groups": len(near),
        "texts_in_near_duplicate_groups": sum(len(g) for g in near),
        "near_duplicate_groups_with_different_labels": int((near_conflicting > 1).sum()),
        "keys_per_split": {s: sum(v == s for v in assignment.values()) for s in SPLITS},
        "assignment_sha256": _assignment_digest(assignment),
        "near_duplicate_examples": near[:10],
    }
    return frames, stats


# ---------------------------------------------------------------- TFNS
def _tfns_frames(config: SplitConfig) -> tuple[dict[str, pd.DataFrame], dict]:
    rejects = Rejects()
    train = tfns.read_tfns(tfns.file_path("train"), rejects)
    test = tfns.read_tfns(tfns.file_path("valid"), rejects)
    if len(rejects):
        raise SplitManifestError(f"TFNS has unreadable rows: {rejects.counts()}")
    train = train.assign(key=train.text.map(normalize_key), ref=tfns.FILES["train"] + ":" + train.line.astype(str))
    test = test.assign(key=test.text.map(normalize_key), ref=tfns.FILES["valid"] + ":" + test.line.astype(str),
                       split="test")
    test_keys = set(test.key)
    leaked = train.key.isin(test_keys)
    kept = train[~leaked]
    kept = kept.assign(split=kept.key.map(lambda k: "validation" if assign_split(k, config) == "validation" else "train"))
    frame = pd.concat([kept, test], ignore_index=True)
    near = _near_groups(frame)
    assignment = dict(zip(frame.key, frame.split))
    stats = {
        "sources": {p: _source_entry(tfns.file_path(p)) for p in tfns.FILES},
        "rows_in_file": {"train": len(train), "valid": len(test)},
        "exact_duplicate_groups": {"train": _exact_groups(train)[0], "valid": _exact_groups(test)[0]},
        "near_duplicate_groups": {"train": len(_near_groups(train)), "valid": len(_near_groups(test)),
                                  "keys_shared_by_train_and_valid": len(set(train.key) & test_keys)},
        "near_duplicate_groups_with_different_labels": int((frame.groupby("key").label.nunique() > 1).sum()),
        "train_rows_dropped_as_near_duplicates_of_test": int(leaked.sum()),
        "splits": _counts(frame),
        "assignment_sha256": _assignment_digest(assignment),
        "near_duplicate_examples": near[:10],
    }
    return {"all": frame}, stats


# ---------------------------------------------------------------- entity-level sets
def _entity_frames(name: str, config: SplitConfig) -> tuple[dict[str, pd.DataFrame], dict]:
    """FinEntity / SEntFiN rows split by their text's key, so every entity of a text shares its split.

    SEntFiN shares an author with PhraseBank: a headline whose key is a PhraseBank key (any level)
    is dropped, so no PhraseBank sentence reaches an entity split. A (text, span) listed twice with
    different labels is dropped; exact repeats are kept once.
    """
    rejects = Rejects()
    raw = entity_sentiment.READERS[name](entity_sentiment.file_path(name), rejects)
    df = raw.assign(key=raw.text.map(normalize_key), ref=entity_sentiment.FILES[name] + ":" + raw.line.astype(str))
    stats: dict = {"source": _source_entry(entity_sentiment.file_path(name)), "rows_in_file": len(raw) + len(rejects),
                   "rejected_rows": rejects.counts(), "rejected_lines": sorted({int(r) for r in rejects.to_frame().line})}
    if name == "sentfin":
        fpb_keys = set(pd.concat(_build("fpb")[0].values()).key)
        in_fpb = df.key.isin(fpb_keys)
        stats["texts_dropped_as_phrasebank_duplicates"] = int(df[in_fpb].text.nunique())
        stats["rows_dropped_as_phrasebank_duplicates"] = int(in_fpb.sum())
        df = df[~in_fpb]
    df = df.drop_duplicates(["text", "start", "end", "label"])
    conflicting = df.groupby(["text", "start", "end"]).label.transform("nunique") > 1
    stats["conflicting_label_rows_dropped"] = int(conflicting.sum())
    df = df[~conflicting]
    df = df.assign(split=df.key.map(lambda k: assign_split(k, config)),
                   mixed=entity_sentiment.mixed_texts(df)).reset_index(drop=True)
    assignment = dict(zip(df.key, df.split))
    stats.update({
        "rows": len(df),
        "distinct_texts": int(df.text.nunique()),
        "near_duplicate_groups": len(_near_groups(df)),
        "splits": _counts(df),
        "mixed_rows_per_split": {s: int(df[df.split == s].mixed.sum()) for s in SPLITS},
        "assignment_sha256": _assignment_digest(assignment),
    })
    return {"all": df}, stats


_BUILDERS = {"fpb": _fpb_frames, "tfns": _tfns_frames,
             **{n: functools.partial(_entity_frames, n) for n in ENTITY_SETS}}
_METHODS = {
    "fpb": "union of the four nested agreement files split once by sha256 of the normalized key; 80/10/10",
    "tfns": "published split kept (sent_valid.csv = test); validation carved from sent_train.csv by sha256 "
            "of the normalized key; train rows sharing a key with test dropped",
    **{n: "one row per (text, entity); split by sha256 of the text's normalized key; 80/10/10" for n in ENTITY_SETS},
}


def _build(name: str) -> tuple[dict[str, pd.DataFrame], dict]:
    return _build_cached(name, datasets_dir(), CONFIG)


@lru_cache(maxsize=None)
def _build_cached(name: str, root: Path, config: SplitConfig) -> tuple[dict[str, pd.DataFrame], dict]:
    """Keyed on the datasets folder too, so pointing ALTSIGNAL_DATASETS elsewhere rebuilds."""
    if name not in _BUILDERS:
        raise UnknownNameError(f"unknown split set {name!r}; known: {list(SETS)}")
    frames, stats = _BUILDERS[name](config)
    manifest = {"set": name, "method": _METHODS[name], "normalization_version": NORMALIZATION_VERSION,
                "config": asdict(config), **stats}
    return frames, manifest


def build_manifest(name: str) -> dict:
    """The manifest computed from the data on this machine (no file written)."""
    return _build(name)[1]


def manifest_path(name: str) -> Path:
    return SPLITS_DIR / f"{name}.json"


def write_manifest(name: str, out_dir: Path | None = None) -> Path:
    path = (out_dir or SPLITS_DIR) / f"{name}.json"
    atomic_write_text(path, json.dumps(build_manifest(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def verify_manifest(name: str) -> dict:
    """Compare the committed manifest with the data; raise SplitManifestError on any difference."""
    path = manifest_path(name)
    if not path.exists():
        raise SplitManifestError(f"{path} is missing; generate it with `altsignal data splits`")
    committed = json.loads(path.read_text(encoding="utf-8"))
    built = build_manifest(name)
    committed_sources = _sources(committed)
    for file, sha in _sources(built).items():
        if committed_sources.get(file) != sha:
            raise SplitManifestError(
                f"{name} split manifest {path} expects {file} with sha256 {committed_sources.get(file)}, "
                f"but the file here has sha256 {sha}: the data changed; check it, then regenerate the "
                "manifest with `altsignal data splits` and review the diff"
            )
    diff = sorted(k for k in set(built) | set(committed) if built.get(k) != committed.get(k))
    if diff:
        raise SplitManifestError(
            f"{name} split manifest {path} disagrees with the split computed from the data in field(s) {diff}; "
            "the split code changed: regenerate with `altsignal data splits` and review the diff"
        )
    return committed


def _sources(manifest: dict) -> dict[str, str]:
    entries = [lv["source"] for lv in manifest.get("levels", {}).values()] + list(manifest.get("sources", {}).values())
    entries += [manifest["source"]] if "source" in manifest else []
    return {e["file"]: e["sha256"] for e in entries}


def load_split(name: str, split: str, level: str | None = None, verify: bool = True) -> pd.DataFrame:
    """Rows of one split (``text``, ``label``, ``line``, ``key``; the entity sets add ``entity``,
    ``start``, ``end`` and ``mixed``), after checking the manifest.

    ``split`` is train/validation/test, or ``all`` for every row after deduplication.
    """
    if split not in SPLITS + ("all",):
        raise UnknownNameError(f"unknown split {split!r}; expected one of {list(SPLITS) + ['all']}")
    if verify:
        verify_manifest(name)
    frames, _ = _build(name)
    if name == "fpb":
        if level not in frames:
            raise UnknownNameError(f"unknown PhraseBank level {level!r}; known: {list(frames)}")
        df = frames[level]
    else:
        df = frames["all"]
    if split != "all":
        df = df[df.split == split]
    entity_cols = ["entity", "start", "end", "mixed"] if name in ENTITY_SETS else []
    return df[["text", *entity_cols, "label", "line", "key", "split"]].reset_index(drop=True)
