"""Every ```bash block of the README after the two set-up commands runs as written.

The first two blocks (set-up + the default run, set-up + the tests) are what `.ci/run` itself
executes, so they are not re-run here. Blocks fenced without ``bash`` (cluster commands) are
illustrations only.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from nlp.paths import REPO_ROOT

BLOCKS = re.findall(r"```bash\n(.*?)```", (REPO_ROOT / "README.md").read_text(), flags=re.S)[2:]


def test_readme_blocks_run_in_order():
    """One test, in README order: later quickstarts use what earlier ones wrote."""
    assert BLOCKS, "the README lost its quickstart blocks"
    shutil.rmtree(REPO_ROOT / "runs" / "quickstart", ignore_errors=True)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for block in BLOCKS:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (f"README block failed:\n{block}\n--- stdout\n{proc.stdout[-3000:]}"
                                      f"\n--- stderr\n{proc.stderr[-3000:]}")
