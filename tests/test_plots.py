"""Figures are drawn without pyplot: altsignal never changes the matplotlib backend of its host."""
from __future__ import annotations

import subprocess
import sys


def test_importing_and_plotting_leave_the_backend_alone(tmp_path):
    code = f"""
import matplotlib
matplotlib.use("svg")
import nlp.evaluate, nlp.models.explain, signals.health, signals.research.report, timing.report
from core.plots import subplots
fig, ax = subplots(1, 2, figsize=(3, 2))
ax[0].plot([0, 1], [1, 0])
fig.savefig(r"{tmp_path / 'f.png'}")
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
