"""Evaluation as the paper does it (§4.2, §4.4), at the training size and beyond.

Error of one test case = the fraction of the cells that should hold output whose argmax is wrong
(the paper's 1 − c/m); a row reports the mean over test cases. Larger complexities get a memory just
large enough (never smaller than the training M) and a step budget scaled with the complexity and then
multiplied by a slack factor (default 2), so that halting, not a lucky budget, ends the run.
The discretized model (`nramdsl.machine.discrete`) runs on the integer machine and is compared with the
fuzzy model's read-out cell for cell. `generalization` is the table `nramdsl train` and `eval` print.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from tabulate import tabulate

from nramdsl import limits
from nramdsl.errors import NramError
from nramdsl.lang.spec import MachineSpec
from nramdsl.machine.discrete import run_discrete
from nramdsl.machine.fuzzy import NRAM, Readout
from nramdsl.machine.stacked import StackedController
from nramdsl.tasks import Task

BIG = 1000  # the complexity the integer machine alone runs at (past the paper's 50)


def masked_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The paper's metric per example: the fraction of the cells that should hold output that are wrong."""
    wrong = ((pred != target) & mask).sum(dim=1).to(torch.float64)
    return wrong / mask.sum(dim=1).clamp_min(1)


@dataclass
class CellGroup:
    """The test cases of a row whose input held `value` in the cell asked about (`by_cell`)."""

    value: int
    cases: int
    error: float | None  # fuzzy model, mean over these cases
    discrete_error: float | None = None


@dataclass
class EvalRow:
    complexity: int
    memory: int
    timesteps: int
    examples: int
    error: float | None  # fuzzy model (None when it was not run)
    solved: float | None  # fraction of test cases with every output cell right
    discrete_error: float | None = None
    discrete_solved: float | None = None
    match: float | None = None  # fraction of test cases where discrete and fuzzy outputs agree exactly
    mean_halt_step: float | None = None
    # the error split by one input cell's value (ListK's k, say): where a program stops generalizing
    by_cell: list[CellGroup] | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass(frozen=True)
class Budget:
    complexity: int
    memory: int
    timesteps: int


def scaled_budget(task: Task, complexity: int, train_complexity: int, train_memory: int, train_timesteps: int,
                  slack: float = 2.0, memory: int | None = None, timesteps: int | None = None) -> Budget:
    """Memory and steps for a complexity: M just fits (≥ the training M), T grows linearly × slack."""
    M = memory or max(train_memory, task.min_memory(complexity))
    T = timesteps or math.ceil(slack * train_timesteps * max(1.0, complexity / train_complexity))
    return Budget(complexity, M, T)


def default_complexities(train_complexity: int) -> list[int]:
    """The training complexity, twice and three times it (the paper's Fig. 3 reads 2x and 3x for the hard
    tasks), 20 and 50 (the paper's 'perfect' bar)."""
    return sorted({train_complexity, 2 * train_complexity, 3 * train_complexity, 20, 50})


@torch.no_grad()
def evaluate(
    model: NRAM,
    task: Task,
    budget: Budget,
    *,
    examples: int = 64,
    batch: int = 32,
    seed: int = 1234,
    readout: Readout = "halt",
    fuzzy: bool = True,
    discretize: bool = False,
    by_cell: int | None = None,
) -> EvalRow:
    """One row: `examples` test cases at exactly `budget.complexity` (the hardest at that size)."""
    return evaluate_many([model], task, budget, examples=examples, batch=batch, seed=seed, readout=readout,
                         fuzzy=fuzzy, discretize=discretize, by_cell=by_cell)[0]


# Members whose fuzzy runs share one forward pass are capped so that one memory tensor stays under this
# many floats (the fuzzy machine holds a few of them at a time): 2^26 floats is 256 MiB in float32.
EVAL_FLOATS = 1 << 26


@torch.no_grad()
def evaluate_many(
    models: list[NRAM],
    task: Task,
    budget: Budget,
    *,
    examples: int = 64,
    batch: int = 32,
    seed: int = 1234,
    readout: Readout = "halt",
    fuzzy: bool = True,
    discretize: bool = False,
    by_cell: int | None = None,
) -> list[EvalRow]:
    """The row of each model (of one machine) on the same test cases; the fuzzy runs of many models share
    forward passes (their controllers stacked), so scoring a population costs about one big run. With
    `by_cell`, each row also splits its errors by the value that memory cell held on input."""
    gen = torch.Generator().manual_seed(seed)
    per_model: list[dict[str, list[torch.Tensor]]] = [defaultdict(list) for _ in models]
    done = 0
    while done < examples:
        n = min(batch, examples - done)
        tb = task.generate(budget.complexity, budget.memory, n, gen)
        keys = tb.memory[:, by_cell].clone() if by_cell is not None else None
        fuzzy_preds: list[torch.Tensor | None] = [None] * len(models)
        if fuzzy:
            fuzzy_preds = _fuzzy_predictions(models, tb.memory, budget, readout, per_model)
        for k, model in enumerate(models):
            acc = per_model[k]
            if keys is not None:
                acc["keys"].append(keys)
            if fuzzy_preds[k] is not None:
                acc["errs"].append(masked_error(fuzzy_preds[k], tb.target, tb.mask))  # type: ignore[arg-type]
            if discretize:
                run = run_discrete(model, tb.memory, budget.timesteps, readout)
                d_pred = torch.from_numpy(np.ascontiguousarray(run.memory))
                acc["d_errs"].append(masked_error(d_pred, tb.target, tb.mask))
                if fuzzy_preds[k] is not None:
                    acc["matches"].append(((d_pred == fuzzy_preds[k]) | ~tb.mask).all(dim=1).double())
                if not fuzzy:
                    acc["halts"].append(torch.from_numpy(run.halted_at).double())
        done += n
    return [_row(budget, examples, acc) for acc in per_model]


def _fuzzy_predictions(models: list[NRAM], memory: torch.Tensor, budget: Budget, readout: Readout,
                       per_model: list[dict[str, list[torch.Tensor]]]) -> list[torch.Tensor | None]:
    """Each model's read-out on `memory`, in chunks of models that share one forward pass."""
    first = models[0]
    device = first.controller.head.weight.device
    dtype = first.controller.head.weight.dtype
    n, M = memory.shape
    chunk = max(1, EVAL_FLOATS // (n * M * M))
    preds: list[torch.Tensor | None] = []
    for start in range(0, len(models), chunk):
        group = models[start : start + chunk]
        controller = StackedController([m.controller for m in group]) if len(group) > 1 else group[0].controller
        runner = controller.select(torch.arange(len(group))) if len(group) > 1 else controller
        out = first.run(runner, memory.to(device).repeat(len(group), 1), dtype=dtype, timesteps=budget.timesteps)
        read, halt = out.readout(readout).cpu(), out.halting_step().cpu().double()
        for g in range(len(group)):
            preds.append(read[g * n : (g + 1) * n])
            per_model[start + g]["halts"].append(halt[g * n : (g + 1) * n])
    return preds


def _row(budget: Budget, examples: int, acc: dict[str, list[torch.Tensor]]) -> EvalRow:
    def mean(xs: list[torch.Tensor]) -> float | None:
        return float(torch.cat(xs).mean()) if xs else None

    def solved(xs: list[torch.Tensor]) -> float | None:
        return float((torch.cat(xs) == 0).double().mean()) if xs else None

    return EvalRow(budget.complexity, budget.memory, budget.timesteps, examples, mean(acc["errs"]),
                   solved(acc["errs"]), mean(acc["d_errs"]), solved(acc["d_errs"]), mean(acc["matches"]),
                   mean(acc["halts"]), _by_cell(acc) if acc["keys"] else None)


def _by_cell(acc: dict[str, list[torch.Tensor]]) -> list[CellGroup]:
    """The row's per-case errors grouped by the input value of the cell asked about, in value order."""
    keys = torch.cat(acc["keys"])
    errs = torch.cat(acc["errs"]) if acc["errs"] else None
    d_errs = torch.cat(acc["d_errs"]) if acc["d_errs"] else None

    def mean(xs: torch.Tensor | None, where: torch.Tensor) -> float | None:
        return None if xs is None else float(xs[where].mean())

    groups = []
    for value in torch.unique(keys).tolist():
        where = keys == value
        groups.append(CellGroup(int(value), int(where.sum()), mean(errs, where), mean(d_errs, where)))
    return groups


@dataclass
class GeneralizationReport:
    rows: list[EvalRow]
    train_row: EvalRow

    def perfect(self, up_to: int = 50) -> bool:
        return all(r.error == 0 for r in self.rows if r.error is not None and r.complexity <= up_to)

    def discrete_perfect(self) -> bool:
        return all(r.match == 1.0 for r in self.rows if r.match is not None)


def generalization(
    model: NRAM,
    task: Task,
    spec: MachineSpec,
    train_complexity: int,
    *,
    complexities: list[int] | None = None,
    examples: int = 64,
    slack: float = 2.0,
    readout: Readout = "halt",
    discretize: bool = True,
    big: int | None = BIG,
    memory: int | None = None,
    timesteps: int | None = None,
    progress: Callable[[str], None] | None = None,
    by_cell: int | None = None,
) -> GeneralizationReport:
    """The generalization table: fuzzy (and discretized) error at each complexity, then the integer
    machine alone at `big`. The first row (`train_row`) is the training budget itself, without slack.
    `progress` hears a line before each row (a row can take minutes)."""
    return generalization_many([model], task, spec, train_complexity, complexities=complexities, examples=examples,
                               slack=slack, readout=readout, discretize=discretize, big=big, memory=memory,
                               timesteps=timesteps, progress=progress, by_cell=by_cell)[0]


def generalization_many(
    models: list[NRAM],
    task: Task,
    spec: MachineSpec,
    train_complexity: int,
    *,
    complexities: list[int] | None = None,
    examples: int = 64,
    slack: float = 2.0,
    readout: Readout = "halt",
    discretize: bool = True,
    big: int | None = BIG,
    memory: int | None = None,
    timesteps: int | None = None,
    progress: Callable[[str], None] | None = None,
    by_cell: int | None = None,
) -> list[GeneralizationReport]:
    """`generalization` of each model, the fuzzy runs of all models sharing forward passes."""
    cs = default_complexities(train_complexity) if complexities is None else complexities
    n = 1 + len(cs) + bool(big and discretize)
    say = progress or (lambda line: None)
    b = scaled_budget(task, train_complexity, train_complexity, spec.memory, spec.timesteps, slack=1.0)
    say(f"row 1/{n}: the training budget, complexity {b.complexity} (M = {b.memory}, T = {b.timesteps})")
    train_rows = evaluate_many(models, task, b, examples=examples, readout=readout, by_cell=by_cell)
    table: list[list[EvalRow]] = [[] for _ in models]
    for i, c in enumerate(cs, 2):
        b = scaled_budget(task, c, train_complexity, spec.memory, spec.timesteps, slack, memory, timesteps)
        say(f"row {i}/{n}: complexity {c} (M = {b.memory}, T = {b.timesteps}){', discretized too' * discretize}")
        rows = evaluate_many(models, task, b, examples=examples, readout=readout, discretize=discretize, by_cell=by_cell)
        for k, row in enumerate(rows):
            table[k].append(row)
    if big and discretize:
        b = scaled_budget(task, big, train_complexity, spec.memory, spec.timesteps, slack)
        say(f"row {n}/{n}: complexity {big} on the integer machine alone (M = {b.memory}, T = {b.timesteps})")
        rows = evaluate_many(models, task, b, examples=min(examples, 16), readout=readout, fuzzy=False, discretize=True,
                             by_cell=by_cell)
        for k, row in enumerate(rows):
            table[k].append(row)
    return [GeneralizationReport(rows, train) for rows, train in zip(table, train_rows)]


def check_request(task: Task, spec: MachineSpec, train_complexity: int, complexities: list[int], *, examples: int,
                  slack: float, big: int | None, memory: int | None, timesteps: int | None,
                  batch: int = 32, by_cell: int | None = None) -> None:
    """The rows `generalization` would run, within the limits and sensible, before any runs (`nramdsl eval`
    takes these from the command line): an `NramError` naming the first that is not."""
    if not (math.isfinite(slack) and 0 < slack <= 100):
        raise NramError(f"slack must be > 0 and <= 100, got {slack}")
    if examples < 1:
        raise NramError(f"the number of test cases must be at least 1, got {examples}")
    limits.EXAMPLES.check(examples)
    for c in [*complexities, *([big] if big else [])]:
        if c < 1:
            raise NramError(f"complexity must be at least 1, got {c}")
        limits.COMPLEXITY.check(c)
    for value, what, limit in ((memory, "memory", limits.MEMORY), (timesteps, "timesteps", limits.TIMESTEPS)):
        if value is not None and value < 1:
            raise NramError(f"{what} must be at least 1, got {value}")
        if value is not None:
            limit.check(value)
    for c in complexities:
        b = scaled_budget(task, c, train_complexity, spec.memory, spec.timesteps, slack, memory, timesteps)
        if b.memory < task.min_memory(c):
            raise NramError(f"memory {b.memory} is too small for complexity {c} of task '{task.name}' "
                            f"(it needs M >= {task.min_memory(c)})")
        limits.TIMESTEPS.check(b.timesteps, None, None, f"complexity {c}: ")
        limits.FUZZY_CELLS.check(min(batch, examples) * b.memory * max(b.memory, b.timesteps), None, None,
                                 f"complexity {c} (M = {b.memory}, T = {b.timesteps}): ")
    if big:
        b = scaled_budget(task, big, train_complexity, spec.memory, spec.timesteps, slack)
        limits.TIMESTEPS.check(b.timesteps, None, None, f"complexity {big} on the integer machine: ")
    if by_cell is not None:  # every row's memory holds the cell: the training row's is the smallest
        smallest = min([scaled_budget(task, train_complexity, train_complexity, spec.memory, spec.timesteps).memory,
                        *([memory] if memory else [])])
        if not 0 <= by_cell < smallest:
            raise NramError(f"cell {by_cell} is not in every row's memory: it must be in 0 .. {smallest - 1}")


def format_table(rows: list[EvalRow]) -> str:
    """The rows as a text table, one line per complexity."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    head = ["complexity", "M", "T", "cases", "error", "solved", "discrete err", "discrete = fuzzy", "halt step"]
    body = [
        [r.complexity, r.memory, r.timesteps, r.examples, pct(r.error), pct(r.solved), pct(r.discrete_error),
         pct(r.match), "-" if r.mean_halt_step is None else f"{r.mean_halt_step + 1:.1f}"]
        for r in rows
    ]
    return tabulate(body, headers=head, tablefmt="simple", colalign=("right",) * len(head), disable_numparse=True)


def format_by_cell(rows: list[EvalRow], cell: int) -> str:
    """Each row's errors split by the input value of `cell`, one line per row."""

    def group(g: CellGroup) -> str:
        errors = " / ".join(f"{100 * x:.0f}%" for x in (g.error, g.discrete_error) if x is not None)
        return f"{g.value}: {errors} ({g.cases})"

    head = (f"error by the input value of cell {cell}: value: fuzzy / discretized error (cases); "
            "the integer machine's row is discretized only")
    return "\n".join([head, *(f"  complexity {r.complexity}: " + ", ".join(map(group, r.by_cell or []))
                              for r in rows)])
