"""Multi-task factor timing: datasets of (features, future factor returns), the network and its
baselines, walk-forward training, portfolio construction, backtest metrics, explanations, reports.

Entry points: ``altsignal timing fit|backtest|report --config timing/configs/default.toml``.
"""

from pathlib import Path

# The shipped timing and run configs, found from this file so a non-editable install finds them too
# (kept here, not in timing.config, so the CLI can name the default without importing pandas).
CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_TIMING_CONFIG = CONFIG_DIR / "default.toml"
