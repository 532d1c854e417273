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


def test_readme_marks_the_run_time_line():
    """The line stating the default run's measured time carries a marker, so it can be found and updated."""
    lines = [line for line in (REPO_ROOT / "README.md").read_text().splitlines() if "<!-- run-time -->" in line]
    assert len(lines) == 1 and "minutes" in lines[0]


def test_readme_links_every_docs_page_and_each_page_links_back():
    readme = (REPO_ROOT / "README.md").read_text()
    pages = sorted((REPO_ROOT / "docs").glob("*.md"))
    assert pages
    for page in pages:
        assert f"](docs/{page.name})" in readme, f"README's 'Where to go next' lacks docs/{page.name}"
        head = page.read_text().splitlines()[:4]
        assert head[0].startswith("# ") and any("](../README.md)" in line for line in head), \
            f"docs/{page.name} must start with a title, a one-line summary and a link back to the README"


def test_relative_links_resolve():
    """Relative links in the README and the docs pages point at files that exist (anchors not checked)."""
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            assert (path.parent / target.split("#", 1)[0]).exists(), f"{path.name}: broken link {target}"
