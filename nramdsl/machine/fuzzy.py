"""The fuzzy machine: the circuit graph lowered to a batched NRAM `torch.nn.Module` (paper §3).

State per example: registers [R, M] (one-hot 0 at the start), memory [M, M] (row i = distribution of
cell i), and the controller's state. One timestep:

1. the controller reads P(r_i = 0) for every register and emits logits;
2. gate i takes each argument as a softmax-weighted mix of the registers and the outputs of gates < i
   (Eq. 1) and applies its lifted kernel (Eq. 2); `read`/`write` act on memory (§3.2);
3. every register becomes a softmax-weighted mix of registers and all gate outputs (Eq. 3);
4. the stop logit gives f_t; p_t = f_t Π_{i<t}(1 − f_i) and the last step takes the rest (§3.3).

Nothing depends on M but the gate kernels, which are built (and cached) for the M of the memory passed
in, so a model trained at M = 16 runs at M = 64 unchanged.

Choices the paper leaves open are `ModelOptions` fields, each with its default's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from nramdsl.circuit.graph import build_graph
from nramdsl.circuit.wiring import Wiring
from nramdsl.kernels.lift import make_kernel
from nramdsl.kernels.select import FftMode, select_kernel
from nramdsl.lang.spec import READ, WRITE, MachineSpec
from nramdsl.lang.tabulate import tabulate
from nramdsl.machine.controller import Controller
from nramdsl.machine.options import LossKind, ModelOptions, Readout
from nramdsl.machine.program import Program
from nramdsl.machine.weights import load_program

@dataclass
class NRAMOutput:
    memory: torch.Tensor  # [B, M, M] after the last step
    halting: torch.Tensor  # [B, T] p_t (sums to 1)
    predictions: torch.Tensor  # int64 [B, T, M] argmax of every memory cell after each step
    loss: torch.Tensor | None = None  # scalar, mean over the batch
    entropy: torch.Tensor | None = None  # scalar: mean entropy of the controller's distributions
    value_entropy: torch.Tensor | None = None  # scalar: mean entropy of register and memory values
    trace: list[dict[str, torch.Tensor]] | None = None

    def readout(self, rule: Readout = "halt") -> torch.Tensor:
        """The discretized output memory [B, M] under a read-out rule (the paper leaves it open, §1.6).

        halt:   the first step at which the cumulative halting probability reaches 0.5 (default: a model
                that halts is read where it halts, so spare timesteps cannot overwrite its output);
        last:   the memory after the last step;
        argmax: the step with the largest p_t.
        """
        B, T, _ = self.predictions.shape
        if rule == "last":
            step = torch.full((B,), T - 1, dtype=torch.long, device=self.predictions.device)
        elif rule == "argmax":
            step = self.halting.argmax(dim=1)
        elif rule == "halt":
            reached = self.halting.cumsum(dim=1) >= 0.5 - 1e-6
            step = torch.where(reached.any(dim=1), reached.float().argmax(dim=1), torch.full_like(reached[:, 0], T - 1, dtype=torch.long))
        else:
            raise ValueError(f"unknown read-out rule {rule!r} (expected halt, last or argmax)")
        return self.predictions[torch.arange(B, device=step.device), step]

    def halting_step(self) -> torch.Tensor:
        reached = self.halting.cumsum(dim=1) >= 0.5 - 1e-6
        return reached.float().argmax(dim=1)


def _read(pointer: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
    """READ (paper §3.2): 𝓜ᵀp, the memory rows mixed by the pointer distribution; [B, M] from [B, M, M]."""
    return torch.bmm(pointer.unsqueeze(1), mem)[:, 0]


def _renormalize(x: torch.Tensor) -> torch.Tensor:
    """Divide by the row sum in forward, identity in backward (paper footnote 5)."""
    return x + (x / x.sum(dim=-1, keepdim=True).clamp_min(1e-30) - x).detach()


def _value_entropy(p: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean entropy of the distributions in the last axis; the clamp keeps the gradient finite at 0."""
    return -(p * torch.log(p.clamp_min(eps))).sum(dim=-1).mean()


class NRAM(nn.Module):
    """A batched, trainable NRAM for one resolved machine."""

    def __init__(self, spec: MachineSpec, options: ModelOptions | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.options = options or ModelOptions()
        self.graph = build_graph(spec)
        self.wiring = Wiring.from_graph(self.graph)
        self.gates = list(self.wiring.gates)
        self.controller = Controller(spec.controller, spec.registers, self.wiring.n_logits)
        if self.wiring.halting:
            with torch.no_grad():
                self.controller.head.bias[-1].fill_(self.options.halt_bias)
        table = spec.controller.table
        if table is not None:  # a hand-written program: the controller starts out running it
            load_program(self.controller, Program.from_table(table, self.wiring), self.wiring, table.scale)
        self.register_buffer("_logit_index", torch.tensor(self.wiring.positions, dtype=torch.long), persistent=False)
        self._kernel_cache: dict[int, list[Callable[..., torch.Tensor] | None]] = {}

    # ---------------------------------------------------------------- kernels (per M, cached)
    def kernels(self, M: int) -> list[Callable[..., torch.Tensor] | None]:
        """One batched kernel per non-memory, non-constant gate (None for read/write/constants)."""
        if M not in self._kernel_cache:
            ks: list[Callable[..., torch.Tensor] | None] = []
            for g in self.gates:
                if g.builtin or g.arity == 0:
                    ks.append(None)
                else:
                    ks.append(make_kernel(g, M, generic=self.options.generic_kernels, fft=self.options.fft))
            self._kernel_cache[M] = ks
        return self._kernel_cache[M]

    def describe_kernels(self, M: int) -> list[str]:
        o = self.options
        return [select_kernel(g, M, generic=o.generic_kernels, fft=o.fft).describe() for g in self.gates]

    # ---------------------------------------------------------------- attention
    def attention(
        self, logits: torch.Tensor, hard: bool = False, straight_through: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Flat logits [B, n] -> input weights [B, S, A], update weights [B, R, A], stop logit [B]
        (None when the machine does not learn to halt), and
        the summed entropy [B] of all these distributions (None when hard).

        `straight_through`: one-hot argmax weights in forward, the softmax's gradient in backward, so
        the forward pass is the discretized machine while the controller still learns."""
        B = logits.shape[0]
        S, R, A = self.wiring.n_slots, self.spec.registers, self.wiring.width
        # a finite fill, not -inf: masked entries get probability exactly 0 and p·log p stays 0 with a
        # finite gradient (with -inf the entropy bonus's backward is 0 · -inf = NaN)
        padded = logits.new_full((B, (S + R) * A), -1e9)
        n = logits.shape[1] - int(self.wiring.halting)
        padded = padded.index_copy(1, self._logit_index, logits[:, :n]).view(B, S + R, A)
        stop = logits[:, -1] if self.wiring.halting else None
        if hard or straight_through:
            chosen = F.one_hot(padded.argmax(dim=-1), A).to(logits.dtype)
        if hard:
            return chosen[:, :S], chosen[:, S:], stop, None
        log_w = torch.log_softmax(padded, dim=-1)
        weights = log_w.exp()
        entropy = -(weights * log_w).sum(dim=(1, 2))
        if straight_through:
            weights = chosen + weights - weights.detach()
        if stop is not None:
            f = torch.sigmoid(stop)
            entropy = entropy - f * F.logsigmoid(stop) - (1 - f) * F.logsigmoid(-stop)
        return weights[:, :S], weights[:, S:], stop, entropy

    # ---------------------------------------------------------------- one circuit evaluation
    def circuit_step(
        self, regs: torch.Tensor, mem: torch.Tensor, w_in: torch.Tensor, w_upd: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the circuit once with given attention weights.

        regs [B, R, M], mem [B, M, M], w_in [B, S, A], w_upd [B, R, A] -> new regs, new memory,
        gate outputs [B, Q, M]. Public so tests can drive it with one-hot (hard) choices.
        """
        B, R, M = regs.shape
        kernels = self.kernels(M)
        clamp = (self.options.grad_clamp or None) if torch.is_grad_enabled() else None
        # the register part of every gate argument at once: one batched matmul instead of 2Q
        reg_part = torch.bmm(w_in[:, :, :R], regs)  # [B, S, M]
        outs: list[torch.Tensor] = []
        for i, gate in enumerate(self.gates):
            slots = self.wiring.gate_slots[i]
            if slots:
                s0, s1 = slots[0], slots[-1] + 1
                args = reg_part[:, s0:s1]
                if i:
                    args = args + torch.bmm(w_in[:, s0:s1, R : R + i], torch.stack(outs, dim=1))
            if gate.builtin == READ:
                out = _read(args[:, 0], mem)
            elif gate.builtin == WRITE:
                p, v = args[:, 0], args[:, 1]
                # what WRITE passes on is fixed before the write: "old" is the cell's content before it
                if self.spec.write_returns == "old":
                    out = _read(p, mem)
                elif self.spec.write_returns == "value":
                    out = v
                elif self.spec.write_returns == "address":
                    out = p
                else:
                    out = self._one_hot(0, B, M, regs)
                mem = (1 - p).unsqueeze(2) * mem + p.unsqueeze(2) * v.unsqueeze(1)
                if clamp is not None and mem.requires_grad:
                    mem.register_hook(lambda g, c=clamp: g.clamp(-c, c))
            elif gate.arity == 0:
                out = self._one_hot(int(tabulate(gate, M)), B, M, regs)
            else:
                out = kernels[i](*args.unbind(dim=1))  # type: ignore[misc]
                if self.options.renormalize:
                    out = _renormalize(out)
            if clamp is not None and out.requires_grad:
                out.register_hook(lambda g, c=clamp: g.clamp(-c, c))
            outs.append(out)
        pool = torch.cat([regs, torch.stack(outs, dim=1)], dim=1)  # [B, R + Q, M]
        new_regs = torch.bmm(w_upd, pool)
        if self.options.renormalize:
            new_regs = _renormalize(new_regs)
        if clamp is not None and new_regs.requires_grad:
            new_regs.register_hook(lambda g, c=clamp: g.clamp(-c, c))
        return new_regs, mem, torch.stack(outs, dim=1)

    @staticmethod
    def _one_hot(value: int, B: int, M: int, like: torch.Tensor) -> torch.Tensor:
        out = like.new_zeros(B, M)
        out[:, value] = 1
        return out

    # ---------------------------------------------------------------- the whole run
    def initial_state(self, memory: torch.Tensor, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Registers one-hot 0 (as in every trace of the paper) and memory from an int [B, M] input."""
        dtype = dtype or self.controller.head.weight.dtype
        B, M = memory.shape
        mem = F.one_hot(memory.long(), M).to(dtype)
        regs = mem.new_zeros(B, self.spec.registers, M)
        regs[:, :, 0] = 1
        return regs, mem

    def forward(
        self,
        memory: torch.Tensor,
        target: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        timesteps: int | None = None,
        hard: bool = False,
        straight_through: bool = False,
        trace: bool = False,
        value_entropy: bool = False,
    ) -> NRAMOutput:
        """Run the machine on int64 initial memory [B, M].

        With `target` [B, M] and `mask` [B, M] (cells that count) the output carries the loss.
        `hard` replaces every softmax by a one-hot argmax (the discretized model on tensors);
        `straight_through` does so in forward only, keeping the softmax's gradient (for training).
        """
        T = timesteps or self.spec.timesteps
        regs, mem = self.initial_state(memory)
        B, M = memory.shape
        state = self.controller.initial_state(B, regs)
        remaining = regs.new_ones(B)  # Π_{i<t}(1 − f_i)
        halting: list[torch.Tensor] = []
        predictions: list[torch.Tensor] = []
        step_nll: list[torch.Tensor] = []
        step_prob: list[torch.Tensor] = []
        entropies: list[torch.Tensor] = []
        value_entropies: list[torch.Tensor] = []
        steps: list[dict[str, torch.Tensor]] = []
        fmask = mask.to(regs.dtype) if mask is not None else None
        for t in range(T):
            logits, state = self.controller(regs[:, :, 0], state)
            w_in, w_upd, stop_logit, entropy = self.attention(logits, hard, straight_through)
            regs, mem, outs = self.circuit_step(regs, mem, w_in, w_upd)
            if stop_logit is None:  # halt never: all mass on the last step
                p_t = regs.new_full((B,), 1.0 if t == T - 1 else 0.0)
                f_t = p_t
            else:
                f_t = torch.sigmoid(stop_logit)
                p_t = remaining if t == T - 1 else f_t * remaining
                remaining = remaining * (1 - f_t)
            halting.append(p_t)
            predictions.append(mem.argmax(dim=-1))
            if entropy is not None:
                entropies.append(entropy.mean())
            if value_entropy:
                value_entropies.append(_value_entropy(regs, self.options.eps) + _value_entropy(mem, self.options.eps))
            if target is not None:
                prob = mem.gather(2, target.long().unsqueeze(2)).squeeze(2)  # [B, M]
                if self.options.loss == "paper":
                    step_nll.append(-(torch.log(prob.clamp_min(self.options.eps)) * fmask).sum(dim=1))
                else:
                    step_prob.append(prob)
            if trace:
                steps.append(
                    {
                        "registers": regs.detach(),
                        "memory": mem.detach(),
                        "gate_outputs": outs.detach(),
                        "input_attention": w_in.detach(),
                        "update_attention": w_upd.detach(),
                        "stop": f_t.detach(),
                    }
                )
        p = torch.stack(halting, dim=1)  # [B, T]
        out = NRAMOutput(memory=mem, halting=p, predictions=torch.stack(predictions, dim=1))
        if target is not None:
            if self.options.loss == "paper":
                out.loss = (p * torch.stack(step_nll, dim=1)).sum(dim=1).mean()
            else:
                mix = (p.unsqueeze(2) * torch.stack(step_prob, dim=1)).sum(dim=1)
                out.loss = -(torch.log(mix.clamp_min(self.options.eps)) * fmask).sum(dim=1).mean()
        if entropies:
            out.entropy = torch.stack(entropies).mean()
        if value_entropies:
            out.value_entropy = torch.stack(value_entropies).mean()
        if trace:
            out.trace = steps
        return out

    def extra_repr(self) -> str:
        return f"machine={self.spec.name!r}, R={self.spec.registers}, Q={len(self.gates)}, logits={self.wiring.n_logits}"
