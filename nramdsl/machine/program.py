"""A discrete program: the circuit a controller chooses for each zero-pattern of the registers.

The discretized machine (paper §3.4) runs one circuit per step: every gate argument and every register
update takes one source. Written with pool indices (`nramdsl.circuit.wiring`: registers 0..R-1, then gate
outputs R..R+Q-1), that circuit is a `Circuit`. A feedforward controller sees only which registers are 0,
so its whole discretized behaviour is a `Program`: one `Row` (circuit and willingness to finish f) per
zero-pattern, indexed by mask (bit j set when r_{j+1} == 0, as in `nramdsl.lang.table`).

Programs come from a trained MLP (`nramdsl.machine.extract`) or from a `controller table { … }`
(`Program.from_table`), run on the integer machine through `TablePolicy`
(`nramdsl.machine.discrete.drive`), compile to controller weights (`nramdsl.machine.weights`) and print
as `.nram` (`nramdsl.programs.emit`).

Circuits are kept *pruned*: a gate nothing live sees (not a register's source, not an argument of a live
gate, and not `write`, the only gate that changes memory) has its arguments set to pool index 0, so two
circuits that act the same compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nramdsl.circuit.wiring import Wiring
from nramdsl.lang.spec import WRITE
from nramdsl.lang.table import Source, Table, cube_of_mask

DEAD = 0  # the source a gate nothing sees is given (r1: visible to every gate)


@dataclass(frozen=True)
class Circuit:
    inputs: tuple[int, ...]  # slot -> pool index of its source
    updates: tuple[int, ...]  # register -> pool index of its new value (its own index: kept)


@dataclass(frozen=True)
class Row:
    circuit: Circuit
    halt: float  # f, the willingness to finish (0.0 when the machine never halts)


@dataclass(frozen=True)
class Program:
    registers: int
    rows: tuple[Row, ...]  # one per zero-pattern mask, 2^R of them
    halting: bool  # whether f counts (machines with `halt never` run every step)

    def row(self, mask: int) -> Row:
        return self.rows[mask]

    @classmethod
    def from_table(cls, table: Table, wiring: Wiring) -> Program:
        R = table.registers
        rows = []
        for mask in range(1 << R):
            rule = table.rule_for(mask)
            inputs = [DEAD] * wiring.n_slots
            for gate, sources in rule.wires:
                for slot, src in zip(wiring.gate_slots[gate], sources):
                    inputs[slot] = pool_index(src, R)
            updates = list(range(R))
            for j, src in rule.updates:
                updates[j] = pool_index(src, R)
            # f as the model computes it (float32), so a printed program reads back bit for bit
            rows.append(Row(prune(Circuit(tuple(inputs), tuple(updates)), wiring), float(np.float32(rule.halt))))
        return cls(R, tuple(rows), wiring.halting)

    def patterns(self) -> list[tuple[bool, ...]]:
        return [cube_of_mask(m, self.registers) for m in range(len(self.rows))]


def pool_index(src: Source, registers: int) -> int:
    kind, index = src
    return index if kind == "reg" else registers + index


def live_gates(circuit: Circuit, wiring: Wiring) -> list[bool]:
    """Which gates matter: `write`, the sources of registers, and (backwards, in circuit order) their inputs."""
    R = wiring.registers
    live = [g.builtin == WRITE for g in wiring.gates]
    for src in circuit.updates:
        if src >= R:
            live[src - R] = True
    for i in reversed(range(len(wiring.gates))):  # a gate's inputs come from earlier gates only
        if live[i]:
            for slot in wiring.gate_slots[i]:
                if circuit.inputs[slot] >= R:
                    live[circuit.inputs[slot] - R] = True
    return live


def prune(circuit: Circuit, wiring: Wiring) -> Circuit:
    """The circuit with every dead gate's arguments set to `DEAD`."""
    live = live_gates(circuit, wiring)
    inputs = list(circuit.inputs)
    for i, slots in enumerate(wiring.gate_slots):
        if not live[i]:
            for slot in slots:
                inputs[slot] = DEAD
    return Circuit(tuple(inputs), circuit.updates)


class TablePolicy:
    """A program as the driver's policy: the row of each example's zero-pattern."""

    def __init__(self, program: Program) -> None:
        self.inputs = np.array([r.circuit.inputs for r in program.rows], dtype=np.int64).reshape(len(program.rows), -1)
        self.updates = np.array([r.circuit.updates for r in program.rows], dtype=np.int64)
        self.halt = np.array([r.halt for r in program.rows], dtype=np.float64) if program.halting else None
        self.weights = 1 << np.arange(program.registers)

    def choose(self, zero: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        mask = zero.astype(np.int64) @ self.weights
        return self.inputs[mask], self.updates[mask], None if self.halt is None else self.halt[mask]
