"""What a run shows while it trains: a tqdm bar on a terminal, a plain line every tenth of the budget when
the output is a file or a pipe (so a log still says how far a run got), on standard error."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from tqdm import tqdm


class ProgressDisplay:
    def __init__(self, total: int, start: int = 0, *, enabled: bool = True, desc: str = "train") -> None:
        self.total, self.done, self.enabled, self.desc = total, start, enabled, desc
        self.bar: tqdm | None = None
        self.every = max(1, total // 10)
        self.t0 = time.perf_counter()
        if enabled and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=start, desc=desc, unit="step", dynamic_ncols=True, leave=True)

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, row: dict[str, Any]) -> None:
        """A metrics row (`nramdsl.training.loop.Trainer.step`): step, loss, train_error, level."""
        if not self.enabled:
            return
        step = int(row["step"])
        stats = {"loss": f"{row['loss']:.3f}", "err": f"{row['train_error']:.1%}", "level": row["level"]}
        if self.bar is not None:
            self.bar.update(step - self.done)
            self.bar.set_postfix(stats, refresh=False)
        elif step // self.every > self.done // self.every or step == self.total:
            rate = step / max(time.perf_counter() - self.t0, 1e-9)
            shown = " ".join(f"{k} {v}" for k, v in stats.items())
            print(f"{self.desc}: step {step}/{self.total} {shown} ({rate:.1f} steps/s)", file=sys.stderr, flush=True)
        self.done = step
