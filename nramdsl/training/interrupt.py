"""Ctrl-C during training: stop at the end of the current step, save, and say how to go on.

A KeyboardInterrupt raised mid-step would leave the weights half updated; the first SIGINT therefore only
asks the loop to stop (`StopRequest.requested`), and the loop ends the step, writes its checkpoint and
raises `TrainingInterrupted`. A second Ctrl-C interrupts at once, as usual.

A search's worker processes (`nramdsl reproduce --jobs N`) get the same stop when the search itself ends
without one, killed by SIGTERM or SIGKILL (`stop_with_parent`): left alone they would train their unit to
the end with nobody to collect it, and a relaunched search would find the folder taken.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after `step` updates; the state is saved in `run_dir` when there is one."""

    def __init__(self, step: int, run_dir: Path | None) -> None:
        super().__init__(f"interrupted at step {step}")
        self.step = step
        self.run_dir = run_dir


class StopRequest:
    """A context in which the first SIGINT sets `requested` instead of raising (main thread only: signal
    handlers can be installed nowhere else; elsewhere Ctrl-C behaves as it always does)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # the second Ctrl-C: the user means it
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


def stop_with_parent(parent: int, poll_s: float = 1.0, grace_s: float = 60.0) -> None:
    """Process-pool initializer: once `parent` (the search) is gone, stop this worker as Ctrl-C would (the
    step ends, the checkpoint is written, a rerun resumes there), and after `grace_s` more seconds end it
    whatever it is doing (scoring, or waiting for work that will never come)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(grace_s)
        os._exit(1)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()
