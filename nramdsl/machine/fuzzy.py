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

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from nramdsl.circuit.graph import build_graph
from nramdsl.circuit.wiring import Wiring
from nramdsl.kernels.lift import make_kernel
from nramdsl.kernels.select import select_kernel
from nramdsl.lang.spec import READ, WRITE, MachineSpec
from nramdsl.lang.tabulate import tabulate
from nramdsl.machine.controller import Controller, State
from nramdsl.machine.options import ModelOptions, Readout
from nramdsl.machine.stacked import BoundController
from nramdsl.machine.program import Program
from nramdsl.machine.weights import load_program

@dataclass
class NRAMOutput:
    """One run of the fuzzy machine on N examples. Per-example tensors keep a population's members apart:
    member k's examples are a contiguous block of rows, so its loss is the mean of its block."""

    memory: torch.Tensor  # [N, M, M] after the last step
    halting: torch.Tensor  # [N, T] p_t (sums to 1)
    predictions: torch.Tensor  # int64 [N, T, M] argmax of every memory cell after each step
    example_loss: torch.Tensor | None = None  # [N] the loss of each example
    example_entropy: torch.Tensor | None = None  # [N] entropy of the controller's distributions, mean over steps
    example_value_entropy: torch.Tensor | None = None  # [N] mean entropy of register and memory values
    trace: list[dict[str, torch.Tensor]] | None = None

    @property
    def loss(self) -> torch.Tensor | None:
        """The batch's mean loss (a scalar)."""
        return None if self.example_loss is None else self.example_loss.mean()

    @property
    def entropy(self) -> torch.Tensor | None:
        return None if self.example_entropy is None else self.example_entropy.mean()

    @property
    def value_entropy(self) -> torch.Tensor | None:
        return None if self.example_value_entropy is None else self.example_value_entropy.mean()

    def readout(self, rule: Readout = "halt") -> torch.Tensor:
        """The discretized output memory [N, M] under a read-out rule (the paper leaves it open, §1.6).

        halt:   the first step at which the cumulative halting probability reaches 0.5 (default: a model
                that halts is read where it halts, so spare timesteps cannot overwrite its output);
        last:   the memory after the last step;
        argmax: the step with the largest p_t.
        """
        N, T, _ = self.predictions.shape
        if rule == "last":
            step = torch.full((N,), T - 1, dtype=torch.long, device=self.predictions.device)
        elif rule == "argmax":
            step = self.halting.argmax(dim=1)
        elif rule == "halt":
            reached = self.halting.cumsum(dim=1) >= 0.5 - 1e-6
            step = torch.where(reached.any(dim=1), reached.float().argmax(dim=1), torch.full_like(reached[:, 0], T - 1, dtype=torch.long))
        else:
            raise ValueError(f"unknown read-out rule {rule!r} (expected halt, last or argmax)")
        return self.predictions[torch.arange(N, device=step.device), step]

    def halting_step(self) -> torch.Tensor:
        reached = self.halting.cumsum(dim=1) >= 0.5 - 1e-6
        return reached.float().argmax(dim=1)


class ControllerFn(Protocol):
    """What drives the circuit: a `Controller`, or a population's `BoundController`."""

    def initial_state(self, batch: int, like: torch.Tensor) -> State: ...

    def __call__(self, inputs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]: ...


def _read(pointer: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
    """READ (paper §3.2): 𝓜ᵀp, the memory rows mixed by the pointer distribution; [N, M] from [N, M, M]."""
    return torch.bmm(pointer.unsqueeze(1), mem)[:, 0]


class _Renormalize(torch.autograd.Function):
    """Divide by the row sum in forward, identity in backward (paper footnote 5), with the per-coordinate
    clamp of the incoming gradient (the paper's C1) in the same node."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, clamp: float | None) -> torch.Tensor:
        ctx.clamp = clamp
        return x / x.sum(dim=-1, keepdim=True).clamp_min(1e-30)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return (grad if ctx.clamp is None else grad.clamp(-ctx.clamp, ctx.clamp)), None


class _ClampGrad(torch.autograd.Function):
    """Identity in forward; clamps each coordinate of the gradient to [-c, c] in backward (the paper's C1)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, clamp: float) -> torch.Tensor:
        ctx.clamp = clamp
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.clamp(-ctx.clamp, ctx.clamp), None


def _value_entropy(p: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean entropy of each example's distributions (p [N, rows, M] -> [N]); the clamp keeps the gradient
    finite at 0."""
    return -(p * torch.log(p.clamp_min(eps))).sum(dim=-1).mean(dim=-1)


class FuzzyCircuit(nn.Module):
    """The machine without its controller: a circuit graph lowered to batched tensor ops (no parameters).
    `run` drives it with any controller; `NRAM` is this plus its own trainable controller."""

    def __init__(self, spec: MachineSpec, options: ModelOptions | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.options = options or ModelOptions()
        self.graph = build_graph(spec)
        self.wiring = Wiring.from_graph(self.graph)
        self.gates = list(self.wiring.gates)
        self.register_buffer("_logit_index", torch.tensor(self.wiring.positions, dtype=torch.long), persistent=False)
        self._kernel_cache: dict[int, list[Callable[..., torch.Tensor] | None]] = {}
        # torch.compile a population's timesteps (one per memory size, any batch size): faster per step on a
        # CPU after a minute or two of compiling, so it pays off in long runs (the `compile` training setting)
        self.compile_steps = False
        self._compiled: dict[int, Callable[..., Any]] = {}

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

    def constants(self, N: int, M: int, like: torch.Tensor) -> dict[int, torch.Tensor]:
        """The one-hot output [N, M] of every constant gate (and of a write that returns 0), built once per run."""
        values = {i: int(tabulate(g, M)) for i, g in enumerate(self.gates) if g.arity == 0 and not g.builtin}
        if self.spec.write_returns == "zero":
            values.update((i, 0) for i, g in enumerate(self.gates) if g.builtin == WRITE)
        eye = torch.eye(M, dtype=like.dtype, device=like.device)
        return {i: eye[v].expand(N, M) for i, v in values.items()}

    # ---------------------------------------------------------------- attention
    def attention(
        self, logits: torch.Tensor, hard: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Flat logits [N, n] -> input weights [N, S, A], update weights [N, R, A], stop logit [N]
        (None when the machine does not learn to halt), and the summed entropy [N] of all these
        distributions (None when hard: every softmax replaced by its one-hot argmax)."""
        N = logits.shape[0]
        S, R, A = self.wiring.n_slots, self.spec.registers, self.wiring.width
        # a finite fill, not -inf: masked entries get probability exactly 0 and p·log p stays 0 with a
        # finite gradient (with -inf the entropy bonus's backward is 0 · -inf = NaN)
        padded = logits.new_full((N, (S + R) * A), -1e9)
        n = logits.shape[1] - int(self.wiring.halting)
        padded = padded.index_copy(1, self._logit_index, logits[:, :n]).view(N, S + R, A)
        stop = logits[:, -1] if self.wiring.halting else None
        if hard:
            chosen = F.one_hot(padded.argmax(dim=-1), A).to(logits.dtype)
            return chosen[:, :S], chosen[:, S:], stop, None
        # softmax, not exp(log_softmax): torch.exp takes a slow path on the padding's underflow (about 10x on
        # a mostly padded grid), softmax does not. Padding gets weight exactly 0, and 0 · log(clamp) = 0.
        weights = torch.softmax(padded, dim=-1)
        entropy = -(weights * torch.log(weights.clamp_min(1e-30))).sum(dim=(1, 2))
        if stop is not None:
            f = torch.sigmoid(stop)
            entropy = entropy - f * F.logsigmoid(stop) - (1 - f) * F.logsigmoid(-stop)
        w_in, w_upd = weights.split([S, R], dim=1)
        return w_in, w_upd, stop, entropy

    # ---------------------------------------------------------------- one circuit evaluation
    def circuit_step(
        self, regs: torch.Tensor, mem: torch.Tensor, w_in: torch.Tensor, w_upd: torch.Tensor,
        constants: dict[int, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the circuit once with given attention weights.

        regs [N, R, M], mem [N, M, M], w_in [N, S, A], w_upd [N, R, A] -> new regs, new memory,
        gate outputs [N, Q, M]. Public so tests can drive it with one-hot (hard) choices.
        """
        N, R, M = regs.shape
        kernels = self.kernels(M)
        consts = constants if constants is not None else self.constants(N, M, regs)
        clamp = (self.options.grad_clamp or None) if torch.is_grad_enabled() else None
        renormalize = self.options.renormalize
        # Every gate argument (Eq. 1) is accumulated as the circuit runs: first the register part of all of
        # them in one batched matmul, then, once gate i has its output, its share in every later gate's
        # arguments at once (one fused multiply-add over the slots still to come, so the work shrinks as the
        # circuit runs). Tensors are cut with split/unbind, whose backward assembles the pieces' gradients
        # once, where a slice's backward would fill a zero tensor of the whole's size for every piece.
        reg_w, gate_w = w_in.split([R, w_in.shape[2] - R], dim=2)
        gate_cols = gate_w.unbind(2)  # gate i's weight in every slot: [N, S]
        acc = torch.bmm(reg_w, regs)  # [N, slots not yet used, M]
        first = 0  # the slot that acc's first row is
        outs: list[torch.Tensor] = []
        for i, gate in enumerate(self.gates):
            slots = self.wiring.gate_slots[i]
            if slots:
                args_t, acc = acc.split([len(slots), acc.shape[1] - len(slots)], dim=1)
                args = args_t.unbind(1)
                first += len(slots)
            if gate.builtin == READ:
                out = _read(args[0], mem)
            elif gate.builtin == WRITE:
                p, v = args
                # what WRITE passes on is fixed before the write: "old" is the cell's content before it
                out = {"old": lambda: _read(p, mem), "value": lambda: v, "address": lambda: p,
                       "zero": lambda: consts[i]}[self.spec.write_returns]()
                # row j becomes (1 - p_j) 𝓜_j + p_j v: one scaling and one fused multiply-add
                mem = torch.addcmul(mem * (1 - p).unsqueeze(2), p.unsqueeze(2), v.unsqueeze(1))
                if clamp is not None and mem.requires_grad:
                    mem = _ClampGrad.apply(mem, clamp)
            elif gate.arity == 0:
                out = consts[i]
            else:
                out = kernels[i](*args)  # type: ignore[misc]
                if renormalize:
                    out = _Renormalize.apply(out, clamp)
            if clamp is not None and out.requires_grad and not (renormalize and kernels[i] is not None):
                out = _ClampGrad.apply(out, clamp)
            outs.append(out)
            if acc.shape[1]:  # a later gate has arguments: add gate i's share to them
                acc = torch.addcmul(acc, gate_cols[i][:, first:].unsqueeze(2), out.unsqueeze(1))
        pool = torch.cat([regs, torch.stack(outs, dim=1)], dim=1)  # [N, R + Q, M]
        new_regs = torch.bmm(w_upd, pool)
        if renormalize:
            new_regs = _Renormalize.apply(new_regs, clamp)
        elif clamp is not None and new_regs.requires_grad:
            new_regs = _ClampGrad.apply(new_regs, clamp)
        return new_regs, mem, torch.stack(outs, dim=1)

    # ---------------------------------------------------------------- the whole run
    def initial_state(self, memory: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Registers one-hot 0 (as in every trace of the paper) and memory from an int [N, M] input."""
        N, M = memory.shape
        mem = F.one_hot(memory.long(), M).to(dtype)
        regs = mem.new_zeros(N, self.spec.registers, M)
        regs[:, :, 0] = 1
        return regs, mem

    def run(
        self,
        controller: ControllerFn,
        memory: torch.Tensor,
        target: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        dtype: torch.dtype,
        timesteps: int | None = None,
        hard: bool = False,
        trace: bool = False,
        value_entropy: bool = False,
    ) -> NRAMOutput:
        """Run the machine on int64 initial memory [N, M], driven by `controller`.

        With `target` [N, M] and `mask` [N, M] (cells that count) the output carries each example's loss.
        `hard` replaces every softmax by a one-hot argmax (the discretized model on tensors).
        """
        T = timesteps or self.spec.timesteps
        regs, mem = self.initial_state(memory, dtype)
        N, M = memory.shape
        consts = self.constants(N, M, regs)
        state = controller.initial_state(N, regs)
        remaining = regs.new_ones(N)  # Π_{i<t}(1 − f_i)
        fmask = mask.to(regs.dtype) if mask is not None else None
        target = target.long() if target is not None else None
        flags = (hard, value_entropy, trace)
        columns: dict[str, list[torch.Tensor]] = defaultdict(list)
        steps: list[dict[str, torch.Tensor]] = []
        for t in range(T):
            if self.compile_steps and isinstance(controller, BoundController) and not trace:
                regs, mem, state, remaining, out = self._compiled_timestep(M)(
                    controller.w, controller.recurrent, controller.hidden, regs, mem, state, remaining, consts,
                    target, fmask, t == T - 1, flags)
            else:
                regs, mem, state, remaining, out = self.timestep(
                    controller, regs, mem, state, remaining, consts, target, fmask, t == T - 1, flags)
            for key, value in out.items():
                if key in _PER_STEP:
                    columns[key].append(value)
            if trace:
                steps.append({"registers": regs.detach(), "memory": mem.detach(), "gate_outputs": out["outs"].detach(),
                              "input_attention": out["w_in"].detach(), "update_attention": out["w_upd"].detach(),
                              "stop": out["f_t"].detach()})
        return self._output(mem, columns, target, fmask, T, steps if trace else None)

    def timestep(
        self, controller: ControllerFn, regs: torch.Tensor, mem: torch.Tensor, state: State, remaining: torch.Tensor,
        consts: dict[int, torch.Tensor], target: torch.Tensor | None, fmask: torch.Tensor | None, last: bool,
        flags: tuple[bool, bool, bool],
    ) -> tuple[torch.Tensor, torch.Tensor, State, torch.Tensor, dict[str, torch.Tensor]]:
        """One timestep: controller, attention, circuit, halting (§3.3) and this step's share of the loss."""
        hard, value_entropy, trace = flags
        N = regs.shape[0]
        eps = self.options.eps
        logits, state = controller(regs[:, :, 0], state)
        w_in, w_upd, stop_logit, entropy = self.attention(logits, hard)
        regs, mem, outs = self.circuit_step(regs, mem, w_in, w_upd, consts)
        if stop_logit is None:  # halt never: all mass on the last step
            p_t = regs.new_full((N,), 1.0 if last else 0.0)
            f_t = p_t
        else:
            f_t = torch.sigmoid(stop_logit)
            p_t = remaining if last else f_t * remaining
            remaining = remaining * (1 - f_t)
        out = {"halting": p_t, "predictions": mem.argmax(dim=-1), "f_t": f_t}
        if entropy is not None:
            out["entropy"] = entropy
        if value_entropy:
            out["value_entropy"] = _value_entropy(regs, eps) + _value_entropy(mem, eps)
        if target is not None:
            prob = mem.gather(2, target.unsqueeze(2)).squeeze(2)  # [N, M]
            assert fmask is not None
            out["loss_term"] = -(torch.log(prob.clamp_min(eps)) * fmask).sum(dim=1) if self.options.loss == "paper" else prob
        if trace:
            out.update(outs=outs, w_in=w_in, w_upd=w_upd)
        return regs, mem, state, remaining, out

    def _compiled_timestep(self, M: int) -> Callable[..., Any]:
        """`timestep` compiled at memory size M (any batch size), for a population's bound controllers."""
        if M not in self._compiled:
            self.kernels(M)  # built outside the compiled region: tabulating and classifying is numpy work

            def step(weights: dict[str, torch.Tensor], recurrent: bool, hidden: int, *args: Any) -> Any:
                return self.timestep(BoundController(recurrent, hidden, weights), *args)

            self._compiled[M] = torch.compile(step, dynamic=True)
        return self._compiled[M]

    def _output(self, mem: torch.Tensor, columns: dict[str, list[torch.Tensor]], target: torch.Tensor | None,
                fmask: torch.Tensor | None, T: int, steps: list[dict[str, torch.Tensor]] | None) -> NRAMOutput:
        p = torch.stack(columns["halting"], dim=1)  # [N, T]
        out = NRAMOutput(memory=mem, halting=p, predictions=torch.stack(columns["predictions"], dim=1), trace=steps)
        eps = self.options.eps
        if target is not None:
            terms = torch.stack(columns["loss_term"], dim=1)
            if self.options.loss == "paper":
                out.example_loss = (p * terms).sum(dim=1)
            else:
                mix = (p.unsqueeze(2) * terms).sum(dim=1)
                out.example_loss = -(torch.log(mix.clamp_min(eps)) * fmask).sum(dim=1)
        if columns.get("entropy"):
            out.example_entropy = torch.stack(columns["entropy"]).sum(dim=0) / T
        if columns.get("value_entropy"):
            out.example_value_entropy = torch.stack(columns["value_entropy"]).sum(dim=0) / T
        return out


_PER_STEP = ("halting", "predictions", "entropy", "value_entropy", "loss_term")


class NRAM(FuzzyCircuit):
    """A batched, trainable NRAM for one resolved machine: the fuzzy circuit and its controller."""

    def __init__(self, spec: MachineSpec, options: ModelOptions | None = None) -> None:
        super().__init__(spec, options)
        self.controller = Controller(spec.controller, spec.registers, self.wiring.n_logits)
        if self.wiring.halting:
            with torch.no_grad():
                self.controller.head.bias[-1].fill_(self.options.halt_bias)
        table = spec.controller.table
        if table is not None:  # a hand-written program: the controller starts out running it
            load_program(self.controller, Program.from_table(table, self.wiring), self.wiring, table.scale)

    def initial_state(self, memory: torch.Tensor, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return super().initial_state(memory, dtype or self.controller.head.weight.dtype)

    def forward(
        self,
        memory: torch.Tensor,
        target: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        timesteps: int | None = None,
        hard: bool = False,
        trace: bool = False,
        value_entropy: bool = False,
    ) -> NRAMOutput:
        """Run the machine on int64 initial memory [B, M] (see `FuzzyCircuit.run`)."""
        return self.run(self.controller, memory, target, mask, dtype=self.controller.head.weight.dtype,
                        timesteps=timesteps, hard=hard, trace=trace, value_entropy=value_entropy)

    def extra_repr(self) -> str:
        return f"machine={self.spec.name!r}, R={self.spec.registers}, Q={len(self.gates)}, logits={self.wiring.n_logits}"
