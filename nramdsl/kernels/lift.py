"""Batched fuzzy gates: the Eq. 2 lift of one integer definition, computed by the fastest sound kernel.

A gate is defined once, by its integer semantics. Once M is bound it is tabulated (`nramdsl.lang.tabulate`),
its kernel is chosen from the table (`nramdsl.kernels.select`), and `make_kernel` returns a `GateKernel` that maps
distributions `[..., M]` (rows on the simplex; float32 or float64; any device; leading dimensions
broadcast) to the distribution of the output:

    P(out = c) = sum_{a,b} P(A = a) P(B = b) [f(a, b) = c]        (paper Eq. 2)

Kernels, by class (costs per row):
- generic: the outer product of the inputs, scatter-added into the output bins through the flattened
  index table, O(M^arity); never an M x M x M one-hot tensor;
- constant: a one-hot row; shift: a roll, O(M); unary: a gather (permutation) or scatter-add, O(M);
- add/sub/rsub: circular convolution / cross-correlation by FFT, O(M log M), or directly, O(M^2), by the
  index-table scatter-add (on CPU it beat every gathered-circulant variant measured, forward+backward, at
  M = 8..64, see benchmarks/bench_kernels.py); FFT output is clamped at 0, because FFT leaves ~1e-7 noise
  where the exact value is 0 and a log clamp would turn that noise into loss;
- comparisons: the two output probabilities from one cumulative sum (lt/le/gt/ge) or a dot product
  (eq/ne), O(M);
- min/max: P(min = k) = A_k P(B > k) + B_k P(A >= k) and P(max = k) = A_k P(B < k) + B_k P(A <= k), from
  cumulative sums, O(M): the paper's A_k S_B(k) + B_k S_A(k) - A_k B_k rearranged so that every term is a
  product of numbers that are non-negative exactly, not just up to rounding.

Every kernel is built from differentiable torch ops, so gradients flow through all of them.

Batching by class: within one step gate i may take gate j < i's output as input, so gates of the same class
generally cannot be fused into one op.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nramdsl.errors import NramError
from nramdsl.kernels.select import FftMode, KernelChoice, select_kernel
from nramdsl.kernels.via import kernel_location, load_via
from nramdsl.lang.spec import Gate
from nramdsl.lang.tabulate import tabulate

Tensor = torch.Tensor
KernelFn = Callable[..., Tensor]


class _Index:
    """An integer index array, copied to each device once, on first use there."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = np.array(array, dtype=np.int64, copy=True)  # owned and writable, as torch wants
        self._by_device: dict[torch.device, Tensor] = {}

    def on(self, device: torch.device) -> Tensor:
        t = self._by_device.get(device)
        if t is None:
            t = self._by_device[device] = torch.from_numpy(self._array).to(device)
        return t


def _lead(dists: Sequence[Tensor]) -> torch.Size:
    return torch.broadcast_shapes(*(d.shape[:-1] for d in dists))


def _one_hot(value: int, M: int, lead: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
    out = torch.zeros(*lead, M, dtype=dtype, device=device)
    out[..., value] = 1
    return out


# ----------------------------------------------------------------------------------- the generic lift
def _generic(table: np.ndarray, M: int) -> KernelFn:
    index = _Index(table.reshape(-1))

    def lift(*dists: Tensor) -> Tensor:
        joint = dists[0]
        for d in dists[1:]:  # the flattened outer product, row-major like the table
            joint = (joint.unsqueeze(-1) * d.unsqueeze(-2)).flatten(-2)
        out = joint.new_zeros(*joint.shape[:-1], M)
        return out.index_add(-1, index.on(joint.device), joint)

    return lift


# ----------------------------------------------------------------------------------- O(M) classes
def _constant(value: int, M: int) -> KernelFn:
    def constant(*dists: Tensor, batch: int = 1, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
        if dists:
            return _one_hot(value, M, _lead(dists), dists[0].dtype, dists[0].device)
        return _one_hot(value, M, torch.Size([batch]), dtype, torch.device(device or "cpu"))

    return constant


def _one_argument(choice: KernelChoice, M: int) -> KernelFn:
    arg = choice.arg
    assert arg is not None
    if choice.kind == "shift":
        k = choice.k

        def apply(x: Tensor) -> Tensor:
            return torch.roll(x, k, dims=-1)

    elif choice.is_permutation:
        assert choice.mapping is not None
        inverse = _Index(np.argsort(np.asarray(choice.mapping)))  # out[c] = x[the a with f(a) = c]

        def apply(x: Tensor) -> Tensor:
            return x.index_select(-1, inverse.on(x.device))

    else:
        index = _Index(np.asarray(choice.mapping))

        def apply(x: Tensor) -> Tensor:
            return x.new_zeros(x.shape).index_add(-1, index.on(x.device), x)

    def one_argument(*dists: Tensor) -> Tensor:
        out = apply(dists[arg])
        if len(dists) > 1 and any(d.shape != out.shape for d in dists):  # the ignored arguments' batch shape
            out = out.expand(*_lead(dists), M)
        return out

    return one_argument


def _comparison(choice: KernelChoice, M: int) -> KernelFn:
    assert choice.values is not None
    # Every comparison is "x < y" or its negation "x >= y" for (x, y) = (a, b) or (b, a), or eq/ne:
    # (swap the arguments, swap true and false)
    swap, negate = {"lt": (False, False), "ge": (False, True), "gt": (True, False), "le": (True, True),
                    "eq": (False, False), "ne": (False, True)}[choice.kind]  # fmt: skip
    equality = choice.kind in ("eq", "ne")
    values = choice.values[::-1] if negate else choice.values  # where (P(false), P(true)) below go
    index = _Index(np.array(values, dtype=np.int64))
    zero_one = values == (0, 1)

    def compare(a: Tensor, b: Tensor) -> Tensor:
        x, y = (b, a) if swap else (a, b)
        # Both probabilities are computed (rather than one as 1 - the other) so that the kernel stays
        # bilinear, like Eq. 2, even for inputs whose mass drifted from 1. Each weight is >= 0 exactly:
        # a cumulative sum of non-negative numbers never decreases, so total - cumsum >= 0.
        if equality:  # true: y = x; false: y != x
            weights = torch.stack([y.sum(-1, keepdim=True) - y, y], dim=-1)
        else:  # true: y > x; false: y <= x
            below = y.cumsum(-1)
            weights = torch.stack([below, below[..., -1:] - below], dim=-1)
        probs = (x.unsqueeze(-2) @ weights).squeeze(-2)  # [..., 2]: (P(false), P(true))
        if zero_one:  # the usual outputs 0 and 1: one op instead of two
            return F.pad(probs, (0, M - 2))
        return probs.new_zeros(*probs.shape[:-1], M).index_add(-1, index.on(probs.device), probs)

    return compare


def _min(a: Tensor, b: Tensor) -> Tensor:
    # P(min = k) = P(A = k, B > k) + P(B = k, A >= k), with P(X > k) = total - cumsum >= 0 exactly
    ca, cb = a.cumsum(-1), b.cumsum(-1)
    return a * (cb[..., -1:] - cb) + b * (ca[..., -1:] - ca + a)


def _max(a: Tensor, b: Tensor) -> Tensor:
    # P(max = k) = P(A = k, B < k) + P(B = k, A <= k); cumsum - b >= 0 because fl(s + b) >= b for s >= 0
    ca, cb = a.cumsum(-1), b.cumsum(-1)
    return a * (cb - b) + b * ca


# ----------------------------------------------------------------------------------- add / sub
def _fft(choice: KernelChoice, M: int) -> KernelFn:
    k = choice.k
    swap = choice.kind == "rsub"  # (b - a + k) is sub with the arguments exchanged
    correlate = choice.kind in ("sub", "rsub")

    def fft(a: Tensor, b: Tensor) -> Tensor:
        if swap:
            a, b = b, a
        fb = torch.fft.rfft(b, dim=-1)
        spectrum = torch.fft.rfft(a, dim=-1) * (fb.conj() if correlate else fb)
        out = torch.fft.irfft(spectrum, n=M, dim=-1)  # out[c] = P(a + b = c) or P(a - b = c)
        # clamp: FFT leaves ~1e-7 noise where the exact probability is 0
        return torch.roll(out, k, dims=-1).clamp(min=0)

    return fft


# ----------------------------------------------------------------------------------- the kernel object
class GateKernel:
    """The lifted gate at one M: `kernel(*dists) -> [..., M]`, one `[..., M]` tensor per argument.

    A constant gate of arity 0 is called with no tensors and takes `batch`, `dtype` and `device`.
    """

    def __init__(self, gate: Gate, M: int, choice: KernelChoice, fn: KernelFn) -> None:
        self.gate = gate
        self.M = M
        self.choice = choice
        self.arity = gate.arity
        self._fn = fn

    def __call__(self, *dists: Tensor, **constant_options: object) -> Tensor:
        if len(dists) != self.arity:
            raise TypeError(f"gate '{self.gate.name}' takes {self.arity} distributions, got {len(dists)}")
        for d in dists:
            if d.shape[-1] != self.M:
                raise ValueError(f"gate '{self.gate.name}' is built for M = {self.M}, got a distribution of size {d.shape[-1]}")
        if constant_options:
            return self._fn(*dists, **constant_options)
        return self._fn(*dists)

    def __repr__(self) -> str:
        return f"GateKernel({self.gate.name!r}, M={self.M}, {self.choice.describe()})"


def _via(gate: Gate, M: int) -> KernelFn:
    user = load_via(gate)

    def via(*dists: Tensor) -> Tensor:
        try:
            out = user(*dists)
        except Exception as exc:  # the user's code: report it at the spec's `via`, and where in the kernel
            raise NramError(f"gate '{gate.name}': 'via' kernel {gate.via} raised {type(exc).__name__}: {exc}"
                            f"{kernel_location(gate, exc)}", gate.via_span or gate.span) from exc
        if not isinstance(out, torch.Tensor) or out.shape[-1:] != (M,):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise NramError(f"gate '{gate.name}': 'via' kernel {gate.via} returned {got}, expected [..., {M}]", gate.via_span or gate.span)
        return out

    return via


def _fast(choice: KernelChoice, table: np.ndarray, M: int) -> KernelFn:
    if choice.kind == "constant":
        return _constant(choice.k, M)
    if choice.kind in ("shift", "unary"):
        return _one_argument(choice, M)
    if choice.kind in ("add", "sub", "rsub") and choice.fft:
        return _fft(choice, M)
    if choice.kind in ("lt", "le", "gt", "ge", "eq", "ne"):
        return _comparison(choice, M)
    if choice.kind == "min":
        return _min
    if choice.kind == "max":
        return _max
    return _generic(table, M)


@functools.lru_cache(maxsize=512)
def make_kernel(gate: Gate, M: int, *, generic: bool = False, fft: FftMode = "auto") -> GateKernel:
    """The lifted gate at M, cached per (gate, M, options); the kernel is `select_kernel`'s choice.

    generic=True forces the generic lift of the gate's table (also for a `via` gate), the reference the
    fast kernels are tested against. Built-in memory gates (read/write) are implemented by the model.
    """
    if gate.builtin is not None:
        raise ValueError(f"gate '{gate.name}' is the built-in memory gate '{gate.builtin}': the model implements it, not a kernel")
    choice = select_kernel(gate, M, generic=generic, fft=fft)
    table = tabulate(gate, M)
    if choice.kind == "generic":
        fn = _constant(int(table), M) if gate.arity == 0 else _generic(table, M)
    elif choice.kind == "via":
        fn = _via(gate, M)
    else:
        fn = _fast(choice, table, M)
    return GateKernel(gate, M, choice, fn)
