"""Health checks on hand-made data: PSI values, each breach, and the worst status."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.health import HealthConfig, health_table, psi, worst_status


def test_psi_of_a_distribution_against_itself_is_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    assert psi(ref, rng.normal(size=20_000)) < 0.01  # a fresh sample of the same law
    small, large = psi(ref, rng.normal(0.3, 1, 20_000)), psi(ref, rng.normal(1.0, 1, 20_000))
    assert 0.05 < small < 0.25 < large


def test_psi_by_hand_on_two_bins():
    # Reference split 50/50 at its median; current 80/20: (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5).
    ref, cur = np.array([0, 0, 1, 1.0]), np.array([0, 0, 0, 0, 1.0])
    expected = 0.3 * np.log(0.8 / 0.5) + (-0.3) * np.log(0.2 / 0.5)
    assert psi(ref, cur, bins=2) == pytest.approx(expected)


SESSIONS = pd.bdate_range("2024-01-01", periods=80)


def _scores(per_day: int = 20, last_day: int | None = None, last_shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i, day in enumerate(SESSIONS):
        n = last_day if (last_day is not None and i == len(SESSIONS) - 1) else per_day
        shift = last_shift if i >= len(SESSIONS) - 5 else 0.0
        for j in range(n):
            rows.append({"doc_id": f"{i}-{j}", "source": "news", "session": day, "entities": [f"E{j % 10}"],
                         "score": float(np.clip(rng.normal(shift, 0.3), -1, 1))})
    return pd.DataFrame(rows)


def _table(scores, **kw) -> pd.DataFrame:
    args = dict(rows_read=1000, rejects={}, fingerprint={"model_hash": "abc", "numeric": "fp32"})
    return health_table(scores, SESSIONS, **(args | kw))


def _status(table, check) -> str:
    return table.loc[table["check"] == check, "status"].iloc[0]


def test_a_normal_day_is_healthy():
    table = _table(_scores())
    assert worst_status(table) == "info"  # fingerprints are information, not alarms
    assert set(table["check"]) == {"volume", "score_drift", "fresh_entities", "rejects", "fingerprint"}


def test_a_stalled_feed_breaches_volume():
    table = _table(_scores(last_day=2))
    assert _status(table, "volume") == "breach" and worst_status(table) == "breach"


def test_a_shifted_score_distribution_breaches_drift():
    assert _status(_table(_scores(last_shift=0.8)), "score_drift") == "breach"


def test_too_few_rows_to_judge_drift_is_information():
    assert _status(_table(_scores(per_day=3)), "score_drift") == "info"


def test_reject_rate_and_reasons():
    table = _table(_scores(), rows_read=100, rejects={"empty text": 4, "implausible published_at": 3})
    row = table[table["check"] == "rejects"].iloc[0]
    assert row["status"] == "breach" and row["value"] == 0.07
    assert row["detail"].startswith("empty text (4)")


def test_a_changed_model_is_flagged_and_stale_inputs_breach():
    table = _table(_scores(), previous_fingerprint={"model_hash": "old", "numeric": "fp32"},
                   last_input_dates={"market": SESSIONS[-1] - pd.Timedelta(days=10), "macro": SESSIONS[-1]},
                   config=HealthConfig(max_age_days={"market": 5, "macro": 62}))
    fp = table[table["check"] == "fingerprint"].set_index("subject")["status"]
    assert fp["model_hash"] == "warn" and fp["numeric"] == "info"
    ages = table[table["check"] == "input_age"].set_index("subject")
    assert ages.loc["market", "status"] == "breach" and ages.loc["macro", "status"] == "ok"


def test_later_rows_change_nothing_about_an_earlier_session():
    scores = _scores()
    later = scores.assign(session=scores["session"] + pd.Timedelta(days=200))
    pd.testing.assert_frame_equal(_table(scores), _table(pd.concat([scores, later], ignore_index=True)))


def test_features_health_cli_writes_the_report_and_exits_4_on_a_breach(tmp_path):
    from typer.testing import CliRunner

    from altsignal.cli import app
    from signals.store import FeatureStore
    from signals.synthetic import synthetic_scores

    db = tmp_path / "f.duckdb"
    rows = synthetic_scores(n_rows=20_000, n_entities=30, start="2016-01-01", years=1.0, seed=1).to_pandas()
    with FeatureStore(db) as store:
        store.add_scores(rows[rows["source"] != "transcript"])
    runner = CliRunner()
    res = runner.invoke(app, ["features", "health", "--db", str(db), "--out", str(tmp_path / "h"),
                              "--as-of", "2016-10-03T22:00:00Z"])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(tmp_path / "h" / "health.parquet")
    assert set(table["session"]) == {pd.Timestamp("2016-10-03")}
    assert (tmp_path / "h" / "health.png").stat().st_size > 1000
    assert "# Health of session 2016-10-03" in (tmp_path / "h" / "health.md").read_text()
    # A threshold no volume can meet: the same data is now a breach, exit 4, outputs still written.
    res = runner.invoke(app, ["features", "health", "--db", str(db), "--out", str(tmp_path / "h"),
                              "--as-of", "2016-10-04T22:00:00Z", "--set", "volume_low=100"])
    assert res.exit_code == 4, res.output
    table = pd.read_parquet(tmp_path / "h" / "health.parquet")
    assert set(table["session"]) == {pd.Timestamp("2016-10-03"), pd.Timestamp("2016-10-04")}


def test_the_report_draws_empty_series_as_no_data(tmp_path):
    """An as_of long after the data: no document in the window. The plot says so, never crashes."""
    from signals.health import write_report

    sessions = pd.bdate_range("2030-01-01", periods=80)
    empty = pd.DataFrame({"session": pd.Series(dtype="datetime64[ns]"), "source": pd.Series(dtype=str),
                          "doc_id": pd.Series(dtype=str), "score": pd.Series(dtype=float),
                          "entities": pd.Series(dtype=object)})
    table = health_table(empty, sessions, rows_read=None, rejects={}, fingerprint={})
    path = write_report(table, empty, sessions, tmp_path)
    assert path.exists() and (tmp_path / "health.png").stat().st_size > 0
