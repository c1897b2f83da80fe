"""Run `nramdsl ARGV` in a forked child under a memory and a time limit, and judge what it printed.

Shared by the fuzz tests (tests/test_fuzz_frontend.py) and the fuzz benchmark (benchmarks/fuzz_frontend.py).
The child is forked from the caller, so torch and the kernels are imported once; it gets its own data-segment
limit (`RLIMIT_DATA`, counted above what the caller already holds) and an alarm, reads a stdin that never
ends (so an import of /dev/stdin hangs as it would on a terminal), and sends back its exit code, its standard
error, and the kind of any exception that escaped `nramdsl.cli.main`.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import signal
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Callable

LOCATED = re.compile(r"^(.*?):(\d+):(\d+): error: ")
ARGUMENT = ("error: --", "error: override ")  # errors about a command-line argument have no position


def warm() -> None:
    """Import what the commands import, once, in the process that forks: a child would import torch again
    for every run otherwise (seconds each)."""
    import torch  # noqa: F401

    import nramdsl.cli  # noqa: F401
    import nramdsl.kernels.properties  # noqa: F401
    import nramdsl.training.setup  # noqa: F401


def _data_segment() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    return 0


def _in_child(argv: list[str], limit_bytes: int, timeout: int, out_fd: int, prepare: Callable[[], None]) -> None:
    soft = _data_segment() + limit_bytes
    resource.setrlimit(resource.RLIMIT_DATA, (soft, soft))
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(timeout)
    r, _ = os.pipe()  # a stdin that never ends: reading it hangs, as a terminal would
    os.dup2(r, 0)
    from nramdsl import cli

    prepare()
    err = io.StringIO()
    sys.stdout, sys.stderr = io.StringIO(), err
    result: dict[str, Any] = {}
    try:
        result["rc"] = cli.main(argv)
    except SystemExit as exc:
        result["rc"] = exc.code if isinstance(exc.code, int) else 2
    except BaseException as exc:  # noqa: BLE001 - what escapes is what is measured
        result["uncaught"] = type(exc).__name__
        result["detail"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-3000:]
    result["stderr"] = err.getvalue()[-20000:]
    os.write(out_fd, json.dumps(result).encode())


def run_limited(argv: list[str], limit_bytes: int, timeout: int,
                prepare: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """`nramdsl ARGV` in a forked child; {"rc", "stderr"}, or "uncaught" and "detail", or "signal"."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller (a test runner, a benchmark loop)
        os.close(r)
        try:
            _in_child(argv, limit_bytes, timeout, w, prepare)
        finally:
            os._exit(0)
    os.close(w)
    os.set_blocking(r, False)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout + 10
    status = None
    while status is None:
        chunks.append(_read(r))
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
        elif time.monotonic() > deadline:  # the alarm did not end it: end it here
            os.kill(pid, signal.SIGKILL)
        else:
            time.sleep(0.002)
    while chunk := _read(r):
        chunks.append(chunk)
    os.close(r)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return {"signal": "SIGALRM" if sig == signal.SIGALRM else signal.Signals(sig).name}
    try:
        return json.loads(b"".join(chunks).decode(errors="replace"))
    except ValueError:
        return {"signal": "no result"}


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return b""


def classify(result: dict[str, Any]) -> str:
    """ok, error (the project's own), uncaught, over_memory or over_time."""
    if "signal" in result:
        return "over_time" if result["signal"] == "SIGALRM" else "over_memory"
    kind = result.get("uncaught")
    if kind is None:
        return "ok" if result["rc"] == 0 else "error"
    detail = result.get("detail", "")
    if kind == "MemoryError" or "can't allocate memory" in detail or "not enough memory" in detail:
        return "over_memory"
    return "uncaught"


def score_errors(stderr: str, path: str, lines: list[str] | None) -> Counter:
    """Error lines, those without a position (errors about an argument aside), and located ones whose quoted
    line is not that line of the file (`lines`: the file split at "\\n", None when it is not UTF-8)."""
    counts: Counter = Counter()
    shown = stderr.split("\n")
    for k, line in enumerate(shown):
        m = LOCATED.match(line)
        if m:
            counts["error_lines"] += 1
            if m.group(1) == path and lines is not None and k + 1 < len(shown):
                n = int(m.group(2))
                want = lines[n - 1] if 1 <= n <= len(lines) else None
                got = shown[k + 1][4:] if shown[k + 1].startswith("    ") else None
                if got is not None and want is not None and not same_line(got, want):
                    counts["wrong_caret"] += 1
        elif line.startswith("error: "):
            counts["error_lines"] += 1
            if not line.startswith(ARGUMENT):
                counts["unlocated_errors"] += 1
    return counts


def _display(line: str) -> str:
    """A line with what a terminal would not show as itself (controls, format characters, separators) as '?',
    however the quoted line shows them."""
    return "".join(c if c == "\t" or c.isprintable() or c == " " else "?" for c in line.removesuffix("\r"))


def same_line(got: str, want: str) -> bool:
    """Whether a quoted source line is the file's line: equal, or a window of it marked by '…'."""
    got, want = _display(got), _display(want)
    if got == want:
        return True
    inner = got.removeprefix("…").removesuffix("…")
    return got != inner and inner in want
