"""Run one system in a child process and measure its wall time and peak memory.

Peak memory is the larger of two measurements:
  * ``ru_maxrss`` from ``os.wait4`` on that very child: the kernel's exact peak resident set of
    the child (and of any grandchildren it waited for), with no polling gaps;
  * the peak of the summed RSS of the child's live process tree, polled every 0.1 s with psutil
    (when installed), which also catches worker processes that run side by side.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.1


@dataclass
class ChildResult:
    returncode: int          # -N when killed by signal N; None on timeout
    stdout: str
    stderr: str
    wall_s: float
    peak_mib: float
    timed_out: bool = False

    def last_json_line(self) -> str | None:
        lines = [ln for ln in self.stdout.splitlines() if ln.lstrip().startswith("{")]
        return lines[-1] if lines else None

    def error_tail(self, n: int = 1) -> str:
        """The last non-empty stderr lines, for an ``n/a: <reason>`` cell."""
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        return " | ".join(lines[-n:]) if lines else f"exit code {self.returncode}, no message"


def _tree_rss(proc) -> int:
    """Summed RSS in bytes of a psutil process and its descendants (0 once it is gone)."""
    import psutil

    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_child(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
              timeout_s: float = 3600.0) -> ChildResult:
    """Run ``cmd`` to completion; kill its process group after ``timeout_s`` seconds."""
    try:
        import psutil
    except ImportError:   # the wait4 peak alone is still exact for single-process systems
        psutil = None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        ps = psutil.Process(proc.pid) if psutil else None
        polled, status, rusage, timed_out = 0, None, None, False
        while True:
            # wait4 (not Popen.poll) so that the kernel's rusage of this child is not thrown away.
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if ps is not None:
                polled = max(polled, _tree_rss(ps))
            if time.perf_counter() - start > timeout_s:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(POLL_S)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)   # keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        peak = max(rusage.ru_maxrss * 1024, polled) / 2**20   # ru_maxrss is in KiB on Linux
        return ChildResult(None if timed_out else proc.returncode,
                           out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                           wall, peak, timed_out)
