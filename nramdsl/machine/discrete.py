"""The discretized model: a trained controller driving the integer reference machine (paper §3.4, §4.4).

Every attention becomes its argmax and every register an integer, so the controller's input P(r_i = 0)
is exactly 0 or 1 and one step costs O(R + Q) per example whatever M is. Halting uses the same rule as
the fuzzy model's read-out: the run of an example ends at the first step where the cumulative halting
probability reaches 0.5 ("halt"), at the last step ("last"), or at the step of largest p_t ("argmax").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nramdsl.machine.fuzzy import NRAM, Readout
from nramdsl.machine.integer import ReferenceMachine


@dataclass
class DiscreteRun:
    memory: np.ndarray  # [B, M] the memory read out under the rule
    halted_at: np.ndarray  # [B] the 0-based step whose memory was read
    steps: int  # steps actually executed (a run stops early once every example halted)


@torch.no_grad()
def run_discrete(model: NRAM, memory: np.ndarray | torch.Tensor, timesteps: int, readout: Readout = "halt") -> DiscreteRun:
    if isinstance(memory, torch.Tensor):
        memory = memory.cpu().numpy()
    B, M = memory.shape
    machine = ReferenceMachine(model.spec, M, model.wiring)
    regs, mem = machine.initial(memory)
    param = model.controller.head.weight
    state = model.controller.initial_state(B, param)
    remaining = np.ones(B)
    best_p = np.full(B, -1.0)
    out = mem.copy()
    halted_at = np.full(B, timesteps - 1)
    done = np.zeros(B, dtype=bool)
    t = 0
    for t in range(timesteps):
        inputs = torch.as_tensor((regs == 0).astype(np.float64), dtype=param.dtype, device=param.device)
        logits, state = model.controller(inputs, state)
        w_in, w_upd, stop, _ = model.attention(logits, hard=True)
        res = machine.step(regs, mem, w_in.argmax(-1).cpu().numpy(), w_upd.argmax(-1).cpu().numpy())
        regs, mem = res.registers, res.memory
        last = t == timesteps - 1
        f = np.zeros(B) if stop is None else torch.sigmoid(stop).double().cpu().numpy()
        p = remaining if last else f * remaining
        remaining = remaining * (1 - f)
        if readout == "argmax":
            better = p > best_p
            best_p = np.where(better, p, best_p)
            take = better
        elif readout == "halt":
            take = ~done & ((1 - remaining >= 0.5 - 1e-6) | last)
            done |= take
        else:
            take = np.full(B, last)
        out[take] = mem[take]
        halted_at[take] = t
        if readout == "halt" and done.all():
            break
    return DiscreteRun(out, halted_at, t + 1)
