"""Trained controller -> discrete program.

Feedforward: the discretized controller's input is P(r_i = 0) ∈ {0, 1}, so evaluating it on all 2^R
zero-patterns *is* its program (`extract_table`), exactly.

LSTM: the circuit also depends on the recurrent state, which no finite table captures in general. What
the model does is observed on test cases (`observe`): the circuit (pruned) chosen at each step, labelled
A, B, … in order of first use (`Catalog`). `StateMachine` is the program read off those observations
with the previous circuit as its state: (previous circuit, zero-pattern) -> (circuit, halts here). Where
the observations disagree on a key, the LSTM's state carries more than that and the machine says so.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np
import torch

from nramdsl.circuit.wiring import Wiring
from nramdsl.errors import NramError
from nramdsl.lang.table import MAX_TABLE_REGISTERS
from nramdsl.machine.discrete import HALT_AT, DiscreteRun, Step, run_discrete
from nramdsl.machine.fuzzy import NRAM
from nramdsl.machine.options import Readout
from nramdsl.machine.program import Circuit, Program, Row, prune

START = -1  # the state before the first step


@torch.no_grad()
def extract_table(model: NRAM) -> Program:
    """The exact program of a feedforward controller: its discretized output for every zero-pattern."""
    if model.controller.cell is not None:
        raise NramError("an LSTM controller has no table: its circuit depends on its state (use `observe`)")
    R = model.spec.registers
    if R > MAX_TABLE_REGISTERS:
        raise NramError(f"a table of 2^{R} rows is too large to print; tables go up to R = {MAX_TABLE_REGISTERS}")
    param = model.controller.head.weight
    masks = torch.arange(1 << R)
    zero = ((masks.unsqueeze(1) >> torch.arange(R)) & 1).to(device=param.device, dtype=param.dtype)
    logits, _ = model.controller(zero, None)
    w_in, w_upd, stop, _ = model.attention(logits, hard=True)
    inputs, updates = w_in.argmax(-1).cpu().numpy(), w_upd.argmax(-1).cpu().numpy()
    f = np.zeros(len(masks)) if stop is None else torch.sigmoid(stop).double().cpu().numpy()
    rows = tuple(Row(prune(Circuit(tuple(map(int, inputs[m])), tuple(map(int, updates[m]))), model.wiring), float(f[m]))
                 for m in range(len(masks)))
    return Program(R, rows, model.wiring.halting)


def letters(k: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: labels for circuits in order of first use."""
    out = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        out = string.ascii_uppercase[r] + out
    return out


@dataclass
class Catalog:
    """Distinct circuits, labelled in order of first use."""

    circuits: list[Circuit] = field(default_factory=list)
    index: dict[Circuit, int] = field(default_factory=dict)

    def label(self, circuit: Circuit) -> int:
        if circuit not in self.index:
            self.index[circuit] = len(self.circuits)
            self.circuits.append(circuit)
        return self.index[circuit]


@dataclass(frozen=True)
class Observed:
    """One step of one test case, up to its read-out step."""

    step: int  # 0-based
    mask: int  # zero-pattern the controller saw
    circuit: int  # label in the catalog
    f: float
    halts: bool  # the cumulative halting probability first reaches 1/2 here (the last step's forced stop is not one)


class Recorder:
    """A driver observer: every case's steps up to its read-out step, circuits pruned and labelled, and its
    registers after each step (for comparing trajectories)."""

    def __init__(self, wiring: Wiring, catalog: Catalog | None = None) -> None:
        self.wiring = wiring
        self.catalog = catalog or Catalog()
        self.cases: list[list[Observed]] = []
        self.registers: list[list[np.ndarray]] = []
        self._pruned: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        self._done: np.ndarray | None = None
        self._cumulative = np.zeros(0)

    def __call__(self, s: Step) -> None:
        B, R = s.zero.shape
        if self._done is None:
            self._done = np.zeros(B, dtype=bool)
            self._cumulative = np.zeros(B)
            self.cases = [[] for _ in range(B)]
            self.registers = [[] for _ in range(B)]
        weights = 1 << np.arange(R)
        masks = s.zero.astype(np.int64) @ weights
        for b in np.flatnonzero(~self._done):
            key = (tuple(s.inputs[b].tolist()), tuple(s.updates[b].tolist()))
            if key not in self._pruned:
                self._pruned[key] = self.catalog.label(prune(Circuit(*key), self.wiring))
            halts = bool(s.cumulative[b] >= HALT_AT > self._cumulative[b])
            self.cases[b].append(Observed(s.t, int(masks[b]), self._pruned[key], float(s.f[b]), halts))
            self.registers[b].append(s.registers[b].copy())
        self._done = s.done.copy()
        self._cumulative = s.cumulative.copy()


def observe(model: NRAM, memory: np.ndarray | torch.Tensor, timesteps: int, readout: Readout = "halt",
            catalog: Catalog | None = None) -> tuple[DiscreteRun, Recorder]:
    """The discretized model's run, with every case's circuits recorded."""
    rec = Recorder(model.wiring, catalog)
    run = run_discrete(model, memory, timesteps, readout, rec)
    return run, rec


@dataclass
class StateMachine:
    """(previous circuit, zero-pattern) -> (circuit, halts), read off observed runs; `conflicts` are the
    keys the observations disagree on (the LSTM's state holds more than the previous circuit)."""

    catalog: Catalog
    transitions: dict[tuple[int, int], tuple[int, bool]] = field(default_factory=dict)
    conflicts: set[tuple[int, int]] = field(default_factory=set)

    @classmethod
    def learn(cls, catalog: Catalog, cases: list[list[Observed]]) -> StateMachine:
        sm = cls(catalog)
        for steps in cases:
            prev = START
            for o in steps:
                key, value = (prev, o.mask), (o.circuit, o.halts)
                if sm.transitions.setdefault(key, value) != value:
                    sm.conflicts.add(key)
                prev = o.circuit
        return sm


class StateMachinePolicy:
    """A `StateMachine` as the driver's policy. A case that meets a key never observed, or one the
    observations disagree on, is marked `lost` and runs its last circuit on (it can no longer agree)."""

    def __init__(self, sm: StateMachine, wiring: Wiring, batch: int) -> None:
        self.sm, self.wiring = sm, wiring
        self.state = np.full(batch, START)
        self.lost = np.zeros(batch, dtype=bool)
        self.weights = 1 << np.arange(wiring.registers)

    def choose(self, zero: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        masks = zero.astype(np.int64) @ self.weights
        B = len(masks)
        inputs = np.zeros((B, self.wiring.n_slots), dtype=np.int64)
        updates = np.tile(np.arange(self.wiring.registers), (B, 1))
        f = np.zeros(B)
        for b in range(B):
            key = (int(self.state[b]), int(masks[b]))
            hit = self.sm.transitions.get(key)
            if hit is None or key in self.sm.conflicts:
                self.lost[b] = True
                hit = (max(int(self.state[b]), 0), False)
            circuit = self.sm.catalog.circuits[hit[0]] if self.sm.catalog.circuits else None
            if circuit is not None:
                inputs[b], updates[b] = circuit.inputs, circuit.updates
            f[b] = 1.0 if hit[1] else 0.0
            self.state[b] = hit[0]
        return inputs, updates, f
