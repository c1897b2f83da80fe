"""A discrete program -> controller weights whose fuzzy model runs it (Adaptive Neural Compilation's
direction: a hand-written program as the starting point of training).

The controller of a `table` machine is an MLP with 2^R hidden units, one per zero-pattern. Its inputs are
P(r_i = 0); for a pattern m, unit m of the first layer computes

    ReLU( Σ_j (+1 if r_{j+1} == 0 in m else −1) · x_j  −  (|m| − 1) )

which is exactly 1 when the inputs are m's 0/1 vector and at most 0 for any other 0/1 vector. The second
layer passes it on (identity); the head writes `scale` on the logit of every source row m chooses and 0
on the others, and the stop logit of f (±scale for f = 1 or 0). With one-hot registers exactly one unit
is on, so every softmax puts all but ~e^-scale of its mass on the program's choice and the fuzzy run
follows the integer machine.
"""

from __future__ import annotations

import math

import torch

from nramdsl.circuit.wiring import Wiring
from nramdsl.machine.controller import Controller
from nramdsl.machine.program import Program


def stop_logit(f: float, scale: float) -> float:
    """The logit whose sigmoid is f, within ±scale (f = 0 or 1 have none)."""
    if f <= 0.0:
        return -scale
    if f >= 1.0:
        return scale
    return max(-scale, min(scale, math.log(f) - math.log1p(-f)))


def program_logits(program: Program, wiring: Wiring, scale: float) -> torch.Tensor:
    """[2^R, n_logits]: the logits the controller must emit for each zero-pattern."""
    S, A = wiring.n_slots, wiring.width
    out = torch.zeros(len(program.rows), wiring.n_logits, dtype=torch.float64)
    for m, row in enumerate(program.rows):
        chosen = list(row.circuit.inputs) + list(row.circuit.updates)  # distribution d -> its pool index
        for k, pos in enumerate(wiring.positions):
            d, pool = divmod(pos, A)
            if chosen[d] == pool:
                out[m, k] = scale
        if wiring.halting:
            out[m, -1] = stop_logit(row.halt, scale)
    assert S + program.registers == len(chosen)
    return out


@torch.no_grad()
def load_program(controller: Controller, program: Program, wiring: Wiring, scale: float) -> None:
    """Set an MLP controller's weights so that it emits `program` (its hidden width must be 2^R)."""
    R, H = program.registers, len(program.rows)
    first, second = controller.body[0], controller.body[2]
    if first.out_features != H:
        raise ValueError(f"a table of {H} rows needs {H} hidden units, the controller has {first.out_features}")
    masks = torch.arange(H).unsqueeze(1)
    bits = ((masks >> torch.arange(R)) & 1).to(first.weight.dtype)  # [H, R]: 1 where the pattern has r == 0
    first.weight.copy_(2 * bits - 1)
    first.bias.copy_(1 - bits.sum(dim=1))
    second.weight.copy_(torch.eye(H))
    second.bias.zero_()
    controller.head.weight.copy_(program_logits(program, wiring, scale).T)
    controller.head.bias.zero_()
