"""Names of the wiring's sources and distributions, as a program is written and printed.

Pool index j < R is register `r{j+1}`; R + i is the output of gate i, called by its name, or `name.k`
(1-based occurrence) when the circuit repeats it (`circuit (…) * 2`). These are the names a table
controller's rows use (`nramdsl.lang.table`), so a printed program parses back to the same circuit.
"""

from __future__ import annotations

from nramdsl.circuit.wiring import Wiring


def gate_labels(wiring: Wiring) -> list[str]:
    """Each gate's name in circuit order; `name.k` for the k-th of a repeated name."""
    names = [g.name for g in wiring.gates]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(f"{n}.{seen[n]}" if names.count(n) > 1 else n)
    return out


def source_labels(wiring: Wiring) -> list[str]:
    """Pool index -> name: r1 .. rR, then the gates."""
    return [f"r{j + 1}" for j in range(wiring.registers)] + gate_labels(wiring)


def distribution_labels(wiring: Wiring) -> list[str]:
    """Each attention the controller outputs: `gate(param)` for an argument slot, `rK'` for an update."""
    gates = gate_labels(wiring)
    slots = [f"{gates[i]}({g.params[k]})" for i, g in enumerate(wiring.gates) for k in range(g.arity)]
    return slots + [f"r{j + 1}'" for j in range(wiring.registers)]
