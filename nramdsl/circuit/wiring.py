"""The circuit graph -> the controller's wiring: what every attention chooses between and where its logits sit.

Computed once, from the graph's candidate edges, and read by everything that runs or shows the machine:
the fuzzy module (`nramdsl.machine.fuzzy`), the integer machine (`nramdsl.machine.integer`) and the text
views (`nramdsl.circuit.views`).

Every source a distribution can choose is an entry of the *pool*: the registers r_1..r_R (pool index
0..R-1) and then the gate outputs o_1..o_Q in circuit order (R..R+Q-1). A gate argument is a *slot*;
slots are numbered in circuit order, one per argument. The controller emits one flat vector of logits:
each slot's candidates, then each register update's, then one stop logit when the machine learns to
halt. For one op over all softmaxes every distribution is padded to the pool's width A = R + Q, and
`positions[k]` is where flat logit k lands in the padded [n_slots + R, A] grid: row = slot (or n_slots + j
for register j's update), column = the candidate's pool index. So the argmax of a padded row *is* the
chosen source's pool index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable

import networkx as nx

from nramdsl.circuit import keys as gk
from nramdsl.circuit.graph import build_graph, gate_order
from nramdsl.lang.spec import Gate, MachineSpec


@dataclass(frozen=True)
class Wiring:
    registers: int  # R
    gates: tuple[Gate, ...]  # in evaluation order
    gate_slots: tuple[tuple[int, ...], ...]  # gate i -> its argument slots
    positions: tuple[int, ...]  # flat logit k -> its place in the padded grid (row * width + pool index)
    halting: bool  # a stop logit follows the attention logits

    @property
    def width(self) -> int:
        """A = R + Q, the pool's size: every padded distribution's width."""
        return self.registers + len(self.gates)

    @property
    def slot_gate(self) -> tuple[int, ...]:
        """slot s -> the gate whose argument it is (slot s chooses among the pool's first R + slot_gate[s])."""
        return tuple(i for i, slots in enumerate(self.gate_slots) for _ in slots)

    @property
    def n_slots(self) -> int:
        return sum(len(s) for s in self.gate_slots)

    @property
    def n_logits(self) -> int:
        """Logits the controller emits per step (308 for the paper's 14 gates with R = 4, halting)."""
        return len(self.positions) + int(self.halting)

    @property
    def n_distributions(self) -> int:
        """How many distributions the controller outputs per step (attentions, and the stop bit)."""
        return self.n_slots + self.registers + int(self.halting)

    @classmethod
    def of(cls, spec: MachineSpec) -> Wiring:
        return cls.from_graph(build_graph(spec))

    @classmethod
    def from_graph(cls, g: nx.DiGraph) -> Wiring:
        R = g.graph[gk.REGISTERS]
        order = gate_order(g)
        pool: dict[Hashable, int] = {("reg", j): j for j in range(R)}
        pool.update((node, R + i) for i, node in enumerate(order))
        width = R + len(order)
        gate_slots: list[tuple[int, ...]] = []
        positions: list[int] = []
        for node in order:
            first = sum(len(s) for s in gate_slots)
            slots = tuple(range(first, first + g.nodes[node][gk.ARITY]))
            gate_slots.append(slots)
            sources = _candidates(g, node, gk.INPUT)
            for slot in slots:
                positions.extend(slot * width + pool[src] for src in sources)
        n_slots = sum(len(s) for s in gate_slots)
        for j in range(R):
            positions.extend((n_slots + j) * width + pool[src] for src in _candidates(g, ("next", j), gk.UPDATE))
        gates = tuple(g.nodes[n][gk.GATE] for n in order)
        return cls(R, gates, tuple(gate_slots), tuple(positions), g.graph[gk.MACHINE].halt == "learned")


def _candidates(g: nx.DiGraph, node: Hashable, role: str) -> list[Hashable]:
    """The sources `node` chooses between, in CANDIDATE (softmax) order."""
    edges = [(d[gk.CANDIDATE], src) for src, _, d in g.in_edges(node, data=True) if d[gk.ROLE] == role]
    return [src for _, src in sorted(edges)]
