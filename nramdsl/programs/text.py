"""A circuit as the statements of a table row, and zero-patterns as few conditions.

`circuit_statements` writes a circuit the way the paper describes its learned Copy circuit and the way a
`controller table` row is written (`nramdsl.lang.table`): registers that change, each as an expression
(`r4 = min(inc(r3), r2)`), then the gates that act on memory (`write(add(r4, r2), read(r4))`). A gate's
wiring is written out at its first use and by name after that; registers not mentioned keep their
value; gates nothing sees are left out. Parsing the statements back gives the same pruned circuit.
"""

from __future__ import annotations

from nramdsl.circuit.names import source_labels
from nramdsl.circuit.wiring import Wiring
from nramdsl.machine.program import Circuit, live_gates

Cube = tuple["bool | None", ...]  # per register: True r == 0, False r != 0, None either


def circuit_statements(circuit: Circuit, wiring: Wiring) -> list[str]:
    R = wiring.registers
    labels = source_labels(wiring)
    written: set[int] = set()

    def expr(src: int) -> str:
        if src < R:
            return labels[src]
        i = src - R
        if wiring.gates[i].arity == 0 or i in written:
            return labels[src]
        written.add(i)
        args = ", ".join(expr(circuit.inputs[slot]) for slot in wiring.gate_slots[i])
        return f"{labels[src]}({args})"

    lines = [f"r{j + 1} = {expr(src)}" for j, src in enumerate(circuit.updates) if src != j]
    # then the live gates no live gate sees (`write`, for its effect), with what hangs off them
    live = live_gates(circuit, wiring)
    seen = {circuit.inputs[s] - R for k, slots in enumerate(wiring.gate_slots) if live[k] for s in slots}
    lines += [expr(R + i) for i, g in enumerate(wiring.gates) if live[i] and g.arity > 0 and i not in written | seen]
    return lines


def cover(masks: set[int], registers: int) -> list[Cube]:
    """Few cubes (conditions on some registers) whose zero-patterns are exactly `masks`: the prime
    implicants (Quine–McCluskey), chosen greedily, redundant ones dropped. Cubes may overlap each other
    but never leave `masks`, so covers of different sets are disjoint and row order does not matter."""
    full = (1 << registers) - 1
    level = {(m, full) for m in masks}  # (value bits, cared-for bits)
    primes: set[tuple[int, int]] = set()
    while level:
        merged: set[tuple[int, int]] = set()
        used: set[tuple[int, int]] = set()
        for v, care in level:
            for j in range(registers):
                bit = 1 << j
                if care & bit and not v & bit and (v | bit, care) in level:
                    merged.add((v, care & ~bit))
                    used.update({(v, care), (v | bit, care)})
        primes |= level - used
        level = merged
    chosen: list[tuple[int, int]] = []
    left = set(masks)
    members = {p: {m for m in masks if m & p[1] == p[0]} for p in primes}
    while left:
        best = max(sorted(primes), key=lambda p: len(members[p] & left))
        chosen.append(best)
        left -= members[best]
    for p in list(chosen):  # drop a cube the others already cover
        others = set().union(*(members[q] for q in chosen if q != p))
        if members[p] <= others:
            chosen.remove(p)
    return [tuple((bool(v >> j & 1) if care >> j & 1 else None) for j in range(registers))
            for v, care in sorted(chosen)]
