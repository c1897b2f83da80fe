"""A table program as a `.nram` machine with a `controller table { … }` (`nramdsl explain --emit nram`).

The machine repeats the trained machine's settings (sizes, circuit, halting, what `write` returns, task,
train preset) and imports the file that defined it, so its gate sets resolve as they did in training
(`via` kernels included). A machine loaded from text has no file to import: its gate sets' source text is
copied in instead. Zero-patterns with the same row are merged into few conditions (`text.cover`); the
largest group becomes the `otherwise` row. Halting probabilities are written as float32 values, the
precision the model computes them in, so reading the file back gives the same program bit for bit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from nramdsl.circuit.wiring import Wiring
from nramdsl.lang.frontend import load_text
from nramdsl.lang.spec import MachineSpec
from nramdsl.lang.table import pattern_text
from nramdsl.machine.program import Program, Row
from nramdsl.programs.text import circuit_statements, cover


@dataclass(frozen=True)
class EmitContext:
    """What the program text says beyond the rows."""

    header: list[str]  # comment lines at the top
    row_notes: Mapping[int, str]  # zero-pattern mask -> a note ("reached at steps 2 .. 9"); missing: none
    first_step: Mapping[int, int]  # zero-pattern mask -> the step it is first reached at (rows are in that order)
    unreached_note: str  # the note for a row none of whose patterns has one ("never reached on copy")
    output: Path | None  # where the file goes (imports are written relative to it); None: stdout


def halt_text(f: float) -> str | None:
    """`halt`, `halt 3.2e-05` (the float32 value's shortest exact spelling), or None for f = 0."""
    if f <= 0.0:
        return None
    if f >= 1.0:
        return "halt"
    x = np.float32(f)
    if f >= 1e-3:
        return f"halt {np.format_float_positional(x, unique=True, trim='-')}"
    return f"halt {np.format_float_scientific(x, unique=True, trim='-', exp_digits=1)}"


def emit_nram(program: Program, spec: MachineSpec, wiring: Wiring, ctx: EmitContext) -> str:
    lines = [f"# {h}" if h else "#" for h in ctx.header]
    lines += _imports(spec, ctx.output)
    lines += ["", f"machine {spec.name}_program {{"]
    if spec.uses:
        lines.append(f"  use {', '.join(spec.uses)}")
    if spec.task:
        lines.append(f"  task {spec.task}")
    lines += [f"  registers {spec.registers}", f"  memory {spec.memory}", f"  timesteps {spec.timesteps}",
              f"  circuit {_circuit(spec.circuit)}", f"  halt {spec.halt}", f"  write returns {spec.write_returns}",
              "  controller table {"]
    lines += _rows(program, wiring, ctx)
    lines.append("  }")
    if spec.train:
        entries = ", ".join(f"{k} = {json.dumps(v) if isinstance(v, str) else repr(v)}" for k, v in spec.train.items())
        lines.append(f"  train {{ {entries} }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _rows(program: Program, wiring: Wiring, ctx: EmitContext) -> list[str]:
    groups: dict[Row, list[int]] = {}
    for mask, row in enumerate(program.rows):
        groups.setdefault(row, []).append(mask)
    # reached groups first, in the order they are first reached; the largest group last, as `otherwise`
    never = 1 << 62
    order = sorted(groups, key=lambda r: (min(ctx.first_step.get(m, never) for m in groups[r]), min(groups[r])))
    last = max(order, key=lambda r: len(groups[r]))
    order.remove(last)
    out: list[str] = []
    for row in order + [last]:
        cubes = [None] if row is last else cover(set(groups[row]), program.registers)
        notes = [ctx.row_notes[m] for m in groups[row] if m in ctx.row_notes]
        body = [f"      {s}" for s in circuit_statements(row.circuit, wiring)]
        if program.halting and (h := halt_text(row.halt)):
            body.append(f"      {h}")
        for cube in cubes:
            out.append(f"    # {'; '.join(dict.fromkeys(notes)) if notes else ctx.unreached_note}")
            out.append("    otherwise {" if cube is None else f"    when {pattern_text(cube)} {{")
            out += body + ["    }"]
    return out


def _circuit(names: tuple[str, ...]) -> str:
    """`a, b, c`, or `(a, b, c) * k` when the circuit is one sequence repeated."""
    n = len(names)
    for k in range(1, n):
        if n % k == 0 and names == names[:k] * (n // k):
            return f"({', '.join(names[:k])}) * {n // k}"
    return ", ".join(names)


def _imports(spec: MachineSpec, output: Path | None) -> list[str]:
    """`import "…"` of the file that defined the machine, or its gate sets' text when it came from text."""
    ref = spec.ref
    if ref is not None and ref.source is None and spec.source and Path(spec.source).exists():
        target = os.path.abspath(spec.source)
        if output is not None:
            target = os.path.relpath(target, os.path.dirname(os.path.abspath(output)))
        return [f"import {json.dumps(target)}"]
    if ref is None or ref.source is None:
        return []
    out = []
    for gs, file in load_text(ref.source, ref.filename).gatesets():
        if gs.name.value in spec.uses:
            out += [""] + file.text.splitlines()[gs.span.line - 1 : gs.span.end_line]
    return out
