"""An `Explanation` as text (`nramdsl explain`) and as JSON (`--json`)."""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import Any

from tabulate import tabulate

from nramdsl.circuit.names import gate_labels
from nramdsl.lang.table import cube_of_mask, pattern_text
from nramdsl.machine.extract import letters
from nramdsl.machine.program import Circuit, live_gates
from nramdsl.programs.explain import CheckRow, Explanation, Reach, circuits_in_order
from nramdsl.programs.text import circuit_statements


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=110)


def _controller(ex: Explanation) -> str:
    c = ex.spec.controller
    return f"{c.kind}(hidden = {c.hidden})"


def _cases(ex: Explanation) -> str:
    return ", ".join(f"{n} at complexity {b.complexity} (M = {b.memory}, T = {b.timesteps})" for b, n in ex.budgets)


def _reach(r: Reach | None, total: int, task: str) -> str:
    if r is None:
        return f"never reached on {task}"
    steps = f"step {r.first}" if r.first == r.last else f"steps {r.first} .. {r.last}"
    return f"{steps}, {r.cases} of {total} cases"


def _f(f: float) -> str:
    """Two digits: enough to read; --json and --emit nram give the exact value."""
    return "0" if f <= 0 else "1" if f >= 1 else f"{f:.2g}"


def _circuit_block(label: str, circuit: Circuit, ex: Explanation, note: str = "") -> list[str]:
    body = circuit_statements(circuit, ex.model.wiring) or ["(nothing: every register kept)"]
    head = f"  {label:<4}{body[0]}" + (f"    # {note}" if note else "")
    return [head] + [f"      {s}" for s in body[1:]]


def _usage(ex: Explanation, circuits: list[Circuit], tested: set[int]) -> list[str]:
    """Which registers and gates the reached circuits use (r1 in the paper's Copy: unused)."""
    w = ex.model.wiring
    R = w.registers
    read, written, live_any = set(), set(), [False] * len(w.gates)
    for c in circuits:
        live = live_gates(c, w)
        live_any = [a or b for a, b in zip(live_any, live)]
        read |= {c.inputs[s] for i, slots in enumerate(w.gate_slots) if live[i] for s in slots if c.inputs[s] < R}
        read |= {src for j, src in enumerate(c.updates) if src < R and src != j}
        written |= {j for j, src in enumerate(c.updates) if src != j}
    lines = []
    for j in range(R):
        does = [w for w, yes in (("read", j in read), ("set" if j in written else "never set (stays 0)", True),
                                 ("tested by the controller", j in tested)) if yes]
        unused = j not in read and j not in written and j not in tested
        lines.append(f"r{j + 1}  " + ("unused: never read, never set, not tested" if unused else ", ".join(does)))
    labels = gate_labels(w)
    used = [labels[i] for i, yes in enumerate(live_any) if yes]
    unused = [labels[i] for i, yes in enumerate(live_any) if not yes]
    lines.append(f"used gates    {', '.join(used) or 'none'}")
    lines.append(f"unused gates  {', '.join(unused) or 'none'}")
    return lines


def _halting(ex: Explanation) -> list[str]:
    out = []
    for (b, n) in ex.budgets:
        steps = Counter(ex.halt_steps.get(b.complexity, []))
        if set(steps) == {b.timesteps}:
            out.append(f"complexity {b.complexity}: read out at the last step, {b.timesteps}, in all {n} cases "
                       f"(the model does not halt)")
        else:
            shown = ", ".join(f"step {s} ({k} cases)" for s, k in sorted(steps.items())[:6])
            out.append(f"complexity {b.complexity}: read out at {shown}" + (" …" if len(steps) > 6 else ""))
    return out


def _table_text(ex: Explanation) -> list[str]:
    assert ex.program is not None
    prog, R = ex.program, ex.spec.registers
    total = sum(n for _, n in ex.budgets)
    order = circuits_in_order(ex)
    label = {c: letters(k) for k, c in enumerate(order)}
    masks = sorted(range(len(prog.rows)), key=lambda m: (m not in ex.reach, ex.reach[m].first if m in ex.reach else 0, m))
    head = [f"r{j + 1}" for j in range(R)] + ["circuit"] + (["f"] if prog.halting else []) + ["reached"]
    body = []
    for m in masks:
        cube = cube_of_mask(m, R)
        row = prog.rows[m]
        cells = ["= 0" if z else "≠ 0" for z in cube] + [label[row.circuit]]
        cells += [_f(row.halt)] if prog.halting else []
        body.append(cells + [_reach(ex.reach.get(m), total, ex.task.name)])
    n_reached = len(ex.reach)
    lines = _wrap(f"controller {_controller(ex)}, feedforward: its discretized form is a table with one row per "
                  f"zero-pattern of r1..r{R}, extracted exactly ({len(prog.rows)} rows, {n_reached} reached on "
                  f"{ex.task.name}).")
    lines += ["", "rows" + (" (f: willingness to finish; a run stops once Σ p_t reaches 1/2)" if prog.halting else "")]
    lines += ["  " + line for line in tabulate(body, headers=head, tablefmt="plain", disable_numparse=True).splitlines()]
    reached_circuits = list(dict.fromkeys(prog.rows[m].circuit for m in masks if m in ex.reach))
    lines += ["", "circuits (registers not set keep their value; gates not shown are not needed)"]
    for c in order:
        note = "" if c in reached_circuits else f"never reached on {ex.task.name}"
        lines += _circuit_block(label[c], c, ex, note)
    tested = {j for m in ex.reach for j in range(R) if prog.rows[m] != prog.rows[m ^ (1 << j)]}
    lines += ["", "on the task (reached rows)"] + ["  " + s for s in _usage(ex, reached_circuits, tested)]
    return lines


def _states_text(ex: Explanation) -> list[str]:
    assert ex.machine is not None
    total = sum(n for _, n in ex.budgets)
    catalog = ex.machine.catalog
    lines = _wrap(f"controller {_controller(ex)}: the circuit depends on the LSTM's state, so these are the circuits "
                  f"the discretized model chose on the test cases, grouped ({len(catalog.circuits)} distinct).")
    lines += ["", "circuits (in order of first use; registers not set keep their value)"]
    for k, c in enumerate(catalog.circuits):
        lines += _circuit_block(letters(k), c, ex, _reach(ex.circuit_reach.get(k), total, ex.task.name))
    lines += ["", f"sequences at complexity {ex.complexity} (first step on the left)"]
    for seq, n in ex.sequences[:5]:
        shown = seq if len(seq) <= 100 else seq[:100] + " …"
        lines.append(f"  {n:>4} cases  {shown}")
    if len(ex.sequences) > 5:
        lines.append(f"  … and {len(ex.sequences) - 5} other sequences")
    lines += ["", "what the choice depends on (tested on every observed step)"]
    width = max(len(f.hypothesis) for f in ex.findings)
    for f in ex.findings:
        first, *rest = f.detail.split("; ") if f.holds else [f.detail]
        lines.append(f"  {f.hypothesis:<{width}}  {'yes' if f.holds else 'no '}  {first}")
        lines += [" " * (width + 9) + more for more in rest]
    if ex.machine.conflicts:
        lines.append(f"  the state machine read off the cases at complexity {ex.complexity} has "
                     f"{len(ex.machine.conflicts)} ambiguous (previous circuit, zero-pattern) keys")
    lines += ["", "on the task"] + ["  " + s for s in _usage(ex, catalog.circuits, set())]
    return lines


def check_text(rows: list[CheckRow], feedforward: bool) -> str:
    what = "the extracted table" if feedforward else "the state machine read off the first row's cases"
    head = ["complexity", "M", "T", "cases", "program err", "model err", "same output", "same halt step",
            "same registers"]

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    body = [[r.complexity, r.memory, r.timesteps, r.cases, pct(r.program_error), pct(r.model_error),
             pct(r.same_output), pct(r.same_halt), pct(r.same_registers)] for r in rows]
    if not feedforward:
        head.append("unseen state")
        for cells, r in zip(body, rows):
            cells.append(pct(r.unseen or 0.0))
    table = tabulate(body, headers=head, tablefmt="simple", colalign=("right",) * len(head), disable_numparse=True)
    legend = "(same registers: the registers after every step up to the read-out agree"
    if not feedforward:
        legend += ";\n unseen state: cases that met a (previous circuit, zero-pattern) pair the first row's cases never showed"
    return f"check: {what} vs the trained model, discretized, both run on the integer machine\n{legend})\n{table}\n"


def explanation_text(ex: Explanation) -> str:
    spec = ex.spec
    lines = [f"run {ex.run}: machine '{spec.name}'" + (f" ({spec.source})" if spec.source else ""),
             f"task {ex.task.name}, trained up to complexity {ex.complexity}; read out at the "
             f"{'halting step' if ex.readout == 'halt' else ex.readout + ' step'}"]
    lines += _wrap(f"test cases: {_cases(ex)}") + [""]
    lines += _table_text(ex) if ex.feedforward else _states_text(ex)
    lines += ["", "halting"] + ["  " + s for s in _halting(ex)]
    text = "\n".join(lines) + "\n"
    if ex.checks:
        text += "\n" + check_text(ex.checks, ex.feedforward)
    return text


def explanation_json(ex: Explanation) -> dict[str, Any]:
    w = ex.model.wiring
    out: dict[str, Any] = {
        "run": ex.run, "machine": ex.spec.name, "task": ex.task.name, "complexity": ex.complexity,
        "controller": ex.spec.controller.kind, "readout": ex.readout,
        "test_sets": [{"complexity": b.complexity, "memory": b.memory, "timesteps": b.timesteps, "cases": n}
                      for b, n in ex.budgets],
        "halt_steps": {str(c): steps for c, steps in ex.halt_steps.items()},
    }
    if ex.program is not None:
        order = circuits_in_order(ex)
        label = {c: letters(k) for k, c in enumerate(order)}
        out["circuits"] = {label[c]: circuit_statements(c, w) for c in order}
        out["rows"] = [{"mask": m, "pattern": pattern_text(cube_of_mask(m, ex.spec.registers)),
                        "circuit": label[row.circuit], "halt": row.halt,
                        "reached": None if m not in ex.reach else vars(ex.reach[m])}
                       for m, row in enumerate(ex.program.rows)]
    if ex.machine is not None:
        out["circuits"] = {letters(k): circuit_statements(c, w) for k, c in enumerate(ex.machine.catalog.circuits)}
        out["circuit_reach"] = {letters(k): vars(r) for k, r in ex.circuit_reach.items()}
        out["sequences"] = [{"circuits": s, "cases": n} for s, n in ex.sequences]
        out["depends_on"] = [vars(f) for f in ex.findings]
    if ex.checks:
        out["check"] = [vars(r) for r in ex.checks]
    return out
