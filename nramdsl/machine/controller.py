"""The NRAM controller: the only trainable part of the machine (paper §3, §4.1).

It sees one scalar per register, P(r_i = 0) (§3.1), so its parameter count does not depend on M and a
model trained at one memory size runs at any other. It emits one flat vector of logits per step; the
model (`nramdsl.machine.fuzzy`) knows how to cut it into attention and halting logits.

- `mlp`: two hidden layers of equal width, ReLU (§4.1). Feedforward: it has no state.
- `lstm`: a ReLU hidden layer between the input and the LSTM cell (§4.1), then a linear read-out.
- `table`: an MLP with one hidden unit per zero-pattern, its weights compiled from the table.
"""

from __future__ import annotations

import torch
from torch import nn

from nramdsl.lang.spec import ControllerSpec

State = tuple[torch.Tensor, torch.Tensor] | None


class Controller(nn.Module):
    def __init__(self, spec: ControllerSpec, n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        self.kind = spec.kind
        self.hidden = spec.hidden
        h = spec.hidden
        if spec.kind in ("mlp", "table"):  # a table compiles to an MLP (nramdsl.machine.weights)
            self.body = nn.Sequential(nn.Linear(n_inputs, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
            self.cell = None
        elif spec.kind == "lstm":
            self.body = nn.Sequential(nn.Linear(n_inputs, h), nn.ReLU())
            self.cell = nn.LSTMCell(h, h)
        else:  # the front end rejects other kinds; this guards API users
            raise ValueError(f"unknown controller kind {spec.kind!r} (expected 'mlp', 'lstm' or 'table')")
        self.head = nn.Linear(h, n_outputs)

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        if self.cell is None:
            return None
        zeros = like.new_zeros(batch, self.hidden)
        return (zeros, zeros)

    def forward(self, inputs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """inputs [B, R] (P(r_i = 0)) -> logits [B, n_outputs] and the next state."""
        h = self.body(inputs)
        if self.cell is not None:
            assert state is not None
            hx, cx = self.cell(h, state)
            h, state = hx, (hx, cx)
        return self.head(h), state
