"""The README's first two commands are the product's front door; CI runs both exactly as written."""
from __future__ import annotations

import re

from nlp.paths import REPO_ROOT


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
    assert run_cmd in ci and test_cmd in ci
