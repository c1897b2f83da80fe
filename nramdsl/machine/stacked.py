"""K controllers as one: every weight gains a leading member axis, and a forward pass runs all members' batches
with batched matmuls. Member k's slice is exactly the weights of the `Controller` it was built from, so a
population member computes what a single run with the same weights computes.

The circuit has no parameters: the fuzzy machine runs once over the flattened (member, example) batch, and
only the controller needs the member axis. `select(members)` binds the rows of the members in a group, so
gradients reach exactly those rows.
"""

from __future__ import annotations

import torch
from torch import nn

from nramdsl.machine.controller import Controller, State


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x [G, B, in], weight [G, out, in], bias [G, out] -> [G, B, out]."""
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


class StackedController(nn.Module):
    """The parameters of K `Controller`s of one kind and size, stacked on dimension 0 in `Controller` order."""

    def __init__(self, controllers: list[Controller]) -> None:
        super().__init__()
        first = controllers[0]
        self.recurrent, self.hidden = first.cell is not None, first.hidden  # LSTM; else an MLP (a table is one)
        self.names = [name for name, _ in first.named_parameters()]  # the order of Controller.parameters()
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([dict(c.named_parameters())[name].detach() for c in controllers]))
            for name in self.names
        )

    @property
    def members(self) -> int:
        return self.weights[0].shape[0]

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights under `Controller`'s own names (a copy)."""
        return {name: w[k].detach().clone() for name, w in zip(self.names, self.weights)}

    @torch.no_grad()
    def load_member(self, k: int, state: dict[str, torch.Tensor]) -> None:
        for name, w in zip(self.names, self.weights):
            w[k].copy_(state[name])

    def select(self, members: torch.Tensor) -> BoundController:
        """The controllers of `members` (a LongTensor of rows), for one group's forward pass."""
        if members.numel() == self.members and bool((members == torch.arange(self.members)).all()):
            rows = {name: w for name, w in zip(self.names, self.weights)}  # all members: no gather
        else:
            index = members.to(self.weights[0].device)
            rows = {name: w.index_select(0, index) for name, w in zip(self.names, self.weights)}
        return BoundController(self.recurrent, self.hidden, rows)


class BoundController:
    """A group's controllers: inputs [G * B, R] member-major (member g's B examples together) -> logits."""

    def __init__(self, recurrent: bool, hidden: int, weights: dict[str, torch.Tensor]) -> None:
        self.recurrent, self.hidden, self.w = recurrent, hidden, weights
        self.groups = next(iter(weights.values())).shape[0]

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        if not self.recurrent:
            return None
        zeros = like.new_zeros(batch, self.hidden)
        return (zeros, zeros)

    def __call__(self, inputs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        w, G = self.w, self.groups
        x = inputs.view(G, -1, inputs.shape[-1])
        h = torch.relu(_linear(x, w["body.0.weight"], w["body.0.bias"]))
        if not self.recurrent:
            h = torch.relu(_linear(h, w["body.2.weight"], w["body.2.bias"]))
        else:
            assert state is not None
            hx, cx = (s.view(G, -1, self.hidden) for s in state)
            gates = _linear(h, w["cell.weight_ih"], w["cell.bias_ih"]) + _linear(hx, w["cell.weight_hh"], w["cell.bias_hh"])
            i, f, g, o = gates.chunk(4, dim=-1)  # torch.nn.LSTMCell's gate order
            cx = torch.sigmoid(f) * cx + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(cx)
            state = (h.reshape(-1, self.hidden), cx.reshape(-1, self.hidden))
        logits = _linear(h, w["head.weight"], w["head.bias"])
        return logits.reshape(-1, logits.shape[-1]), state
