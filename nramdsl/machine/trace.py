"""One test case, step by step: what the paper's App. C tables show, from the fuzzy or the discretized run.

Per step: the memory and the registers after it (argmax values and how sure they are: the argmax's
probability, 1 for the discretized run), the attention of every gate argument and register update (each
a distribution over the pool: registers, then gate outputs), and halting: f_t, p_t and Σ p. The circuit
of a step is the argmax of every attention, pruned (`nramdsl.machine.program`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nramdsl.machine.discrete import Step, run_discrete
from nramdsl.machine.fuzzy import NRAM
from nramdsl.machine.options import Readout
from nramdsl.machine.program import Circuit, prune


@dataclass
class TraceStep:
    memory: np.ndarray  # [M] argmax value of every cell after the step
    memory_p: np.ndarray  # [M] its probability
    registers: np.ndarray  # [R]
    registers_p: np.ndarray  # [R]
    attention: np.ndarray  # [S + R, A]: every gate argument's distribution, then every register update's
    circuit: Circuit  # the argmax of every attention, pruned
    f: float  # willingness to finish
    p: float  # p_t
    cumulative: float  # Σ_{i≤t} p_i (the last step's p takes what is left, so Σ over all T steps is 1)


@dataclass
class Trace:
    initial: np.ndarray  # [M] the memory before step 1
    steps: list[TraceStep]  # fuzzy: all T; discretized: up to the read-out step, where the run stops
    readout: int  # 0-based step whose memory is the answer
    discretized: bool


def _circuit(attention: np.ndarray, n_slots: int, model: NRAM) -> Circuit:
    choice = attention.argmax(-1)
    return prune(Circuit(tuple(map(int, choice[:n_slots])), tuple(map(int, choice[n_slots:]))), model.wiring)


@torch.no_grad()
def fuzzy_trace(model: NRAM, memory: torch.Tensor, timesteps: int, readout: Readout = "halt",
                hard: bool = False) -> Trace:
    """The fuzzy model on one case (memory [M]); `hard`: one-hot attention on tensors (the discretized model
    computed the fuzzy way, which the integer machine's trace must equal)."""
    out = model(memory.unsqueeze(0), timesteps=timesteps, trace=True, hard=hard)
    assert out.trace is not None
    S = model.wiring.n_slots
    halting = out.halting[0].double().cpu().numpy()
    steps = []
    for t, s in enumerate(out.trace):
        mem, regs = s["memory"][0].double().cpu(), s["registers"][0].double().cpu()
        att = torch.cat([s["input_attention"][0], s["update_attention"][0]]).double().cpu().numpy()
        steps.append(TraceStep(mem.argmax(-1).numpy(), mem.max(-1).values.numpy(), regs.argmax(-1).numpy(),
                               regs.max(-1).values.numpy(), att, _circuit(att, S, model), float(s["stop"][0]),
                               float(halting[t]), float(halting[: t + 1].sum())))
    return Trace(memory.cpu().numpy().copy(), steps, _readout(halting, readout), False)


def _readout(halting: np.ndarray, rule: Readout) -> int:
    """The fuzzy read-out step (`NRAMOutput.readout`'s rule) from p_t."""
    if rule == "last":
        return len(halting) - 1
    if rule == "argmax":
        return int(halting.argmax())
    reached = np.flatnonzero(np.cumsum(halting) >= 0.5 - 1e-6)
    return int(reached[0]) if len(reached) else len(halting) - 1


def discrete_trace(model: NRAM, memory: torch.Tensor, timesteps: int, readout: Readout = "halt") -> Trace:
    """The discretized model on one case, on the integer machine (`run_discrete`)."""
    A, S = model.wiring.width, model.wiring.n_slots
    steps: list[TraceStep] = []

    def record(s: Step) -> None:
        done = steps[-1].cumulative if steps else 0.0
        choice = np.concatenate([s.inputs[0], s.updates[0]])
        att = np.eye(A)[choice]
        ones_m, ones_r = np.ones(s.memory.shape[1]), np.ones(s.registers.shape[1])
        steps.append(TraceStep(s.memory[0].copy(), ones_m, s.registers[0].copy(), ones_r, att,
                               _circuit(att, S, model), float(s.f[0]), float(s.p[0]), done + float(s.p[0])))

    run = run_discrete(model, memory.unsqueeze(0), timesteps, readout, record)
    return Trace(memory.cpu().numpy().copy(), steps, int(run.halted_at[0]), True)
