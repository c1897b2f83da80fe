"""MachineSpec -> the circuit graph, the compiler's IR (layout and keys: `nramdsl.circuit.keys`).

One step of the machine (paper Eqs. 1 and 3) as a `networkx.DiGraph`: every candidate wire the
controller can choose between is an edge, with CANDIDATE its position in the softmax. The graph is
deterministic: nodes and edges are inserted in a fixed order (registers, gates, next registers, memory;
edges by target, then candidate), so emitting it twice gives the same text.
"""

from __future__ import annotations

from typing import Hashable

import networkx as nx

from nramdsl.circuit import keys as gk
from nramdsl.lang.spec import READ, WRITE, MachineSpec

Node = Hashable


def build_graph(spec: MachineSpec) -> nx.DiGraph:
    R, Q = spec.registers, len(spec.circuit)
    g = nx.DiGraph()
    g.graph.update({gk.MACHINE: spec, gk.REGISTERS: R, gk.MEMORY_SIZE: spec.memory, gk.TIMESTEPS: spec.timesteps})
    regs = [("reg", i) for i in range(R)]
    gates = [("gate", i) for i in range(Q)]
    for i, node in enumerate(regs):
        g.add_node(node, **{gk.KIND: gk.REGISTER, gk.INDEX: i})
    for i, node in enumerate(gates):
        gate = spec.gate_at(i)
        g.add_node(
            node,
            **{
                gk.KIND: gk.GATE_NODE,
                gk.INDEX: i,
                gk.ORDER: i,
                gk.NAME: gate.name,
                gk.GATE: gate,
                gk.ARITY: gate.arity,
                gk.SPAN: gate.span,
                gk.BUILTIN: gate.builtin,
            },
        )
    for i in range(R):
        g.add_node(("next", i), **{gk.KIND: gk.REGISTER_NEXT, gk.INDEX: i})
    g.add_node(("memory",), **{gk.KIND: gk.MEMORY})

    sources = regs + gates  # the candidate order of Eqs. 1 and 3
    for i, node in enumerate(gates):
        arity = g.nodes[node][gk.ARITY]
        if arity == 0:
            continue
        for c, src in enumerate(sources[: R + i]):
            g.add_edge(src, node, **{gk.ROLE: gk.INPUT, gk.SLOT: tuple(range(arity)), gk.CANDIDATE: c})
    for i in range(R):
        for c, src in enumerate(sources):
            g.add_edge(src, ("next", i), **{gk.ROLE: gk.UPDATE, gk.CANDIDATE: c})
    for node in gates:
        builtin = g.nodes[node][gk.BUILTIN]
        if builtin == READ:
            g.add_edge(("memory",), node, **{gk.ROLE: gk.MEMORY_ACCESS})
        elif builtin == WRITE:
            g.add_edge(node, ("memory",), **{gk.ROLE: gk.MEMORY_ACCESS})
    return g


def gate_order(g: nx.DiGraph) -> list[Node]:
    """Gate nodes in evaluation order."""
    gates = [n for n, d in g.nodes(data=True) if d[gk.KIND] == gk.GATE_NODE]
    return sorted(gates, key=lambda n: g.nodes[n][gk.ORDER])

