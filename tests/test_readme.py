"""The README's first two commands are the product's front door; CI must run exactly the second."""
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


def test_ci_runs_the_readme_test_command():
    _, test_cmd = _first_commands()
    ci = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in [line.strip() for line in ci]
