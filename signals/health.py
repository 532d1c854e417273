"""Health checks of a daily run: is today's data like the recent past, and is the model the same?

:func:`health_table` takes the run's Score rows (already assigned to sessions), its reject counts,
the model fingerprints and the age of its market and macro inputs, and returns one row per check
with ``status`` in ``ok | warn | breach | info``. A scheduler reads the exit status: a run whose
table has a breach exits :data:`core.errors.EXIT_HEALTH` (4) after writing every output, so cron
or Airflow can alert while the day's features and allocations still exist.

The checks and their default thresholds (:class:`HealthConfig`, all settable in the run config):

- **volume** per source: documents in the session / the median of the trailing ``window``
  sessions (sessions with no documents count as 0). Below ``volume_low`` (0.3) or above
  ``volume_high`` (5) is a breach: a feed that stopped, or one that replays its history.
- **rejects**: rejected rows / rows read. Above ``reject_rate_max`` (5%) is a breach; the top
  reasons are listed.
- **score drift** per source: population stability index (PSI) of the ``score`` distribution
  over the last ``drift_sessions`` sessions against the ``window`` sessions before them, on
  ``psi_bins`` quantile bins of the reference. The usual credit-scoring reading: < 0.1 stable,
  0.1-0.25 warn (``psi_warn``), >= 0.25 breach (``psi_breach``). Fewer than ``min_rows`` rows on
  either side gives ``info`` (not enough data to judge).
- **fresh entities**: share of the entities seen in the window that have a document in the last
  ``drift_sessions`` sessions; below ``fresh_share_min`` (0.2) is a warn (coverage thins slowly).
- **fingerprints**: the model's content hash and numeric path; a change against the previous
  run's is a warn (scores before and after are not comparable bit for bit).
- **input age**: days between the session and the last row of each market/macro input; beyond
  ``max_age_days`` of that input (market 5, macro 62: monthly series arrive a month late) is a
  breach.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from core.config_files import Strict
from core.errors import UsageError
from core.plots import subplots

STATUSES = ("ok", "info", "warn", "breach")


class HealthConfig(Strict):
    window: int = Field(60, ge=5)  # trailing sessions that define "normal"
    drift_sessions: int = Field(5, ge=1)  # recent sessions compared against the window
    volume_low: float = Field(0.3, ge=0)
    volume_high: float = Field(5.0, gt=1)
    reject_rate_max: float = Field(0.05, ge=0, le=1)
    psi_bins: int = Field(10, ge=2)
    psi_warn: float = Field(0.1, ge=0)
    psi_breach: float = Field(0.25, ge=0)
    min_rows: int = Field(50, ge=1)
    fresh_share_min: float = Field(0.2, ge=0, le=1)
    max_age_days: dict[str, float] = Field(default_factory=lambda: {"market": 5, "macro": 62})


def psi(reference, current, bins: int = 10, floor: float = 1e-4) -> float:
    """Population stability index of ``current`` against ``reference``.

    Bins are quantiles of the reference (ties merged), open at both ends, so the index measures
    movement relative to the reference's own spread; empty bins are floored at ``floor`` so a
    bin seen on one side only gives a large, finite value.
    """
    ref, cur = np.asarray(reference, float), np.asarray(current, float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if not len(ref) or not len(cur):
        raise ValueError("psi needs values on both sides")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
    p, q = np.maximum(p, floor), np.maximum(q, floor)
    return float(np.sum((q - p) * np.log(q / p)))


def _row(check: str, subject: str, value, threshold: str, status: str, detail: str = "") -> dict:
    return {"check": check, "subject": subject, "value": value, "threshold": threshold, "status": status,
            "detail": detail}


def _volume(docs: pd.DataFrame, sessions: pd.DatetimeIndex, cfg: HealthConfig) -> list[dict]:
    today, past = sessions[-1], sessions[-cfg.window - 1:-1]
    rows = []
    for source, g in docs.groupby("source"):
        per_day = g.groupby("session")["doc_id"].nunique().reindex(sessions, fill_value=0)
        norm = float(per_day.reindex(past).median())
        now = int(per_day.get(today, 0))
        ratio = now / norm if norm > 0 else float("inf") if now else 1.0
        status = "breach" if ratio < cfg.volume_low or ratio > cfg.volume_high else "ok"
        rows.append(_row("volume", source, round(ratio, 3), f"{cfg.volume_low}..{cfg.volume_high}x trailing median",
                         status, f"{now} documents today, trailing median {norm:g}"))
    return rows


def _drift(scores: pd.DataFrame, sessions: pd.DatetimeIndex, cfg: HealthConfig) -> list[dict]:
    recent = sessions[-cfg.drift_sessions:]
    past = sessions[-cfg.drift_sessions - cfg.window:-cfg.drift_sessions]
    rows = []
    for source, g in scores.groupby("source"):
        cur, ref = g.loc[g["session"].isin(recent), "score"], g.loc[g["session"].isin(past), "score"]
        if len(cur) < cfg.min_rows or len(ref) < cfg.min_rows:
            rows.append(_row("score_drift", source, None, f"psi < {cfg.psi_warn}", "info",
                             f"{len(cur)} recent and {len(ref)} reference rows (< {cfg.min_rows})"))
            continue
        value = psi(ref, cur, cfg.psi_bins)
        status = "breach" if value >= cfg.psi_breach else "warn" if value >= cfg.psi_warn else "ok"
        rows.append(_row("score_drift", source, round(value, 4), f"psi < {cfg.psi_warn} (breach >= {cfg.psi_breach})",
                         status, f"mean score {cur.mean():+.3f} recent vs {ref.mean():+.3f} reference"))
    return rows


def _fresh(docs: pd.DataFrame, sessions: pd.DatetimeIndex, cfg: HealthConfig) -> dict:
    ents = docs[["session", "entities"]].explode("entities").dropna()
    window = ents[ents["session"].isin(sessions[-cfg.window:])]
    known = set(window["entities"])
    fresh = set(window.loc[window["session"].isin(sessions[-cfg.drift_sessions:]), "entities"])
    share = len(fresh) / len(known) if known else 0.0
    return _row("fresh_entities", "all", round(share, 3), f">= {cfg.fresh_share_min}",
                "warn" if share < cfg.fresh_share_min else "ok", f"{len(fresh)} of {len(known)} entities")


def health_table(scores: pd.DataFrame, sessions: pd.DatetimeIndex, *, rows_read: int | None, rejects: dict[str, int],
                 fingerprint: dict[str, str], previous_fingerprint: dict[str, str] | None = None,
                 last_input_dates: dict[str, pd.Timestamp] | None = None,
                 config: HealthConfig | None = None) -> pd.DataFrame:
    """The health checks of the session ``sessions[-1]`` (see the module docstring).

    ``scores``: Score rows with a ``session`` column (the session each counts for, point in
    time). ``sessions``: the calendar's sessions up to and including the one checked.
    ``rejects``: reason -> count for this run; ``rows_read``: rows this run read (None: unknown,
    the check is ``info``).
    """
    cfg = config or HealthConfig()
    today = sessions[-1]
    known = scores[scores["session"] <= today]
    docs = known.drop_duplicates(["source", "doc_id"])
    rows = _volume(docs, sessions, cfg) + _drift(known, sessions, cfg) + [_fresh(docs, sessions, cfg)]
    if rows_read is None:
        rows.append(_row("rejects", "all", None, f"<= {cfg.reject_rate_max}", "info", "no scoring job given"))
    else:
        rate = sum(rejects.values()) / rows_read if rows_read else 0.0
        top = ", ".join(f"{r} ({n})" for r, n in sorted(rejects.items(), key=lambda kv: -kv[1])[:3])
        rows.append(_row("rejects", "all", round(rate, 4), f"<= {cfg.reject_rate_max}",
                         "breach" if rate > cfg.reject_rate_max else "ok", top or "no rejects"))
    for key, value in fingerprint.items():
        before = (previous_fingerprint or {}).get(key)
        changed = before is not None and before != value
        rows.append(_row("fingerprint", key, value, "unchanged", "warn" if changed else "info",
                         f"was {before}" if changed else ""))
    for name, last in (last_input_dates or {}).items():
        age = (today - pd.Timestamp(last).tz_localize(None).normalize()).days
        limit = cfg.max_age_days.get(name)
        status = "info" if limit is None else "breach" if age > limit else "ok"
        rows.append(_row("input_age", name, age, f"<= {limit} days" if limit is not None else "", status,
                         f"last row {pd.Timestamp(last).date()}"))
    table = pd.DataFrame(rows, columns=["check", "subject", "value", "threshold", "status", "detail"])
    table.insert(0, "session", today)
    return table


def worst_status(table: pd.DataFrame) -> str:
    """The most severe status in a health table (``ok`` for an empty one)."""
    return max(table["status"], key=STATUSES.index, default="ok")


def write_report(table: pd.DataFrame, scores: pd.DataFrame, sessions: pd.DatetimeIndex, out: Path,
                 config: HealthConfig | None = None) -> Path:
    """``out/health.md`` (one page: the table, worst status first) and ``out/health.png`` (documents
    per source per session over the window; recent vs reference score distributions)."""
    import html

    from core.atomic import atomic_path, atomic_write_text

    cfg = config or HealthConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    window = sessions[-cfg.window:]
    known = scores[scores["session"].isin(window)]
    fig, (left, right) = subplots(1, 2, figsize=(11, 3.6))
    counts = known.drop_duplicates(["source", "doc_id"]).groupby(["session", "source"]).size().unstack(fill_value=0)
    if counts.empty:  # no document in the window (an as_of long after the data): pandas cannot plot nothing
        _no_data(left)
    else:
        counts.reindex(window, fill_value=0).plot(ax=left, lw=1)
    left.set_title(f"documents per session (last {len(window)} sessions)")
    recent = known["session"].isin(sessions[-cfg.drift_sessions:])
    bins = np.linspace(-1, 1, 41)
    for rows, label in ((~recent, "reference"), (recent, f"last {cfg.drift_sessions}")):
        if rows.any():
            right.hist(known.loc[rows, "score"], bins=bins, density=True, alpha=0.5, label=label)
    if known.empty:
        _no_data(right)
    else:
        right.legend()
    right.set_title("score distribution")
    fig.tight_layout()
    with atomic_path(out / "health.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    order = table.assign(rank=table["status"].map(STATUSES.index)).sort_values("rank", ascending=False, kind="stable")
    lines = [f"# Health of session {table['session'].iloc[0].date()}: {worst_status(table)}", "",
             "| check | subject | value | threshold | status | detail |", "|---|---|---|---|---|---|"]
    for r in order.itertuples():
        # Subjects and details can hold feed names and reject reasons from user data: escaped.
        cells = [r.check, r.subject, "" if pd.isna(r.value) else r.value, r.threshold, f"**{r.status}**", r.detail]
        lines.append("| " + " | ".join(html.escape(str(c)).replace("|", "\\|") for c in cells) + " |")
    lines += ["", "![documents and scores](health.png)", ""]
    path = out / "health.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def job_inputs(jobs: list[Path]) -> tuple[int | None, dict[str, int], dict[str, str]]:
    """Rows read, reject reasons and model fingerprints of scoring job folders (their manifests)."""
    import json

    manifests = [json.loads((Path(j) / "manifest.json").read_text()) for j in jobs]
    read = sum(m["counts"]["docs_read"] + m["counts"]["reader_rejects"] for m in manifests) if manifests else None
    rejects: dict[str, int] = {}
    for m in manifests:
        for reason, n in m["reject_reasons"].items():
            rejects[reason] = rejects.get(reason, 0) + n
    fingerprint = {f"{m['model_id']}:numeric": m["numeric"] for m in manifests} | {
        f"{m['model_id']}:model_hash": m["job"]["model_hash"] for m in manifests}
    return read, rejects, fingerprint


def check_store(db: Path, as_of: pd.Timestamp, out: Path, jobs: list[Path] = (), config: HealthConfig | None = None,
                last_input_dates: dict[str, pd.Timestamp] | None = None) -> tuple[pd.DataFrame, Path]:
    """Check the last session closed by ``as_of`` in the store ``db``; write the report and history.

    The session checked is the last one whose cutoff has passed (a session still collecting
    documents would look like a stalled feed). ``out/health.parquet`` keeps one block per session
    (a re-run replaces its block); the previous session's fingerprints are the reference.
    Returns the table and the report's path; the caller decides the exit status (:func:`worst_status`).
    """
    from core.atomic import atomic_path
    from signals.store import FeatureStore

    cfg = config or HealthConfig()
    with FeatureStore(db, read_only=True) as store:
        scores = store.score_rows(as_of)
        cal = store.sessions
    if scores.empty:
        raise UsageError(f"the store {db} holds no score rows known at {as_of}",
                         hint="build the store first (altsignal features build), or give a later --as-of")
    calendar = cal.dates(end=as_of)
    calendar = calendar[cal.cutoffs(calendar) <= as_of]
    read, rejects, fingerprint = job_inputs(list(jobs))
    history_path = Path(out) / "health.parquet"
    history = pd.read_parquet(history_path) if history_path.exists() else pd.DataFrame()
    previous = None
    if not history.empty and (history["session"] < calendar[-1]).any():
        last = history[history["session"] == history.loc[history["session"] < calendar[-1], "session"].max()]
        fp = last[last["check"] == "fingerprint"]
        previous = dict(zip(fp["subject"], fp["value"].astype(str)))
    table = health_table(scores, calendar, rows_read=read, rejects=rejects, fingerprint=fingerprint,
                         previous_fingerprint=previous, last_input_dates=last_input_dates, config=cfg)
    report = write_report(table, scores, calendar, out, cfg)
    kept = history[history["session"] != calendar[-1]] if not history.empty else history
    with atomic_path(history_path) as tmp:
        pd.concat([kept, table.astype({"value": str})], ignore_index=True).to_parquet(tmp, index=False)
    return table, report
