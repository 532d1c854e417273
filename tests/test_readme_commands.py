"""Every ```bash block of the README after the two set-up commands, then every ```bash block of the
pages in ``docs/``, runs as written, from a non-editable install outside the checkout.

The first two README blocks (set-up + the default run, set-up + the tests) are what `.ci/run`
itself executes, so they are not re-run here. The others run in one folder made by
`.ci/install_elsewhere`, whose `.venv` is altsignal installed with `pip install .`: the quickstarts
and the docs show what a user of an install can run, not what the checkout happens to hold. The
order is fixed: the README's blocks first, in README order, then each page of ``DOC_PAGES`` in that
list's order, each page's blocks in page order; a later block may use what an earlier one wrote
(Quickstart 3 builds its store from Quickstart 1's ``runs/quickstart/scores``), so a page whose
blocks use another page's outputs goes after it. Every ``docs/*.md`` page must be in the list.
Blocks fenced without ``bash`` (cluster commands, research commands on the public sets) and
```python blocks are illustrations only.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from core.paths import datasets_dir

REPO_ROOT = Path(__file__).resolve().parents[1]

# The docs pages, in the order their ```bash blocks run (after the README's).
DOC_PAGES = [
    "docs/data.md",
    "docs/models.md",
    "docs/scoring-and-speed.md",
    "docs/features-and-store.md",
    "docs/text-features.md",
    "docs/configuration.md",
    "docs/timing.md",
    "docs/zoo.md",
    "docs/study.md",
    "docs/research.md",
    "docs/daily-operation.md",
    "docs/reliability.md",
]


def _bash_blocks(path: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)


def _blocks() -> list[tuple[str, str]]:
    """(where, block) for every block to run, in the order they run."""
    blocks = [("README.md", b) for b in _bash_blocks(REPO_ROOT / "README.md")[2:]]
    for page in DOC_PAGES:
        blocks += [(page, b) for b in _bash_blocks(REPO_ROOT / page)]
    return blocks


def test_every_docs_page_is_in_the_run_order():
    pages = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").glob("*.md"))
    assert sorted(DOC_PAGES) == pages, "add the new docs page to DOC_PAGES (or remove the deleted one)"
    assert len(set(DOC_PAGES)) == len(DOC_PAGES)


@pytest.mark.slow
def test_readme_blocks_run_in_order(tmp_path):
    """One test, README then docs pages in DOC_PAGES order: later blocks use what earlier ones wrote."""
    blocks = _blocks()
    assert any(where == "README.md" for where, _ in blocks), "the README lost its quickstart blocks"
    subprocess.run(["bash", str(REPO_ROOT / ".ci" / "install_elsewhere"), str(tmp_path)], check=True,
                   capture_output=True)
    # An install has no checkout to find the datasets beside (Quickstart 4's baselines train on
    # PhraseBank): it is given the tests' folder, as a user sets ALTSIGNAL_DATASETS.
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ALTSIGNAL_DATASETS": str(datasets_dir())}
    for where, block in blocks:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (f"{where} block failed:\n{block}\n--- stdout\n{proc.stdout[-3000:]}"
                                      f"\n--- stderr\n{proc.stderr[-3000:]}")
