"""Batched fuzzy gates: the Eq. 2 lift of one integer definition, computed by the fastest sound kernel.

A gate is defined once, by its integer semantics. Once M is bound it is tabulated (`nramdsl.tabulate`),
the table is classified (`nramdsl.kernel_classify`), and `make_kernel` returns a `GateKernel` that maps
distributions `[..., M]` (rows on the simplex; float32 or float64; any device; leading dimensions
broadcast) to the distribution of the output:

    P(out = c) = sum_{a,b} P(A = a) P(B = b) [f(a, b) = c]        (paper Eq. 2)

Kernels, by class (costs per row):
- generic: the outer product of the inputs, scatter-added into the output bins through the flattened
  index table, O(M^arity); never an M x M x M one-hot tensor;
- constant: a one-hot row; shift: a roll, O(M); unary: a gather (permutation) or scatter-add, O(M);
- add/sub/rsub: circular convolution / cross-correlation, by FFT, O(M log M), or by a gathered circulant,
  O(M^2); FFT output is clamped at 0, because FFT leaves ~1e-7 noise where the exact value is 0 and a log
  clamp would turn that noise into loss;
- comparisons: the two output probabilities from cumulative sums or a dot product, O(M);
- min/max: P(min = k) = A_k S_B(k+1) + B_k S_A(k) with S(k) = P(X >= k) (the paper's
  A_k S_B(k) + B_k S_A(k) - A_k B_k, rearranged so that every term is a product of non-negative
  numbers), and the mirror image with CDFs for max, O(M).

Every kernel is built from differentiable torch ops, so gradients flow through all of them.

Batching by class: within one step gate i may take gate j < i's output as input, so gates of the same class
generally cannot be fused into one op. The only fusion that is always sound is the constants, which
depend on no input: `constant_outputs` builds all of them in one op.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nramdsl.errors import NramError
from nramdsl.ir import Gate
from nramdsl.kernel_classify import KernelChoice, classify
from nramdsl.tabulate import tabulate
from nramdsl.via import load_via

FftMode = Literal["auto", "always", "never"]

# add/sub use the FFT from this M up under fft="auto". Measured (paper notes §7): FFT beats a gathered
# circulant from M ~ 32 at batch >= 32 (2.6x at M = 256); below it the FFT's fixed cost dominates.
FFT_MIN_M = 32

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


def _suffix(x: Tensor) -> Tensor:
    """S(k) = sum_{j >= k} x_j, summed from the right so that it is non-negative term by term."""
    return x.flip(-1).cumsum(-1).flip(-1)


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

        def shift(*dists: Tensor) -> Tensor:
            return torch.roll(dists[arg], k, dims=-1).expand(*_lead(dists), M)

        return shift
    assert choice.mapping is not None
    mapping = np.asarray(choice.mapping, dtype=np.int64)
    if choice.is_permutation:
        inverse = _Index(np.argsort(mapping))  # out[c] = x[the a with f(a) = c]

        def permute(*dists: Tensor) -> Tensor:
            x = dists[arg]
            return x.index_select(-1, inverse.on(x.device)).expand(*_lead(dists), M)

        return permute
    index = _Index(mapping)

    def unary(*dists: Tensor) -> Tensor:
        x = dists[arg]
        out = x.new_zeros(*x.shape[:-1], M).index_add(-1, index.on(x.device), x)
        return out.expand(*_lead(dists), M)

    return unary


def _comparison(choice: KernelChoice, M: int) -> KernelFn:
    assert choice.values is not None
    # gt, ge, ne are the negations of le, lt, eq: the same two probabilities, swapped
    base = {"lt": "lt", "le": "le", "eq": "eq", "gt": "le", "ge": "lt", "ne": "eq"}[choice.kind]
    negate = choice.kind in ("gt", "ge", "ne")
    index = _Index(np.array(choice.values, dtype=np.int64))

    def compare(a: Tensor, b: Tensor) -> Tensor:
        # Both probabilities are computed (rather than one as 1 - the other) so the kernel stays bilinear,
        # like Eq. 2, even for inputs whose mass drifted from 1.
        if base == "eq":
            p_true = (a * b).sum(-1)
            p_false = (a * (b.sum(-1, keepdim=True) - b)).sum(-1)
        else:
            below = b.cumsum(-1)  # P(B <= j)
            above = _suffix(b)  # P(B >= j)
            if base == "lt":  # true: B > a; false: B <= a
                p_true = (a[..., :-1] * above[..., 1:]).sum(-1)
                p_false = (a * below).sum(-1)
            else:  # le: true: B >= a; false: B < a
                p_true = (a * above).sum(-1)
                p_false = (a[..., 1:] * below[..., :-1]).sum(-1)
        if negate:
            p_true, p_false = p_false, p_true
        probs = torch.stack([p_false, p_true], dim=-1)
        return probs.new_zeros(*probs.shape[:-1], M).index_add(-1, index.on(probs.device), probs)

    return compare


def _min(a: Tensor, b: Tensor) -> Tensor:
    # P(min = k) = P(A = k, B > k) + P(B = k, A >= k)
    return a * F.pad(_suffix(b)[..., 1:], (0, 1)) + b * _suffix(a)


def _max(a: Tensor, b: Tensor) -> Tensor:
    # P(max = k) = P(A = k, B < k) + P(B = k, A <= k)
    return a * F.pad(b.cumsum(-1)[..., :-1], (1, 0)) + b * a.cumsum(-1)


# ----------------------------------------------------------------------------------- add / sub
def _modular(choice: KernelChoice, M: int) -> KernelFn:
    k = choice.k
    swap = choice.kind == "rsub"  # (b - a + k) is sub with the arguments exchanged
    correlate = choice.kind in ("sub", "rsub")
    if choice.fft:

        def fft(a: Tensor, b: Tensor) -> Tensor:
            if swap:
                a, b = b, a
            fb = torch.fft.rfft(b, dim=-1)
            spectrum = torch.fft.rfft(a, dim=-1) * (fb.conj() if correlate else fb)
            out = torch.fft.irfft(spectrum, n=M, dim=-1)  # out[c] = P(a + b = c) or P(a - b = c)
            return torch.roll(out, k, dims=-1).clamp(min=0)

        return fft
    # gathered circulant: out[c] = sum_x A_x B_{I[c, x]}
    c = np.arange(M)[:, None]
    x = np.arange(M)[None, :]
    circulant = _Index(((x + k - c) if correlate else (c - x - k)) % M)

    def direct(a: Tensor, b: Tensor) -> Tensor:
        if swap:
            a, b = b, a
        gathered = b[..., circulant.on(b.device)]  # [..., M (c), M (x)]
        return torch.matmul(gathered, a.unsqueeze(-1)).squeeze(-1)

    return direct


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
        out = user(*dists)
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
    if choice.kind in ("add", "sub", "rsub"):
        return _modular(choice, M)
    if choice.kind in ("lt", "le", "gt", "ge", "eq", "ne"):
        return _comparison(choice, M)
    if choice.kind == "min":
        return _min
    if choice.kind == "max":
        return _max
    return _generic(table, M)


@functools.lru_cache(maxsize=512)
def make_kernel(gate: Gate, M: int, *, generic: bool = False, fft: FftMode = "auto") -> GateKernel:
    """The lifted gate at M, cached per (gate, M, options).

    generic=True forces the generic lift of the gate's table (also for a `via` gate), the reference the
    fast kernels are tested against. fft picks FFT or the gathered circulant for add/sub: "auto" uses
    the FFT from `FFT_MIN_M` up. Built-in memory gates (read/write) are implemented by the model.
    """
    if gate.builtin is not None:
        raise ValueError(f"gate '{gate.name}' is the built-in memory gate '{gate.builtin}': the model implements it, not a kernel")
    if fft not in ("auto", "always", "never"):
        raise ValueError(f"fft must be 'auto', 'always' or 'never', got {fft!r}")
    table = tabulate(gate, M)
    if generic:
        choice = KernelChoice("generic", gate.arity)
        fn = _constant(int(table), M) if gate.arity == 0 else _generic(table, M)
        return GateKernel(gate, M, choice, fn)
    if gate.via is not None:
        return GateKernel(gate, M, KernelChoice("via", gate.arity, via=gate.via), _via(gate, M))
    choice = classify(table, M)
    if choice.kind in ("add", "sub", "rsub"):
        choice = dataclasses.replace(choice, fft=fft == "always" or (fft == "auto" and M >= FFT_MIN_M))
    return GateKernel(gate, M, choice, _fast(choice, table, M))


def constant_outputs(values: Sequence[int], M: int, like: Tensor) -> Tensor:
    """All constant gates' outputs in one op: `[*like.shape[:-1], len(values), M]`, dtype/device of `like`.

    The one sound fusion across gates: constants depend on no input, so their order in the circuit does
    not matter.
    """
    eye = torch.eye(M, dtype=like.dtype, device=like.device)[list(values)]
    return eye.expand(*like.shape[:-1], len(values), M).clone()
