"""``core.lifecycle.marks_interruption``: a stage is marked interrupted however the signal surfaces.

Run in a fresh interpreter: the signal handlers belong to the main thread of the process.
"""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, signal, time
from core import lifecycle

marks = []
try:
    with lifecycle.guarded():
        with lifecycle.marks_interruption(marks.append):
            try:
                {body}
            except lifecycle.Interrupted as exc:  # as joblib or torch may do with it
                raise RuntimeError("a library's own error") from exc
except BaseException as exc:
    print(type(exc).__name__, marks)
"""


def _run(body: str) -> str:
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(body=body)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_an_error_raised_while_a_signal_unwinds_still_marks_the_interruption():
    assert _run("os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)") == "RuntimeError ['SIGTERM']"


def test_an_error_without_a_signal_is_not_an_interruption():
    assert _run("raise ValueError('bad input')") == "ValueError []"


def test_a_plain_interrupt_is_marked():
    assert _run("raise KeyboardInterrupt") == "KeyboardInterrupt ['SIGINT']"
