"""A gate at one M -> the kernel that lifts it (`select_kernel`), recognised from its integer table alone.

This is where the kernel of every gate is chosen and described, for the model (`nramdsl.kernels.lift`)
and for `nramdsl compile --emit summary` alike, so the two never disagree. It needs numpy only.

The gate's name and source text are never consulted: `gate plus(x, y) = (y + x) mod M` and the paper's
`add` have the same table, so they get the same kernel. Every candidate class is verified by building the
class's own table and comparing it with the gate's table for exact integer equality, so a choice is
always sound: the fast kernel computes exactly the Eq. 2 lift of the gate's table (up to rounding).

Classes, tried in this order (the first that matches wins; at tiny M several can coincide, e.g. at M = 2
`(a + b) mod 2` is also `a != b`, and either kernel is then correct):

- constant: every entry equal (any arity);
- a function of one argument only (any arity): `shift` when it is `(x + k) mod M` (a roll), else `unary`
  (a gather for a permutation, a scatter-add for any other map);
- binary `add` `(a + b + k) mod M`, `sub` `(a - b + k) mod M`, `rsub` `(b - a + k) mod M`;
- binary comparisons lt/le/gt/ge/eq/ne with any two distinct outputs (false value < true value, so that
  `1 - (a >= b)` is reported as `a < b`);
- binary `min(a, b)` and `max(a, b)` (no wrap, as in the paper);
- everything else: `generic` (index table + scatter-add).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from nramdsl.lang.spec import READ, WRITE, Gate
from nramdsl.lang.tabulate import tabulate

Kind = Literal[
    "constant", "shift", "unary", "add", "sub", "rsub",
    "lt", "le", "gt", "ge", "eq", "ne", "min", "max", "generic", "via", "read", "write",
]  # fmt: skip
FftMode = Literal["auto", "always", "never"]

# add/sub use the FFT from this M up under fft="auto". Measured on CPU, B = 64, forward+backward: the FFT
# beats the O(M^2) direct lift from M ~ 32 (benchmarks/bench_kernels.py); below it the FFT's fixed cost dominates.
FFT_MIN_M = 32

COMPARISONS: tuple[str, ...] = ("lt", "le", "gt", "ge", "eq", "ne")
_SYMBOL = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_ARG_NAMES = "abcdefgh"

# The predicate of each comparison over the open grid (a as a column, b as a row).
_PREDICATES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}


@dataclass(frozen=True)
class KernelChoice:
    """Which kernel lifts a gate, with the parameters that kernel needs."""

    kind: Kind
    arity: int
    arg: int | None = None  # shift/unary: the one argument the gate reads
    k: int = 0  # constant: the value; shift/add/sub/rsub: the offset
    values: tuple[int, int] | None = None  # comparisons: (output when false, output when true)
    mapping: tuple[int, ...] | None = None  # unary: the gate's table along its one argument
    fft: bool | None = None  # add/sub/rsub: FFT (True) or the direct O(M^2) lift (False); set by make_kernel
    via: str | None = None  # via: the user's "module:function"

    @property
    def is_permutation(self) -> bool:
        return self.mapping is not None and len(set(self.mapping)) == len(self.mapping)

    def describe(self) -> str:
        # a gate may take more arguments than there are letters: name the rest by position
        x = "a" if self.arg is None else _ARG_NAMES[self.arg] if self.arg < len(_ARG_NAMES) else f"arg{self.arg + 1}"
        off = f" + {self.k}" if self.k else ""
        method = "FFT" if self.fft else "direct, index-table scatter-add"
        if self.kind == "constant":
            return f"constant {self.k} (one-hot)"
        if self.kind == "shift":
            return f"shift ({x}{off}) mod M (roll)" if self.k else f"identity {x} (copy)"
        if self.kind == "unary":
            how = "permutation, gather" if self.is_permutation else "scatter-add"
            return f"unary map of {x} ({how}, O(M))"
        if self.kind == "add":
            return f"modular add (a + b{off}) mod M (circular convolution, {method})"
        if self.kind in ("sub", "rsub"):
            expr = "a - b" if self.kind == "sub" else "b - a"
            return f"modular sub ({expr}{off}) mod M (circular cross-correlation, {method})"
        if self.kind in COMPARISONS:
            assert self.values is not None
            how = "dot product" if self.kind in ("eq", "ne") else "cumulative sums"
            return f"comparison a {_SYMBOL[self.kind]} b -> {{false: {self.values[0]}, true: {self.values[1]}}} ({how}, O(M))"
        if self.kind == "min":
            return "min(a, b) (cumulative sums, O(M))"
        if self.kind == "max":
            return "max(a, b) (cumulative sums, O(M))"
        if self.kind == "via":
            return f"user kernel {self.via} (via)"
        if self.kind == READ:
            return "memory read (𝓜ᵀp)"
        if self.kind == WRITE:
            return "memory write (rank-1 row update)"
        return f"generic lift (index table + scatter-add, O(M^{self.arity}))"


def _one_argument(table: np.ndarray) -> tuple[int, np.ndarray] | None:
    """(axis, 1-D table) when the table varies along one axis only."""
    for axis in range(table.ndim):
        line = np.moveaxis(table, axis, 0)[(slice(None),) + (0,) * (table.ndim - 1)]
        shape = [1] * table.ndim
        shape[axis] = -1
        if np.array_equal(table, np.broadcast_to(line.reshape(shape), table.shape)):
            return axis, line
    return None


def _classify_unary(line: np.ndarray, M: int, arity: int, arg: int) -> KernelChoice:
    x = np.arange(M, dtype=np.int64)
    k = int(line[0])
    if np.array_equal(line, (x + k) % M):
        return KernelChoice("shift", arity, arg=arg, k=k)
    return KernelChoice("unary", arity, arg=arg, mapping=tuple(int(v) for v in line))


def _classify_binary(table: np.ndarray, M: int) -> KernelChoice | None:
    a = np.arange(M, dtype=np.int64)[:, None]
    b = np.arange(M, dtype=np.int64)[None, :]
    k = int(table[0, 0])
    for kind, candidate in (("add", a + b + k), ("sub", a - b + k), ("rsub", b - a + k)):
        if np.array_equal(table, candidate % M):
            return KernelChoice(kind, 2, k=k)  # type: ignore[arg-type]
    for kind, predicate in _PREDICATES.items():
        p = predicate(a, b)
        if p.all() or not p.any():
            continue
        false_value, true_value = int(table[~p][0]), int(table[p][0])
        # each table matches a predicate and its negation; name it by the one whose true value is larger
        if false_value < true_value and np.array_equal(table, np.where(p, true_value, false_value)):
            return KernelChoice(kind, 2, values=(false_value, true_value))  # type: ignore[arg-type]
    if np.array_equal(table, np.minimum(a, b)):
        return KernelChoice("min", 2)
    if np.array_equal(table, np.maximum(a, b)):
        return KernelChoice("max", 2)
    return None


def classify(table: np.ndarray, M: int) -> KernelChoice:
    """The fastest sound kernel for an integer table of shape (M,) * arity (0-d for a constant)."""
    table = np.asarray(table, dtype=np.int64)
    arity = table.ndim
    if table.size and np.all(table == table.flat[0]):
        return KernelChoice("constant", arity, k=int(table.flat[0]))
    single = _one_argument(table)
    if single is not None:
        return _classify_unary(single[1], M, arity, single[0])
    if arity == 2:
        choice = _classify_binary(table, M)
        if choice is not None:
            return choice
    return KernelChoice("generic", arity)


def select_kernel(gate: Gate, M: int, *, generic: bool = False, fft: FftMode = "auto") -> KernelChoice:
    """The kernel a model runs for `gate` at M.

    Built-in memory gates are the model's own (`read`, `write`). generic=True forces the generic lift of
    the gate's table (also for a `via` gate): the reference the fast kernels are tested against. `fft`
    picks FFT or the direct O(M^2) lift for add/sub: "auto" uses the FFT from `FFT_MIN_M` up.
    """
    if fft not in ("auto", "always", "never"):
        raise ValueError(f"fft must be 'auto', 'always' or 'never', got {fft!r}")
    if gate.builtin is not None:
        return KernelChoice(gate.builtin, gate.arity)  # type: ignore[arg-type]
    table = tabulate(gate, M)
    if generic:
        return KernelChoice("generic", gate.arity)
    if gate.via is not None:
        return KernelChoice("via", gate.arity, via=gate.via)
    choice = classify(table, M)
    if choice.kind in ("add", "sub", "rsub"):
        choice = dataclasses.replace(choice, fft=fft == "always" or (fft == "auto" and M >= FFT_MIN_M))
    return choice
