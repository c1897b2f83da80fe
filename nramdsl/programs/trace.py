"""`nramdsl trace`: one test case of a trained run, step by step, as a text table like the paper's App. C.

Each line is one step: the memory after it, the registers after it, the circuit the controller chose
(a label; the circuits are written out below the table) and halting (f_t, p_t, Σ p). The fuzzy model's
values are argmaxes; a value whose probability is below 0.99 is marked `?`, and a circuit whose least
certain live attention is below 0.99 shows that probability. The trace ends at the step the answer is
read from (`--all-steps`: every step of the fuzzy run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nramdsl.errors import NramError
from nramdsl.machine.extract import Catalog, letters
from nramdsl.machine.fuzzy import NRAM
from nramdsl.machine.program import live_gates
from nramdsl.machine.trace import Trace, TraceStep, discrete_trace, fuzzy_trace
from nramdsl.programs.text import circuit_statements
from nramdsl.tasks import Task
from nramdsl.training.evaluate import Budget, scaled_budget
from nramdsl.training.loop import load_run
from nramdsl.training.rundir import RunDir
from nramdsl.training.setup import find_task

SURE = 0.99  # below this probability a fuzzy value is marked uncertain
SEED = 2024


@dataclass
class TracedCase:
    run: str
    model: NRAM
    task: Task
    budget: Budget
    example: int
    trace: Trace
    target: np.ndarray  # [M] the expected memory
    mask: np.ndarray  # [M] the output cells

    @property
    def shown(self) -> list[TraceStep]:
        return self.trace.steps[: self.trace.readout + 1]


def trace_run(run_dir: str | Path, *, complexity: int | None = None, example: int = 0, discretize: bool = False,
              timesteps: int | None = None, slack: float = 1.0, skip_via: bool = False) -> TracedCase:
    if not RunDir(run_dir).has_checkpoint():
        raise NramError(f"'{run_dir}' is not a run directory (no checkpoint.pt)")
    if example < 0 or (complexity is not None and complexity < 1) or (timesteps is not None and timesteps < 1):
        raise NramError("--example must be >= 0, --complexity and --timesteps >= 1")
    model, config = load_run(run_dir, skip_via=skip_via)
    task = find_task(config["task"])
    c_train = config["complexity"]
    c = complexity or c_train
    budget = scaled_budget(task, c, c_train, model.spec.memory, model.spec.timesteps, slack, timesteps=timesteps)
    batch = task.generate(c, budget.memory, example + 1, torch.Generator().manual_seed(SEED + c))
    memory = batch.memory[example]
    readout = config["train"]["readout"]
    if discretize:
        trace = discrete_trace(model, memory, budget.timesteps, readout)
    else:
        trace = fuzzy_trace(model, memory, budget.timesteps, readout)
    return TracedCase(str(run_dir), model, task, budget, example, trace, batch.target[example].numpy(),
                      batch.mask[example].numpy())


def labels(steps: list[TraceStep]) -> tuple[Catalog, list[int]]:
    """Circuits of the shown steps, labelled A, B, … in order of first use."""
    catalog = Catalog()
    return catalog, [catalog.label(s.circuit) for s in steps]


def certainty(step: TraceStep, model: NRAM) -> float:
    """The least probability any live attention puts on its chosen source (1 when discretized)."""
    w = model.wiring
    live = live_gates(step.circuit, w)
    rows = [s for i, slots in enumerate(w.gate_slots) if live[i] for s in slots] + [w.n_slots + j for j in range(w.registers)]
    return float(step.attention[rows].max(-1).min()) if rows else 1.0


def _values(values: np.ndarray, probs: np.ndarray, width: int) -> str:
    return " ".join(f"{v}{'?' if p < SURE else ' '}".rjust(width + 1) for v, p in zip(values.tolist(), probs.tolist()))


def trace_text(case: TracedCase, all_steps: bool = False) -> str:
    tr, spec = case.trace, case.model.spec
    steps = tr.steps if all_steps else case.shown
    catalog, used = labels(steps)
    M, R = len(tr.initial), spec.registers
    width = len(str(M - 1))
    kind = "discretized model on the integer machine" if tr.discretized else "fuzzy model"
    wrong = int(((steps[tr.readout].memory != case.target) & case.mask).sum()) if tr.readout < len(steps) else None
    lines = [f"trace of {case.run}: case {case.example} of {case.task.name} at complexity {case.budget.complexity} "
             f"(M = {M}, T = {case.budget.timesteps}), {kind}",
             f"read out at step {tr.readout + 1}" + ("" if wrong is None else f": {wrong} of {int(case.mask.sum())} "
                                                     f"output cells wrong"), ""]
    mem_head = f"memory (cells 0 .. {M - 1})".ljust(M * (width + 2) - 1)
    reg_head = " ".join(f"r{j + 1}".rjust(width + 1) for j in range(R))
    lines.append(f"step | {mem_head} | {reg_head} | circuit   f        p_t      Σp")
    zeros = np.zeros(R, dtype=np.int64)
    lines.append(f"{0:>4} | {_values(tr.initial, np.ones(M), width)} | {_values(zeros, np.ones(R), width)} |")
    for t, (s, k) in enumerate(zip(steps, used)):
        sure = certainty(s, case.model)
        circ = letters(k) + ("" if sure >= SURE else f" ({sure:.2f})")
        mark = "  <- read out" if t == tr.readout else ""
        lines.append(f"{t + 1:>4} | {_values(s.memory, s.memory_p, width)} | {_values(s.registers, s.registers_p, width)}"
                     f" | {circ:<9} {s.f:<8.3g} {s.p:<8.3g} {s.cumulative:<6.3g}{mark}")
    if not all_steps and len(tr.steps) > len(steps):
        lines.append(f"     ({len(tr.steps) - len(steps)} more steps after the read-out are not shown: --all-steps)")
    lines += ["", "circuits (registers not set keep their value)"]
    for k, c in enumerate(catalog.circuits):
        body = circuit_statements(c, case.model.wiring) or ["(nothing: every register kept)"]
        lines += [f"  {letters(k):<4}{body[0]}"] + [f"      {b}" for b in body[1:]]
    if not tr.discretized:
        lines.append(f"\n? marks a value whose probability is below {SURE}")
    return "\n".join(lines) + "\n"
