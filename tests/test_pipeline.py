"""`altsignal run`: the whole pipeline on small data, stage caching, and the study in CI size."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from altsignal.orchestrator import check_run, run
from altsignal.run_config import DEFAULT_RUN_CONFIG, load_run_config
from altsignal.stage_cache import stage_key
from altsignal.stages import Timing
from timing import CONFIG_DIR

# Keep the timing stage small: the tests check the plumbing, the README reports the full runs.
SMALL_TIMING = [
    'timing.baselines=["historical_mean", "ridge", "macro_regime", "equal_weight"]',
    "timing.data.start=2008-01-31",  # a TOML date stays text
    "timing.walkforward={ min_train = 60, refit_every = 24, n_jobs = 1 }",
    "timing.network.epochs=10",
    "timing.network.seeds=[0]",
    "timing.network.grid={ weight_decay = [1e-3] }",
    "timing.explain={ permutation_repeats = 1, ig_steps = 4 }",
]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    cfg = load_run_config(DEFAULT_RUN_CONFIG, [*SMALL_TIMING, "scoring.job.engine.numeric=fp32"])
    cfg = cfg.model_copy(update={"output_dir": tmp_path_factory.mktemp("run")})
    return cfg, run(cfg)


def _stages(cfg):
    return {s: json.loads((cfg.output_dir / s / "stage.json").read_text())
            for s in ("documents", "scores", "features", "timing")}


def test_default_run_writes_every_stage_and_a_report(default_run):
    cfg, report = default_run
    summary = report.read_text()
    assert "timing/report.md" in summary
    assert "Network beats the historical mean" in summary and "Net of costs, test part:" in summary
    stages = _stages(cfg)
    docs = stages["documents"]["summary"]
    assert docs["sample_news"]["documents"] == 306
    assert docs["sample_social"]["rejected"] == 3  # the corpus's deliberately empty posts
    scores = stages["scores"]["summary"]
    assert scores["sample_transcripts"]["units_scored"] > 300  # sentence-level rows
    assert stages["features"]["summary"]["daily_features"] > 0
    forecasts = pd.read_parquet(cfg.output_dir / "timing" / "forecasts.parquet")
    assert len(forecasts) > 0


def test_sentiment_reaches_the_timing_panel_point_in_time(default_run):
    from timing.data import load_panel

    cfg, _ = default_run
    tcfg = Timing.config(check_run(cfg))
    assert tcfg.data.path == cfg.output_dir / "features" / "features.duckdb"
    assert tcfg.data.start == "2008-01-31" and tcfg.network.epochs == 10  # the --set values reached the stage
    panel = load_panel(tcfg.data, cfg.signals)
    sent = [c for c in panel.columns if c.startswith("sentiment.") and not c.endswith("__mask")]
    assert sent, "no sentiment columns in the timing panel"
    masks = panel[[c + "__mask" for c in sent]].max(axis=1)
    # The sample corpus starts 2016-06-01: no sentiment can be available before June 2016's close.
    assert masks.loc[:"2016-05-31"].eq(0).all()
    assert masks.loc["2016-07-31":"2017-02-28"].gt(0).all()


def test_rerun_reuses_every_stage(default_run):
    cfg, _ = default_run
    before = _stages(cfg)
    run(cfg)
    assert _stages(cfg) == before  # nothing recomputed: every stage.json untouched


def test_changed_scoring_config_recomputes_from_scores_on(default_run, tmp_path):
    cfg, _ = default_run
    before = _stages(cfg)
    changed = cfg.model_copy(update={"scoring": cfg.scoring.model_copy(update={"numeric": "bf16"})})
    # Keys only: recomputing would take a minute; the key is what decides.
    assert stage_key("scores", before["documents"]["key"], changed.scoring.model_dump()) != before["scores"]["key"]


def test_bad_run_config_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\noutput_dir = "x"\n[documents]\ninputs = [{ path = "a.csv" }]\n')
    with pytest.raises(ValueError, match="needs `source` and `mapping`"):
        load_run_config(bad)


@pytest.mark.slow
def test_study_config_in_ci_size(shared_datasets, tmp_path):
    cfg = load_run_config(CONFIG_DIR / "study_ci.toml", ["scoring.job.engine.numeric=fp32", "timing.walkforward.n_jobs=1"])
    cfg = cfg.model_copy(update={"output_dir": tmp_path / "study"})
    report = run(cfg)
    stages = _stages(cfg)
    docs = stages["documents"]["summary"]
    assert docs["stocknet_tweets"]["documents"] > 1000
    assert docs["maec_transcripts"]["documents"] > 10
    assert "timing/report.md" in report.read_text()
    fm = pd.read_parquet(cfg.output_dir / "timing" / "forecast_metrics.parquet")
    assert {"RMW", "CMA"} <= set(fm["factor"])  # the shared daily French files carry all six factors


def test_a_scorer_that_learned_from_the_runs_period_is_refused(tmp_path):
    from core.errors import UsageError

    # The shipped default distilled on 2009-2018 text; the sample corpus is 2016-06 .. 2017-02.
    cfg = load_run_config(DEFAULT_RUN_CONFIG, [*SMALL_TIMING, "scoring.model=default"])
    cfg = cfg.model_copy(update={"output_dir": tmp_path / "run"})
    with pytest.raises(UsageError, match=r"learned from text published 2009-04-29\.\.2018-12-31, which overlaps"):
        run(cfg)
    assert not list((tmp_path / "run").glob("scores*"))  # refused before anything was scored


def test_text_period_check_compares_the_model_with_the_documents(tmp_path):
    from altsignal.stages import check_text_period
    from core.errors import UsageError
    from nlp.models import model_path

    def docs(*days: str):
        folder = tmp_path / days[0]
        folder.mkdir()
        pd.DataFrame({"published_at": pd.to_datetime(list(days), utc=True)}).to_parquet(folder / "a.parquet")
        return folder

    later = docs("2019-01-02", "2020-06-30")
    assert check_text_period(model_path("default"), later, allow=False) == {
        "model_text": ["2009-04-29", "2018-12-31"], "documents": ["2019-01-02", "2020-06-30"]}
    assert check_text_period(model_path("labeled"), later, allow=False) is None  # no dated text learned
    overlap = docs("2018-12-31", "2019-03-01")  # one day inside the model's period is enough
    with pytest.raises(UsageError, match="overlaps"):
        check_text_period(model_path("fast"), overlap, allow=False)
    assert check_text_period(model_path("fast"), overlap, allow=True)["overlap_allowed"] is True


def test_stage_keys_cover_the_code_that_builds_each_stage(tmp_path, monkeypatch):
    """A run folder written by other code is rebuilt, not reported as cached."""
    import shutil

    from core import hashing

    pkg = tmp_path / "pkg_under_test"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "stage.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = hashing.code_digest("pkg_under_test")
    assert hashing.code_digest("signals") != hashing.code_digest("timing")
    hashing.code_digest.cache_clear()
    (pkg / "stage.py").write_text("X = 2\n")
    assert hashing.code_digest("pkg_under_test") != before
    hashing.code_digest.cache_clear()
    shutil.copy(pkg / "stage.py", pkg / "more.py")
    (pkg / "stage.py").write_text("X = 1\n")
    assert hashing.code_digest("pkg_under_test") != before  # a new file counts too
