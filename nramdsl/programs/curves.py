"""A run's learning curves, read back from its metrics.jsonl (`nramdsl curves RUN [--plot FILE.png]`).

Per member (a single run is a population of one): the training error at the current curriculum level and
the level, per logged step, and the population-based-training copies it took (step, the seed it copied).
The metrics file is untrusted like every run file: it is read through `RunDir` (size-bounded, one located
error for a line that is not a row), and a row whose fields are not numbers is not a point of any curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from nramdsl.errors import NramError
from nramdsl.programs.plot import require_matplotlib
from nramdsl.training.pbt import read_copy
from nramdsl.training.rundir import RunDir


@dataclass
class Curve:
    seed: int
    steps: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)  # training error at the level the member was on
    levels: list[int] = field(default_factory=list)
    copies: list[tuple[int, int]] = field(default_factory=list)  # (step, seed copied from)

    def best(self) -> float:
        return min((e for e in self.errors if not math.isnan(e)), default=math.nan)


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def read_curves(run: Path) -> list[Curve]:
    """Every member's curve, in member order."""
    rundir = RunDir(run)
    if not rundir.metrics.is_file():
        raise NramError(f"'{run}' has no metrics.jsonl: not a run directory `nramdsl train` wrote")
    curves: dict[int, Curve] = {}
    for row in rundir.read_metrics():
        member = row.get("member", 0)
        if not isinstance(member, int) or isinstance(member, bool):
            continue
        seed = row.get("seed", member)
        curve = curves.setdefault(member, Curve(seed if isinstance(seed, int) else member))
        try:
            copy = read_copy(row)
        except ValueError:
            continue  # a damaged copy row is no point of the curve; the curve is still drawn
        if copy is not None:
            curve.copies.append((copy.step, copy.copied))
            continue
        error, level = row.get("train_error"), row.get("level")
        if _number(error) and isinstance(level, int):
            curve.steps.append(row["step"])
            curve.errors.append(float(error))  # type: ignore[arg-type]
            curve.levels.append(level)
    if not any(c.steps for c in curves.values()):
        raise NramError(f"'{rundir.metrics}' holds no training rows yet")
    return [curves[m] for m in sorted(curves)]


def curves_table(curves: list[Curve]) -> list[list[object]]:
    """One row per member: seed, last step, last level, best and last error, PBT copies taken."""
    return [[c.seed, c.steps[-1] if c.steps else 0, c.levels[-1] if c.levels else "-",
             f"{c.best():.1%}" if c.errors else "-", f"{c.errors[-1]:.1%}" if c.errors else "-", len(c.copies)]
            for c in curves]


def window_table(curves: list[Curve], width: int) -> list[list[object]]:
    """One row per `width` steps (steps [k·width, (k+1)·width)): over every member's logged rows in it, the
    mean and the lowest training error, the mean level and how many members logged there. What compares two
    searches step for step (`nramdsl curves A --window 250` beside `nramdsl curves B --window 250`)."""
    rows: dict[int, list[tuple[float, int, int]]] = {}
    for member, c in enumerate(curves):
        for step, error, level in zip(c.steps, c.errors, c.levels):
            if not math.isnan(error):
                rows.setdefault(step // width, []).append((error, level, member))
    out: list[list[object]] = []
    for k in sorted(rows):
        errors, levels, members = zip(*rows[k])
        out.append([f"{k * width}-{(k + 1) * width - 1}", f"{sum(errors) / len(errors):.3f}", f"{min(errors):.3f}",
                    f"{sum(levels) / len(levels):.2f}", len(set(members))])
    return out


def plot_curves(curves: list[Curve], path: Path, title: str) -> None:
    """Two panels sharing the step axis: training error and curriculum level, a line per member; a PBT copy is
    a dot where the member's curve jumps."""
    Figure = require_matplotlib()
    fig = Figure(figsize=(10, 7), layout="constrained")
    err_ax, level_ax = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    for c in curves:
        if not c.steps:
            continue
        line, = err_ax.plot(c.steps, c.errors, linewidth=0.9, label=f"seed {c.seed}")
        level_ax.step(c.steps, c.levels, where="post", linewidth=0.9, color=line.get_color())
        at = {s: e for s, e in zip(c.steps, c.errors)}
        dots = [(s, at[s]) for s, _ in c.copies if s in at]
        if dots:
            err_ax.plot(*zip(*dots), "o", markersize=3, color=line.get_color())
    err_ax.set_ylim(-0.02, 1.02)
    err_ax.set_ylabel("training error at the member's level")
    err_ax.set_title(title)
    level_ax.set_ylabel("curriculum level")
    level_ax.yaxis.get_major_locator().set_params(integer=True)
    level_ax.set_xlabel("step")
    if len(curves) <= 16:
        err_ax.legend(fontsize="x-small", ncols=4, loc="lower left")
    fig.savefig(path, dpi=110)
