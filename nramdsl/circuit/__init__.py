"""The circuit graph, the compiler's IR, and everything derived from it.

    keys     every node and edge attribute key of the graph, in one place
    graph    MachineSpec -> networkx DiGraph: every wire the controller can choose is an edge
    wiring   the graph -> where each attention's logits sit (read by the fuzzy and integer machines)
    names    names of the wiring's sources and attentions (`r3`, `add.2`, `write(p)`), as programs use them
    views    the graph -> summary, Graphviz DOT, JSON
"""
