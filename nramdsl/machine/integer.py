"""The integer reference machine: the oracle for the compiled model and the discrete executor.

State is plain integers: registers [B, R] and memory [B, M] (numpy int64, B independent examples run in
lockstep). A step applies hard controller choices — for every gate argument the index of its source
among (registers, earlier gate outputs), and for every register the index of its source among
(registers, all gate outputs) — exactly as Eqs. 1 and 3 do with one-hot attention. Each gate is one
call of its integer function and memory access is one index, so a step costs O(R + Q) per example,
independent of M: the paper's constant-time memory access (§4.5). That is what makes evaluation at
M = 10,000 cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nramdsl.circuit.wiring import Wiring
from nramdsl.lang.spec import READ, WRITE, MachineSpec
from nramdsl.lang.tabulate import check_fits_64_bits, evaluate_point, tabulate


@dataclass
class StepResult:
    registers: np.ndarray  # [B, R]
    memory: np.ndarray  # [B, M] (the same array, updated in place)
    outputs: np.ndarray  # [B, Q] every gate's output this step


class ReferenceMachine:
    def __init__(self, spec: MachineSpec, memory_size: int | None = None, wiring: Wiring | None = None) -> None:
        self.spec = spec
        self.M = memory_size or spec.memory
        self.wiring = wiring or Wiring.of(spec)
        self.gates = list(self.wiring.gates)
        self.R = spec.registers
        self.gate_slots = self.wiring.gate_slots  # gate i's arguments are the slots gate_slots[i]
        self.n_slots = self.wiring.n_slots
        for gate in self.gates:  # batched steps compute in int64: refuse a gate whose values could wrap
            if not gate.builtin:
                check_fits_64_bits(gate, self.M)
        # constants are tabulated once (which also proves them total at M)
        self.constants = {i: int(tabulate(g, self.M)) for i, g in enumerate(self.gates) if g.arity == 0 and not g.builtin}

    def initial(self, memory: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mem = np.array(memory, dtype=np.int64, copy=True)
        if mem.ndim != 2 or mem.shape[1] != self.M:
            raise ValueError(f"memory must be [B, {self.M}], got {list(mem.shape)}")
        if mem.size and (mem.min() < 0 or mem.max() >= self.M):
            raise ValueError(f"memory values must lie in [0, {self.M})")
        return np.zeros((mem.shape[0], self.R), dtype=np.int64), mem

    def _apply(self, i: int, args: list[np.ndarray]) -> np.ndarray:
        """Gate i on a batch of integer arguments (arity >= 1), range-checked."""
        gate, M = self.gates[i], self.M
        try:
            with np.errstate(all="raise"):
                value = np.asarray(gate.evaluate(M, *args), dtype=np.int64)  # type: ignore[misc]
            ok = bool(np.all((value >= 0) & (value < M)))
        except (ZeroDivisionError, ArithmeticError):
            ok = False
        if not ok:  # name the first failing input exactly as tabulation would
            for b in range(len(args[0])):
                evaluate_point(gate, M, *(int(a[b]) for a in args))
        return np.broadcast_to(value, args[0].shape)

    def step(self, regs: np.ndarray, mem: np.ndarray, inputs: np.ndarray, updates: np.ndarray) -> StepResult:
        """inputs [B, n_slots] and updates [B, R]: the chosen sources' pool indices (registers first, then
        gate outputs; `nramdsl.circuit.wiring`)."""
        B = regs.shape[0]
        rows = np.arange(B)
        pool = np.zeros((B, self.R + len(self.gates)), dtype=np.int64)
        pool[:, : self.R] = regs
        for i, gate in enumerate(self.gates):
            slots = self.gate_slots[i]
            src = inputs[:, list(slots)] if slots else np.zeros((B, 0), dtype=np.int64)
            if np.any(src >= self.R + i):
                raise ValueError(f"gate {i} ('{gate.name}') can only see registers and gates < {i}")
            args = [pool[rows, src[:, k]] for k in range(len(slots))]
            if gate.builtin == READ:
                out = mem[rows, args[0]]
            elif gate.builtin == WRITE:
                p, v = args
                before = mem[rows, p]  # a copy: fancy indexing
                mem[rows, p] = v
                out = {"zero": np.zeros(B, dtype=np.int64), "value": v, "address": p, "old": before}[self.spec.write_returns]
            elif gate.arity == 0:
                out = np.full(B, self.constants[i], dtype=np.int64)
            else:
                out = self._apply(i, args)
            pool[:, self.R + i] = out
        new_regs = pool[rows[:, None], updates]
        return StepResult(new_regs, mem, pool[:, self.R :].copy())
