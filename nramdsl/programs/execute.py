"""`nramdsl run`: a machine with a table controller, run on its task on the integer machine.

The table is the program (`Program.from_table`); no network is involved unless `fuzzy` asks for the
compiled controller (`nramdsl.machine.weights`) too, whose fuzzy run must read out the same memory.
The step budget scales with the complexity from the machine's `timesteps` at the largest instance its
memory holds, times `slack` (as `nramdsl eval` scales a trained run's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from nramdsl.circuit.wiring import Wiring
from nramdsl.errors import NramError
from nramdsl.lang.spec import MachineSpec
from nramdsl.machine.discrete import run_program
from nramdsl.machine.fuzzy import NRAM
from nramdsl.machine.program import Program
from nramdsl.tasks import Task
from nramdsl.training.evaluate import masked_error, scaled_budget


@dataclass(frozen=True)
class ProgramRow:
    complexity: int
    memory: int
    timesteps: int
    cases: int
    error: float  # the paper's metric, integer machine
    solved: float  # fraction of cases with every output cell right
    mean_halt_step: float  # 1-based
    fuzzy_error: float | None = None  # the compiled controller's fuzzy model
    fuzzy_match: float | None = None  # fraction of cases where it reads out what the integer machine does

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def table_program(spec: MachineSpec) -> Program:
    table = spec.controller.table
    if table is None:
        raise NramError(f"machine '{spec.name}' has no table controller (its controller is {spec.controller.kind}); "
                        f"`nramdsl run` runs tables (for a trained run, `nramdsl explain RUN --emit nram -o FILE` "
                        f"writes its table)",
                        spec.span)
    return Program.from_table(table, Wiring.of(spec))


def run_table(spec: MachineSpec, task: Task, complexity: int, *, examples: int = 16, memory: int | None = None,
              timesteps: int | None = None, slack: float = 2.0, fuzzy: bool = False, seed: int = 0) -> ProgramRow:
    program = table_program(spec)
    if complexity < 1 or examples < 1:
        raise NramError("--complexity and --examples must be >= 1")
    design = task.max_complexity(spec.memory)
    if design < 1:
        raise NramError(f"task '{task.name}' does not fit in the machine's memory (M = {spec.memory})", spec.span)
    budget = scaled_budget(task, complexity, design, spec.memory, spec.timesteps, slack, memory, timesteps)
    if budget.memory < task.min_memory(complexity):
        raise NramError(f"complexity {complexity} of task '{task.name}' needs M >= {task.min_memory(complexity)}")
    batch = task.generate(complexity, budget.memory, examples, torch.Generator().manual_seed(seed))
    run = run_program(program, spec, batch.memory, budget.timesteps)
    pred = torch.from_numpy(np.ascontiguousarray(run.memory))
    err = masked_error(pred, batch.target, batch.mask)
    fuzzy_error = fuzzy_match = None
    if fuzzy:
        with torch.no_grad():
            out = NRAM(spec).eval()(batch.memory, timesteps=budget.timesteps)
        fpred = out.readout("halt")
        fuzzy_error = float(masked_error(fpred, batch.target, batch.mask).mean())
        fuzzy_match = float((fpred == pred).all(dim=1).double().mean())
    return ProgramRow(complexity, budget.memory, budget.timesteps, examples, float(err.mean()),
                      float((err == 0).double().mean()), float(np.mean(run.halted_at + 1)), fuzzy_error, fuzzy_match)
