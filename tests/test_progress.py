"""Progress bars: drawn on a terminal only; elsewhere one summary log line per stage."""
from __future__ import annotations

import logging

from scoring_support import tiny_model  # noqa: F401  (fixture)

from core.progress import Progress


def test_off_a_terminal_a_stage_logs_one_line_and_draws_nothing(capsys, caplog):
    caplog.set_level(logging.INFO, logger="core.progress")
    assert list(Progress(range(1200), desc="scoring", unit="doc")) == list(range(1200))
    bar = Progress(total=10, desc="fit", dynamic_ncols=True)
    bar.update(4)
    bar.close()
    bar.close()  # closing twice still logs once
    for _ in Progress(range(3), desc="quiet", enabled=False):
        pass
    assert capsys.readouterr().err == ""
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("scoring: 1,200 doc in ") and lines[1].startswith("fit: 4 it in ")


def test_model_loads_print_no_third_party_bars_or_warnings_unless_verbose(tiny_model, tmp_path, monkeypatch):
    """Off a terminal, loading a model through the CLI prints no transformers "Loading weights" bar
    and no FutureWarning; ``--verbose`` lets them through."""
    from subprocess_jobs import run_ok

    # the CLI quiets the bars through the environment, which an in-process CLI test earlier in this
    # worker may have set; the commands below must start from the user's environment
    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_NO_ADVISORY_WARNINGS"):
        monkeypatch.delenv(name, raising=False)

    from core.paths import SAMPLE_DIR

    def score(*flags: str) -> str:
        out = tmp_path / f"out{len(flags)}"
        return run_ok([*flags, "score", "--input", str(SAMPLE_DIR / "news.csv"), "--source", "news", "--model",
                       str(tiny_model), "--out", str(out), "--numeric", "fp32", "--no-cache"])

    quiet = score()
    assert "Loading weights" not in quiet and "FutureWarning" not in quiet and "scored 306 documents" in quiet
    assert "Loading weights" in score("--verbose")
