"""Stopping a command cleanly: SIGTERM and SIGINT end it, its pools and its child processes.

The CLI enters :func:`guarded` once around every command. Inside it:

- SIGTERM and SIGINT raise :class:`Interrupted` (a ``KeyboardInterrupt``, so joblib, Ray and
  click treat it as a user interrupt) in the main thread. Code that owns a manifest or a stage
  marks it with :func:`marks_interruption` while the exception unwinds; atomic writes keep every
  finished file whole, so a later run resumes exactly as after ``kill -9``.
- A watcher thread learns of the signal through ``signal.set_wakeup_fd``, which the C-level
  handler writes at once even while the main thread is inside a long native call (a torch op,
  a DuckDB query) and cannot run Python. If the command has not ended :data:`GRACE_S` seconds
  later, the watcher stops every child process and exits with the signal's code itself.
- joblib's process pools are loky executors whose workers ask Linux to kill them when their
  parent dies (``PR_SET_PDEATHSIG``, set in the worker initializer) and exit after
  :data:`IDLE_WORKER_S` idle seconds, so even a ``kill -9`` of the command leaves no worker.

After an interruption the CLI calls :func:`stop_children`: Ray is shut down if this process
started or joined it, the loky executor is killed, and every remaining descendant process gets
SIGTERM, then SIGKILL. The exit code is 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
"""
from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import psutil

log = logging.getLogger(__name__)

HANDLED = (signal.SIGTERM, signal.SIGINT)
GRACE_S = 5.0  # after a signal, the command has this long to unwind before it is ended hard
IDLE_WORKER_S = 60  # an idle loky worker exits after this long (joblib's default is 300 s)
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_received: int | None = None  # the first SIGTERM/SIGINT seen by the current guarded command
_guarding = False  # inside guarded(), in the main thread


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived; the command unwinds and exits with 128 + ``signum``."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def received() -> int | None:
    """The signal that interrupted the current command, if one did."""
    return _received


def _on_signal(signum: int, frame) -> None:
    global _received
    if _received is not None:
        return  # already unwinding: a second signal must not break the cleanup (the watcher bounds it)
    _received = signum
    raise Interrupted(signum)


def record(signum: int) -> None:
    """Note a SIGTERM/SIGINT that a loop handles itself by stopping at a safe point (fine-tuning
    saves its best weights): the command still exits 128 + signum, within the watcher's bound."""
    global _received
    if _received is None:
        _received = signum


def reclaim() -> None:
    """Put the command's handlers back after a library replaced them (``ray.init`` sets its own
    SIGTERM handler, which would exit with code 15 and skip the cleanup)."""
    if _guarding and threading.current_thread() is threading.main_thread():
        for s in HANDLED:
            signal.signal(s, _on_signal)


@contextmanager
def marks_interruption(mark: Callable[[str], None]) -> Iterator[None]:
    """Call ``mark(signal_name)`` if the block is interrupted, then let the interruption go on.

    A library may turn the :class:`Interrupted` raised inside its callbacks into an error of its
    own (torch, joblib and DuckDB can), so any exception that ends the block after a handled
    signal counts as the interruption.
    """
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt) or _received is not None:
            if not isinstance(exc, KeyboardInterrupt):
                log.debug("interrupted by %s while raising %r", signal.Signals(_received).name, exc)
            mark(signal.Signals(_received or signal.SIGINT).name)
        raise


def _die_with_parent(parent_pid: int) -> None:
    """loky worker initializer: the kernel SIGKILLs this worker when its parent exits."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def cpu_seconds() -> float:
    """CPU seconds of this process and its live descendants (for benches: joblib's reusable loky
    workers are still alive when a bench ends, so RUSAGE_CHILDREN, which counts only children
    already waited for, would miss them)."""
    me = psutil.Process().cpu_times()
    total = me.user + me.system
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def stop_children(wait_s: float = 2.0) -> None:
    """End Ray (if used), the loky executor and every descendant process of this one."""
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    reusable = sys.modules.get("joblib.externals.loky.reusable_executor")
    if reusable is not None and reusable._executor is not None:
        reusable._executor.shutdown(wait=False, kill_workers=True)
    # loky's resource tracker exits by itself once this process is gone; ended early, it would be
    # relaunched by loky's exit-time cleanup, after this sweep.
    procs = [p for p in psutil.Process().children(recursive=True) if "resource_tracker" not in _cmdline(p)]
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=wait_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=wait_s)


def exit_now(code: int) -> None:
    """End an interrupted command at once: exit handlers run, interpreter finalization is skipped.

    Finalizing torch, joblib and their threads takes seconds on a busy machine, time a
    scheduler's grace period may not have; files are already whole (atomic writes).
    """
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _watch(read_fd: int, done: threading.Event) -> None:
    """Wait for a handled signal's byte on the wakeup pipe; end the process if it lingers."""
    while True:
        try:
            data = os.read(read_fd, 64)
        except OSError:
            return
        if not data:
            return  # pipe closed: the command ended
        hit = [s for s in data if s in HANDLED]
        if hit:
            break
    if done.wait(GRACE_S):
        return
    signum = _received or hit[0]
    log.warning("still running %.0f s after %s; stopping child processes and exiting", GRACE_S,
                signal.Signals(signum).name)
    stop_children(wait_s=1.0)
    os._exit(128 + signum)


@contextmanager
def guarded() -> Iterator[None]:
    """Install the signal handling and the worker pool settings for one command; undo them after.

    Outside the main thread (signals cannot be handled there) the block runs unguarded.
    """
    global _received, _guarding
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from joblib import parallel_config

    _received = None
    old_handlers = {s: signal.getsignal(s) for s in HANDLED}
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    done = threading.Event()
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(read_fd, done), name="altsignal-signal-watch", daemon=True)
    watcher.start()
    for s in HANDLED:
        signal.signal(s, _on_signal)
    _guarding = True
    try:
        with parallel_config(backend="loky", initializer=_die_with_parent, initargs=(os.getpid(),),
                             idle_worker_timeout=IDLE_WORKER_S):
            yield
    finally:
        _guarding = False
        done.set()
        for s, handler in old_handlers.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(old_wakeup)
        os.close(write_fd)
        watcher.join(timeout=1.0)
        os.close(read_fd)
