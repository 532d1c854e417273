"""Multi-task factor timing: datasets of (features, future factor returns), the network and its
baselines, walk-forward training, portfolio construction, backtest metrics, explanations, reports.

Entry points: ``altsignal timing fit|backtest|report --config timing/configs/default.toml``.
"""
