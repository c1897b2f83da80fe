"""What a run shows while it trains, on standard error: a tqdm bar on a terminal, a plain line every tenth
of the step budget when the output is a file or a pipe (so a log still says how far a run got).

A single run shows its loss, error and curriculum level; a population shows its best level, how many
members have solved their task and how many still train, and its speed in seed-steps per second
(training steps summed over members).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from tqdm import tqdm


def population_stats(population: Any, step_wall: float) -> dict[str, str]:
    """The figures a population's progress line shows (`nramdsl.training.population.Population`)."""
    members = population.members
    alive = population.alive()
    if len(members) == 1:
        m = members[0]
        return {"err": f"{m.train_error:.1%}", "level": str(m.curriculum.difficulty)}
    trained = sum(1 for m in members if m.progress.step == population.step_count) or len(alive)
    return {
        "best level": str(max(m.curriculum.difficulty for m in members)),
        "solved": f"{sum(1 for m in members if m.progress.solved_at is not None)}/{len(members)}",
        "alive": str(len(alive)),
        "seed-steps/s": f"{trained / max(step_wall, 1e-9):.1f}",
    }


class ProgressDisplay:
    def __init__(self, total: int, start: int = 0, *, enabled: bool = True, desc: str = "train") -> None:
        self.total, self.done, self.start, self.enabled, self.desc = total, start, start, enabled, desc
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

    def update(self, stats: dict[str, str], rows: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
        """One step done; `stats` are the figures to show, `rows` the metrics rows it logged."""
        if not self.enabled:
            return
        step = self.done + 1
        if rows and "member" not in rows[0]:
            stats = {"loss": f"{rows[0]['loss']:.3f}", **stats}
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(stats, refresh=False)
        elif step // self.every > self.done // self.every or step == self.total:
            rate = (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)
            shown = " ".join(f"{k} {v}" for k, v in stats.items())
            print(f"{self.desc}: step {step}/{self.total} {shown} ({rate:.1f} steps/s)", file=sys.stderr, flush=True)
        self.done = step
