"""The discretized machine: a policy choosing one circuit per step, driving the integer reference machine
(paper §3.4, §4.4).

Every attention becomes its argmax and every register an integer, so the controller's input P(r_i = 0)
is exactly 0 or 1 and one step costs O(R + Q) per example whatever M is. The policy is the trained
controller (`ControllerPolicy`, `run_discrete`) or a discrete program (`nramdsl.machine.program.TablePolicy`,
`run_program`); both go through one driver, `drive`, so a program and the model it was extracted from
are compared under the same halting and read-out arithmetic. Halting uses the fuzzy model's read-out
rule: the run of an example ends at the first step where the cumulative halting probability reaches 0.5
("halt"), at the last step ("last"), or at the step of largest p_t ("argmax").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np
import torch

from nramdsl.lang.spec import MachineSpec
from nramdsl.machine.integer import ReferenceMachine
from nramdsl.machine.options import Readout
from nramdsl.machine.program import Program, TablePolicy

if TYPE_CHECKING:
    from nramdsl.machine.fuzzy import NRAM

HALT_AT = 0.5 - 1e-6  # the cumulative halting probability at which a run stops (the fuzzy read-out's rule)
Choice = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # inputs [B, S], updates [B, R], f [B] or None


class Policy(Protocol):
    def choose(self, zero: np.ndarray) -> Choice:
        """zero [B, R]: which registers are 0 -> each example's circuit (pool indices) and f."""
        ...


@dataclass
class DiscreteRun:
    memory: np.ndarray  # [B, M] the memory read out under the rule
    halted_at: np.ndarray  # [B] the 0-based step whose memory was read
    steps: int  # steps actually executed (a run stops early once every example halted)


@dataclass
class Step:
    """What one step did, for observers (traces, program extraction). Arrays are the driver's own: copy
    what you keep."""

    t: int  # 0-based
    zero: np.ndarray  # [B, R] which registers were 0 when the controller looked
    inputs: np.ndarray  # [B, S] chosen sources (pool indices)
    updates: np.ndarray  # [B, R]
    f: np.ndarray  # [B] willingness to finish (0 when the machine never halts)
    p: np.ndarray  # [B] p_t
    cumulative: np.ndarray  # [B] Σ_{i≤t} f_i Π_{j<i}(1 − f_j), without the last step's forced remainder
    registers: np.ndarray  # [B, R] after the step
    memory: np.ndarray  # [B, M] after the step
    outputs: np.ndarray  # [B, Q] every gate's output
    done: np.ndarray  # [B] examples whose run has ended (halted, under "halt"; at the last step otherwise)


class ControllerPolicy:
    """A trained controller, discretized: the argmax of every attention, f = sigmoid(stop logit)."""

    def __init__(self, model: NRAM, batch: int) -> None:
        self.model = model
        self.param = model.controller.head.weight
        self.state = model.controller.initial_state(batch, self.param)

    @torch.no_grad()
    def choose(self, zero: np.ndarray) -> Choice:
        inputs = torch.as_tensor(zero.astype(np.float64), dtype=self.param.dtype, device=self.param.device)
        logits, self.state = self.model.controller(inputs, self.state)
        w_in, w_upd, stop, _ = self.model.attention(logits, hard=True)
        f = None if stop is None else torch.sigmoid(stop).double().cpu().numpy()
        return w_in.argmax(-1).cpu().numpy(), w_upd.argmax(-1).cpu().numpy(), f


def drive(machine: ReferenceMachine, policy: Policy, memory: np.ndarray, timesteps: int, readout: Readout = "halt",
          observe: Callable[[Step], None] | None = None) -> DiscreteRun:
    """Run `policy` on the integer machine from int memory [B, M] for at most `timesteps` steps."""
    regs, mem = machine.initial(memory)
    B = mem.shape[0]
    remaining = np.ones(B)
    best_p = np.full(B, -1.0)
    out = mem.copy()
    halted_at = np.full(B, timesteps - 1)
    done = np.zeros(B, dtype=bool)
    t = 0
    for t in range(timesteps):
        zero = regs == 0
        inputs, updates, stop = policy.choose(zero)
        res = machine.step(regs, mem, inputs, updates)
        regs, mem = res.registers, res.memory
        last = t == timesteps - 1
        f = np.zeros(B) if stop is None else stop
        p = remaining if last else f * remaining
        remaining = remaining * (1 - f)
        if readout == "argmax":
            take = p > best_p
            best_p = np.where(take, p, best_p)
        elif readout == "halt":
            take = ~done & ((1 - remaining >= HALT_AT) | last)
            done |= take
        else:
            take = np.full(B, last)
        out[take] = mem[take]
        halted_at[take] = t
        if observe is not None:
            ended = done if readout == "halt" else np.full(B, last)  # other rules read out only after the last step
            observe(Step(t, zero, inputs, updates, f, p, 1 - remaining, regs, mem, res.outputs, ended))
        if readout == "halt" and done.all():
            break
    return DiscreteRun(out, halted_at, t + 1)


def run_discrete(model: NRAM, memory: np.ndarray | torch.Tensor, timesteps: int, readout: Readout = "halt",
                 observe: Callable[[Step], None] | None = None) -> DiscreteRun:
    """The trained model, discretized, on the integer machine."""
    if isinstance(memory, torch.Tensor):
        memory = memory.cpu().numpy()
    machine = ReferenceMachine(model.spec, memory.shape[1], model.wiring)
    return drive(machine, ControllerPolicy(model, memory.shape[0]), memory, timesteps, readout, observe)


def run_program(program: Program, spec: MachineSpec, memory: np.ndarray | torch.Tensor, timesteps: int,
                readout: Readout = "halt", observe: Callable[[Step], None] | None = None) -> DiscreteRun:
    """A discrete program on the integer machine (`spec` gives the gates and what `write` returns)."""
    if isinstance(memory, torch.Tensor):
        memory = memory.cpu().numpy()
    machine = ReferenceMachine(spec, memory.shape[1])
    return drive(machine, TablePolicy(program), memory, timesteps, readout, observe)
