"""The README's first two commands are the product's front door; CI runs both as written.

The test command runs in the checkout. The run command's ``.venv/bin/altsignal run`` runs from the
folder ``.ci/install_elsewhere`` made, whose ``.venv`` is a non-editable install: the same command,
proving that the installed package finds what it ships without the checkout.
"""
from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _first_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)
    return [b.strip() for b in blocks[:2]]


def test_readme_starts_with_two_single_line_commands():
    run_cmd, test_cmd = _first_commands()
    assert "\n" not in run_cmd and "\n" not in test_cmd
    assert "altsignal run" in run_cmd
    assert "pytest" in test_cmd


def test_ci_runs_both_readme_commands():
    run_cmd, test_cmd = _first_commands()
    ci = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci
    setup, run = run_cmd.split(" && ")
    assert setup in ci and 'bash .ci/install_elsewhere "$work"' in " ".join(ci)
    assert f'(cd "$work" && {run})' in ci
