"""A trained run -> its discrete program, how it is used on the task, and (`check`) whether it is right.

Test cases: `examples` at the run's training complexity and `big_examples` at `big` (1,000 by default),
each with the evaluation's budget (M just fits, twice the scaled step budget) and fixed seeds.

Feedforward controller: the program is the exact table (`extract_table`); it is run on the test cases
to see which rows the task reaches, and when. LSTM controller: the discretized model is observed on
the test cases at the training complexity (`observe`); its circuits are grouped, and what the choice
depends on is tested against the observations (`nramdsl.programs.dependence`); the program is the state
machine read off those observations.

`check` runs the program and the trained model, discretized, through the same integer-machine driver on
the same cases, and compares outputs, halting steps and the registers after every step.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from nramdsl.errors import NramError
from nramdsl.lang.spec import MachineSpec
from nramdsl.machine.discrete import DiscreteRun, drive, run_program
from nramdsl.machine.extract import (Catalog, Observed, Recorder, StateMachine, StateMachinePolicy, extract_table,
                                     letters, observe)
from nramdsl.machine.fuzzy import NRAM
from nramdsl.machine.integer import ReferenceMachine
from nramdsl.machine.options import Readout
from nramdsl.machine.program import Circuit, Program
from nramdsl.programs.dependence import Finding, dependence
from nramdsl.programs.emit import EmitContext
from nramdsl.tasks import Task, TaskBatch
from nramdsl.training.evaluate import BIG, Budget, masked_error, scaled_budget
from nramdsl.training.loop import load_run
from nramdsl.training.rundir import RunDir
from nramdsl.training.setup import find_task

SEED = 4321  # test cases differ from evaluation's (seed 1234) and training's


@dataclass(frozen=True)
class Reach:
    """How a zero-pattern (or a circuit) is used on the test cases."""

    cases: int  # test cases that reach it
    first: int  # 1-based steps
    last: int


@dataclass(frozen=True)
class CheckRow:
    complexity: int
    memory: int
    timesteps: int
    cases: int
    program_error: float
    model_error: float
    same_output: float  # fractions of cases
    same_halt: float
    same_registers: float  # the registers after every step up to the read-out
    unseen: float | None = None  # LSTM: cases that met a (previous circuit, zero-pattern) the program never saw


@dataclass
class Explanation:
    run: str
    spec: MachineSpec
    model: NRAM
    task: Task
    complexity: int
    readout: Readout
    budgets: list[tuple[Budget, int]]  # test sets: budget, cases
    program: Program | None = None  # feedforward: the exact table
    reach: dict[int, Reach] = field(default_factory=dict)  # zero-pattern mask -> use
    machine: StateMachine | None = None  # LSTM: the observed state machine
    circuit_reach: dict[int, Reach] = field(default_factory=dict)  # LSTM: catalog label -> use
    sequences: list[tuple[str, int]] = field(default_factory=list)  # LSTM: circuit sequences and their counts
    findings: list[Finding] = field(default_factory=list)
    halt_steps: dict[int, list[int]] = field(default_factory=dict)  # complexity -> read-out step of each case
    checks: list[CheckRow] = field(default_factory=list)

    @property
    def feedforward(self) -> bool:
        return self.program is not None


def test_sets(task: Task, spec: MachineSpec, complexity: int, examples: int, big: int | None,
              big_examples: int) -> list[tuple[Budget, TaskBatch]]:
    out = []
    for c, n in ((complexity, examples), (big, big_examples)):
        if c and n:
            b = scaled_budget(task, c, complexity, spec.memory, spec.timesteps)
            out.append((b, task.generate(c, b.memory, n, torch.Generator().manual_seed(SEED + c))))
    return out


def explain_run(run_dir: str | Path, *, examples: int = 64, big: int | None = BIG, big_examples: int = 16,
                check: bool = False, skip_via: bool = False) -> Explanation:
    if not RunDir(run_dir).has_checkpoint():
        raise NramError(f"'{run_dir}' is not a run directory (no checkpoint.pt)")
    model, config = load_run(run_dir, skip_via=skip_via)
    task = find_task(config["task"])
    c, readout = config["complexity"], config["train"]["readout"]
    sets = test_sets(task, model.spec, c, examples, big, big_examples)
    ex = Explanation(str(run_dir), model.spec, model, task, c, readout, [(b, len(tb.memory)) for b, tb in sets])
    if model.controller.cell is None:
        _explain_table(ex, sets)
    else:
        _explain_states(ex, sets)
    if check:
        ex.checks = [_check(ex, b, tb) for b, tb in sets]
    return ex


def _explain_table(ex: Explanation, sets: list[tuple[Budget, TaskBatch]]) -> None:
    ex.program = extract_table(ex.model)
    for budget, tb in sets:
        run, rec, _ = _run_program(ex, budget, tb)
        _add_reach(ex.reach, rec, key=lambda o: o.mask)
        ex.halt_steps[budget.complexity] = (run.halted_at + 1).tolist()


def _explain_states(ex: Explanation, sets: list[tuple[Budget, TaskBatch]]) -> None:
    catalog = Catalog()
    recorders = []
    for budget, tb in sets:
        run, rec = observe(ex.model, tb.memory, budget.timesteps, ex.readout, catalog)
        recorders.append(rec)
        _add_reach(ex.circuit_reach, rec, key=lambda o: o.circuit)
        ex.halt_steps[budget.complexity] = (run.halted_at + 1).tolist()
    # the program is learned from the cases at the training complexity only, so the check at 1,000 tests it
    ex.machine = StateMachine.learn(catalog, recorders[0].cases)
    cases = [steps for rec in recorders for steps in rec.cases]
    ex.findings = dependence(cases, ex.spec.registers)
    counts = Counter(" ".join(letters(o.circuit) for o in steps) for steps in recorders[0].cases)
    ex.sequences = counts.most_common()


def _add_reach(reach: dict[int, Reach], rec: Recorder, key: Callable[[Observed], int]) -> None:
    """Fold each case's use of `key` (a zero-pattern, a circuit) into `reach`."""
    for steps in rec.cases:
        seen: dict[int, tuple[int, int]] = {}
        for o in steps:
            k = key(o)
            lo, hi = seen.get(k, (o.step, o.step))
            seen[k] = (min(lo, o.step), max(hi, o.step))
        for k, (lo, hi) in seen.items():
            old = reach.get(k)
            reach[k] = Reach(1, lo + 1, hi + 1) if old is None else Reach(old.cases + 1, min(old.first, lo + 1),
                                                                          max(old.last, hi + 1))


def _run_program(ex: Explanation, budget: Budget, tb: TaskBatch) -> tuple[DiscreteRun, Recorder, float | None]:
    """The program on the cases; for an LSTM's state machine also the fraction of cases it lost its way on."""
    rec = Recorder(ex.model.wiring)
    if ex.program is not None:
        return run_program(ex.program, ex.spec, tb.memory, budget.timesteps, ex.readout, rec), rec, None
    assert ex.machine is not None
    machine = ReferenceMachine(ex.spec, budget.memory, ex.model.wiring)
    policy = StateMachinePolicy(ex.machine, ex.model.wiring, len(tb.memory))
    run = drive(machine, policy, tb.memory.numpy(), budget.timesteps, ex.readout, rec)
    return run, rec, float(policy.lost.mean())


def _check(ex: Explanation, budget: Budget, tb: TaskBatch) -> CheckRow:
    prog_run, prog_rec, unseen = _run_program(ex, budget, tb)
    model_run, model_rec = observe(ex.model, tb.memory, budget.timesteps, ex.readout)

    def error(run: DiscreteRun) -> float:
        return float(masked_error(torch.from_numpy(np.ascontiguousarray(run.memory)), tb.target, tb.mask).mean())

    same_regs = [len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
                 for a, b in zip(prog_rec.registers, model_rec.registers)]
    return CheckRow(budget.complexity, budget.memory, budget.timesteps, len(tb.memory), error(prog_run),
                    error(model_run), float(np.mean((prog_run.memory == model_run.memory).all(axis=1))),
                    float(np.mean(prog_run.halted_at == model_run.halted_at)), float(np.mean(same_regs)), unseen)


def circuits_in_order(ex: Explanation) -> list[Circuit]:
    """Feedforward: distinct circuits, the reached ones first in order of first reach, then the rest."""
    assert ex.program is not None
    rows = ex.program.rows
    reached = sorted(ex.reach, key=lambda m: (ex.reach[m].first, m))
    order = [rows[m].circuit for m in reached] + [r.circuit for r in rows]
    return list(dict.fromkeys(order))


def emit_context(ex: Explanation, output: Path | None) -> EmitContext:
    """What `explain --emit nram` writes around the rows: where the program came from, and which rows the
    test cases reach."""
    total = sum(n for _, n in ex.budgets)
    sizes = " and ".join(str(b.complexity) for b, _ in ex.budgets)
    notes = {}
    for m, r in ex.reach.items():
        steps = f"step {r.first}" if r.first == r.last else f"steps {r.first} .. {r.last}"
        notes[m] = f"reached at {steps} ({r.cases} of {total} test cases)"
    header = [f"The program of the trained run {ex.run} (machine '{ex.spec.name}', task {ex.task.name}),",
              f"written by `nramdsl explain {ex.run} --emit nram`: the discretized controller's circuit and",
              "willingness to finish f for every zero-pattern of the registers, exactly. Rows note whether test",
              f"cases of {ex.task.name} at complexity {sizes} reach them. `nramdsl run` runs it on the integer",
              "machine; `nramdsl compile` / `nramdsl train` start from an MLP that runs it."]
    first = {m: r.first for m, r in ex.reach.items()}
    return EmitContext(header, notes, first, f"never reached on {ex.task.name} at complexity {sizes}", output)
