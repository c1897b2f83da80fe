"""Every node and edge attribute key of the circuit graph, in one place.

The circuit graph (`nramdsl.circuit.graph.build_graph`) is a `networkx.DiGraph` and the compiler's IR:
the wiring (`nramdsl.circuit.wiring`), the fuzzy and the integer machine and the text views are all
derived from it. Passes read and write attributes only through these names.

Nodes
  ("reg", i)      register r_{i+1} at the start of a step          KIND=REGISTER, INDEX=i
  ("gate", i)     the i-th gate of the circuit (0-based)             KIND=GATE, INDEX=i, NAME, GATE, ARITY, SPAN
  ("next", i)     register r_{i+1} after the step (Eq. 3)            KIND=REGISTER_NEXT, INDEX=i
  ("memory",)     the memory tape 𝓜                                  KIND=MEMORY

Edges
  candidate input:  ("reg"|"gate", j) -> ("gate", i)  ROLE=INPUT,  SLOT=(0, …, arity-1), CANDIDATE=c
  candidate update: ("reg"|"gate", j) -> ("next", i)  ROLE=UPDATE, CANDIDATE=c
  memory access:    ("memory",) -> read gate, write gate -> ("memory",)  ROLE=MEMORY

A DiGraph holds one edge per (source, target) pair, so an INPUT edge stands for the source being a
candidate of *every* argument of the gate: SLOT is the tuple of argument indices (0,) or (0, 1), one
softmax per slot (Eq. 1). Constants (arity 0) get no INPUT edges.

CANDIDATE is the position of the source in the softmax of Eq. 1 / Eq. 3: registers first (0..R-1), then
gate outputs in circuit order. The evaluation order is ORDER on gate nodes (== INDEX).
"""

from __future__ import annotations

# node attributes
KIND = "kind"
INDEX = "index"
NAME = "name"
GATE = "gate"  # the nramdsl.lang.spec.Gate object
ARITY = "arity"
SPAN = "span"
ORDER = "order"
BUILTIN = "builtin"

# node kinds
REGISTER = "register"
REGISTER_NEXT = "register_next"
GATE_NODE = "gate"
MEMORY = "memory"

# edge attributes
ROLE = "role"
SLOT = "slot"
CANDIDATE = "candidate"

# edge roles
INPUT = "input"
UPDATE = "update"
MEMORY_ACCESS = "memory"

# graph attributes (G.graph[...])
MACHINE = "machine"  # the nramdsl.lang.spec.MachineSpec
REGISTERS = "registers"
MEMORY_SIZE = "memory"
TIMESTEPS = "timesteps"
