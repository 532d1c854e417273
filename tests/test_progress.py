"""Progress bars: drawn on a terminal only; elsewhere one summary log line per stage."""
from __future__ import annotations

import logging

from nlp.progress import Progress


def test_off_a_terminal_a_stage_logs_one_line_and_draws_nothing(capsys, caplog):
    caplog.set_level(logging.INFO, logger="nlp.progress")
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
