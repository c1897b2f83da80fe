"""The front end: `.nram` text to a resolved `MachineSpec`.

    syntax      the syntax tree: frozen dataclasses, every node with its source span
    parse       text -> syntax tree (Lark LALR, the grammar in grammars/nram.lark)
    load        a file and, depth first, everything it imports -> Program
    gate_eval   a gate's expression -> its integer function
    tabulate    a gate's table at one M, proving it total
    spec        the resolved machine (MachineSpec, Gate, SpecRef): what every later stage reads
    table       a `controller table { … }` checked against its machine and resolved
    check       every semantic error in one pass; one machine resolved to a MachineSpec
    frontend    the one driver: path or text -> MachineSpec (`load_machine`)
"""
