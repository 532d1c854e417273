"""Run ``altsignal`` commands in their own process group, interrupt them, and check what is left.

Shared by the termination tests (SIGTERM/SIGINT) and the run fault-injection test (SIGKILL).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import psutil

CLI = [sys.executable, "-c", "from altsignal.cli import app; app()"]
STOP_BOUND_S = 10  # liveness bound: an interrupted job and all its processes are gone by then


class Job:
    """One CLI command in a new session (so its process group is its own), output collected."""

    def __init__(self, args: list[str]):
        self.proc = subprocess.Popen([*CLI, *args], start_new_session=True, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, ready: Callable[["Job"], bool], timeout: float = 600) -> bool:
        """Poll ``ready(job)`` until it holds (True) or the job ends (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if ready(self):
                return True
            time.sleep(0.02)
        raise AssertionError(f"job never got ready:\n{self.output[-3000:]}")

    def wait_until(self, ready: Callable[["Job"], bool], timeout: float = 600) -> None:
        """Poll ``ready(job)``; fail if the job ends first (it must still be mid-way)."""
        assert self.wait_for(ready, timeout), f"job ended before it could be interrupted:\n{self.output[-3000:]}"

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def signal(self, signum: int) -> tuple[int, list[str]]:
        """Send ``signum`` to the command's main process only (as a scheduler or ``timeout`` does);
        return its exit status and whatever of its process group is still running after the bound."""
        pgid = self.proc.pid
        sent = time.monotonic()
        os.kill(self.proc.pid, signum)
        rc = self.proc.wait(timeout=STOP_BOUND_S)
        left = group_members(pgid)
        while left and time.monotonic() - sent < STOP_BOUND_S:
            time.sleep(0.1)
            left = group_members(pgid)
        self._reader.join(timeout=5)
        return rc, left

    def finish(self, timeout: float = 900) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return rc


def group_members(pgid: int) -> list[str]:
    """Running (not zombie) processes of a process group, as 'pid cmdline' strings."""
    out = []
    for p in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.info['cmdline'] or [])[:200]}")
        except (ProcessLookupError, psutil.Error):
            pass
    return out


def run_ok(args: list[str]) -> str:
    job = Job(args)
    rc = job.finish()
    assert rc == 0, job.output[-4000:]
    return job.output


def _sorted(df: pd.DataFrame, drop: tuple[str, ...]) -> pd.DataFrame:
    df = df.drop(columns=list(drop), errors="ignore")
    scalar = [c for c in df.columns if not df[c].map(lambda v: isinstance(v, (list, tuple, dict, np.ndarray))).any()]
    return df.sort_values(scalar).reset_index(drop=True)


def frame(path: Path, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """A Parquet file or folder as a sorted frame without ``drop`` columns, for equality checks."""
    return _sorted(pd.read_parquet(path), drop)


def duckdb_table(db: Path, table: str, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """A table of a DuckDB file, sorted, without ``drop`` columns."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return _sorted(con.execute(f"SELECT * FROM {table}").df(), drop)
