"""Every ```bash block of the README after the two set-up commands runs as written, from a
non-editable install outside the checkout.

The first two blocks (set-up + the default run, set-up + the tests) are what `.ci/run` itself
executes, so they are not re-run here. The others run in order in one folder made by
`.ci/install_elsewhere`, whose `.venv` is altsignal installed with `pip install .`: the quickstarts
show what a user of an install can run, not what the checkout happens to hold. Blocks fenced
without ``bash`` (cluster commands) are illustrations only.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from nlp.paths import datasets_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```bash\n(.*?)```", (REPO_ROOT / "README.md").read_text(), flags=re.S)[2:]


def test_readme_blocks_run_in_order(tmp_path):
    """One test, in README order: later quickstarts use what earlier ones wrote."""
    assert BLOCKS, "the README lost its quickstart blocks"
    subprocess.run(["bash", str(REPO_ROOT / ".ci" / "install_elsewhere"), str(tmp_path)], check=True,
                   capture_output=True)
    # An install has no checkout to find the datasets beside (Quickstart 4's baselines train on
    # PhraseBank): it is given the tests' folder, as a user sets ALTSIGNAL_DATASETS.
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ALTSIGNAL_DATASETS": str(datasets_dir())}
    for block in BLOCKS:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (f"README block failed:\n{block}\n--- stdout\n{proc.stdout[-3000:]}"
                                      f"\n--- stderr\n{proc.stderr[-3000:]}")
