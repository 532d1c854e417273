"""Benchmark: how long the CLI takes before it does any work.

    .venv/bin/python bench/cli_startup.py             # median of 3 runs of each
    .venv/bin/python bench/cli_startup.py --runs 5

Prints ONE JSON line, in seconds (median over ``--runs``) of wall time and, beside each as
``*_cpu_s``, of CPU time (user + system of the child): on a shared machine the wall time grows
with the load, the CPU time much less.

- ``python_pass_s``: ``python -c pass``, the floor every command pays;
- ``help_s``: ``altsignal --help`` (every subcommand registered, nothing heavy imported);
- ``first_document_s``: ``altsignal score`` on a one-document file (the first headline of the
  sample corpus) with the default model in fp32, from start to exit: imports, model load, one
  document scored and written. fp32 so that no numeric check runs; ``auto`` runs it once per model
  and machine (minutes) and reads the record afterwards.

Targets (issue 12): ``--help`` under 3 s, the first document under 10 s.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.paths import SAMPLE_DIR  # noqa: E402

ALTSIGNAL = str(Path(sys.executable).with_name("altsignal"))


def cpu_of_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``runs`` runs of ``cmd``."""
    walls, cpus = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), cpu_of_children()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
        cpus.append(cpu_of_children() - c)
    return round(statistics.median(walls), 2), round(statistics.median(cpus), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.csv"
        one.write_text("".join((SAMPLE_DIR / "news.csv").read_text(encoding="utf-8").splitlines(keepends=True)[:2]))
        result = {"bench": "cli_startup", "runs": args.runs, "loadavg_start": os.getloadavg()[0]}
        result["python_pass_s"], result["python_pass_cpu_s"] = timed([sys.executable, "-c", "pass"], env, args.runs)
        result["help_s"], result["help_cpu_s"] = timed([ALTSIGNAL, "--help"], env, args.runs)
        walls, cpus = [], []
        for i in range(args.runs):  # a fresh output folder each time: a finished job would be skipped
            cmd = [ALTSIGNAL, "score", "--input", str(one), "--out", str(Path(tmp) / f"out{i}"), "--numeric", "fp32", "-q"]
            w, c = timed(cmd, env, 1)
            walls.append(w)
            cpus.append(c)
        result["first_document_s"], result["first_document_cpu_s"] = statistics.median(walls), statistics.median(cpus)
    result["loadavg_end"] = os.getloadavg()[0]
    result["targets"] = {"help<3s": result["help_s"] < 3, "first_document<10s": result["first_document_s"] < 10}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
