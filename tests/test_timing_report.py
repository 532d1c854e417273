"""The timing report's verdicts are data; the report and the run summary render the same data."""
from __future__ import annotations

import pandas as pd

from timing.report import HEADLINE_COLUMNS, cumulative_title, render_verdicts, verdicts


def _frames():
    fm = pd.DataFrame({"model": ["network"] * 3, "part": ["all"] * 3, "factor": ["Mkt-RF", "SMB", "HML"],
                       "oos_r2": [0.02, 0.01, -0.01], "cw_p": [0.01, 0.05, 0.5]})
    rows = []
    for part in ("validation", "test", "all"):
        for basis in ("net", "gross"):
            for strategy, sharpe in (("network", 0.6), ("network+vol", 0.7), ("equal_weight", 0.4), ("ridge", 0.8)):
                rows.append({"part": part, "basis": basis, "strategy": strategy, "sharpe": sharpe + (basis == "gross") * 0.1,
                             **{c: 0.1 for c in HEADLINE_COLUMNS[2:]}, "sharpe_lo": 0.0})
    pm = pd.DataFrame(rows)
    tests = pd.DataFrame({"part": ["test", "test"], "basis": ["net", "net"], "strategy": ["network", "network"],
                          "versus": ["equal weight", "best baseline (ridge)"], "p_value": [0.2, 0.6]})
    return fm, pm, tests


def test_verdicts_are_data():
    v = verdicts(*_frames())
    assert v.part == "test"
    first, eq, best, costs = v.targets
    assert first.met is True and first.verdict == "met" and "['Mkt-RF', 'SMB']" in first.claim
    assert eq.met is True and eq.verdict == "beats" and eq.detail == "difference +0.200, bootstrap p = 0.20"
    assert best.met is False and "ridge 0.800" in best.claim and "p = 0.60" in best.detail
    assert costs.met is None and "cost drag" in costs.claim
    assert list(v.headline.strategy) == ["ridge", "network+vol", "network", "equal_weight"]  # best net Sharpe first
    assert list(v.headline.columns) == HEADLINE_COLUMNS


def test_rendering_the_data():
    v = verdicts(*_frames())
    lines = render_verdicts(v)
    assert lines[1] == ("- test part, network net Sharpe 0.600 vs static equal weight 0.400: **beats** "
                        "(difference +0.200, bootstrap p = 0.20).")
    with_table = render_verdicts(v, headline=True)
    assert with_table[: len(lines)] == lines and "Net of costs, test part:" in with_table
    assert with_table[-1].splitlines()[2].startswith("| ridge | 0.800")


def test_plot_title_comes_from_the_config():
    title = cumulative_title({"portfolio": {"vol_target": 0.15, "cost_bps": 7.5}})
    assert title == "Cumulative net returns (15% vol target, 7.5 bps per unit turnover)"
