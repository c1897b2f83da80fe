"""Tabulate a gate's integer semantics over all inputs once M is bound, and prove it total.

A gate is total at M when it returns a value in [0, M) for every input in [0, M)^arity without raising.
Anything else is a `TotalityError` naming the gate, the first failing inputs (in row-major order), the
value, and the gate's source position. Nothing is ever clipped: a clipped table would leak or move
probability mass silently (TerpreT's "error bin" flaw).

Before anything is computed, `check_tabulable` holds the table to the limits (`nramdsl.limits`): its
entries, the work of computing it (entries x operations), and the magnitude of every intermediate value,
which must fit the 64-bit integers the table is computed in (numpy wraps on overflow without a word).
The table is computed in chunks of rows, so the temporaries of a deep expression stay small.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from nramdsl import limits
from nramdsl.errors import InvalidValue, NramError, TotalityError
from nramdsl.lang.spec import Gate

CHUNK = 1 << 16  # entries computed at once: bounds the temporaries of a deep expression
CACHE_BYTES = 256 << 20  # tables kept for reuse, least recently used dropped first


def table_size(arity: int, M: int) -> int:
    """M^arity, computed cheaply even for an absurd arity (it only has to compare right with the limits)."""
    return M ** min(arity, 64)


def check_tabulable(gate: Gate, M: int) -> None:
    """The table of `gate` at M within the limits; a located error naming the limit otherwise."""
    where = f"gate '{gate.name}' at M = {M}: "
    entries = table_size(gate.arity, M)
    limits.TABLE_ENTRIES.check(entries, gate.span, None, where)
    limits.TABLE_WORK.check(entries * max(1, gate.operations), gate.span, None, where)
    check_fits_64_bits(gate, M)


def tabulable(gate: Gate, M: int) -> bool:
    """Whether the table's size and work are within the limits (the range of its values aside)."""
    entries = table_size(gate.arity, M)
    return entries <= limits.TABLE_ENTRIES.value and entries * max(1, gate.operations) <= limits.TABLE_WORK.value


def check_fits_64_bits(gate: Gate, M: int) -> None:
    """Every intermediate value of the gate at M below 2^63: tables and the reference machine's batched
    steps compute in 64-bit integers, which numpy lets wrap around silently."""
    if gate.value_bound is not None and gate.value_bound(M) >= 1 << limits.INT_BITS:
        raise InvalidValue(f"gate '{gate.name}' at M = {M}: intermediate values can pass 2^{limits.INT_BITS}, beyond "
                           f"the 64-bit integers gates are computed in (make its constants or products smaller)",
                           gate.span)


def _grid(arity: int, M: int, rows: slice = slice(None)) -> tuple[np.ndarray, ...]:
    """Open-mesh argument arrays, argument k varying along axis k; the first takes only `rows`."""
    grid = []
    for k in range(arity):
        values = np.arange(M, dtype=np.int64)[rows if k == 0 else slice(None)]
        grid.append(values.reshape((1,) * k + (len(values),) + (1,) * (arity - 1 - k)))
    return tuple(grid)


def _call(gate: Gate, M: int, args: tuple, shape: tuple[int, ...]) -> np.ndarray:
    assert gate.evaluate is not None, f"built-in gate {gate.name!r} has no table"
    with np.errstate(all="raise"):
        out = gate.evaluate(M, *args)
    return np.broadcast_to(np.asarray(out, dtype=np.int64), shape)


def _chunks(arity: int, M: int) -> list[slice]:
    """Slices of the first argument, each covering at most CHUNK entries (one row at least)."""
    if arity == 0:
        return [slice(None)]
    rows = max(1, CHUNK // table_size(arity - 1, M))
    return [slice(start, min(start + rows, M)) for start in range(0, M, rows)]


def _first_failure(gate: Gate, M: int, rows: slice) -> tuple[tuple[int, ...], str] | None:
    """Scan the inputs of one chunk one by one (only on the error path) for the first that fails and why."""
    shape = (M,) * gate.arity
    first, stop = (rows.start or 0, rows.stop if rows.stop is not None else M) if gate.arity else (0, 1)
    width = table_size(gate.arity - 1, M) if gate.arity else 1
    for flat in range(first * width, stop * width):
        point = tuple(int(x) for x in np.unravel_index(flat, shape)) if gate.arity else ()
        try:
            with np.errstate(all="raise"):
                value = int(gate.evaluate(M, *point))  # type: ignore[misc]
        except (ZeroDivisionError, FloatingPointError, ArithmeticError) as exc:
            return point, f"raises {type(exc).__name__}: {exc}"
        if not 0 <= value < M:
            return point, f"= {value}, outside [0, {M})"
    return None


def _describe(gate: Gate, point: tuple[int, ...], why: str, M: int) -> str:
    call = f"{gate.name}({', '.join(map(str, point))})" if gate.params else gate.name
    if why.startswith("="):
        hint = " (did you forget 'mod M'?)"
    elif "ZeroDivision" in why or "divide by zero" in why:
        hint = " (guard the divisor: `if b == 0 then … else a // b`)"
    else:
        hint = ""
    return f"gate '{gate.name}' is not total at M = {M}: {call} {why}{hint}"


class _TableCache:
    """Tables by (gate, M), holding at most CACHE_BYTES: a long-lived process meets many specs."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used = budget, 0
        self.tables: OrderedDict[tuple[Gate, int], np.ndarray] = OrderedDict()

    def get(self, key: tuple[Gate, int]) -> np.ndarray | None:
        table = self.tables.get(key)
        if table is not None:
            self.tables.move_to_end(key)
        return table

    def put(self, key: tuple[Gate, int], table: np.ndarray) -> None:
        if table.nbytes > self.budget:
            return
        self.tables[key] = table
        self.used += table.nbytes
        while self.used > self.budget:
            _, dropped = self.tables.popitem(last=False)
            self.used -= dropped.nbytes

    def clear(self) -> None:
        self.tables.clear()
        self.used = 0


_CACHE = _TableCache(CACHE_BYTES)


def tabulate(gate: Gate, M: int) -> np.ndarray:
    """The gate's table: an int64 array of shape (M,) * arity (0-d for a constant), read-only."""
    cached = _CACHE.get((gate, M))
    if cached is not None:
        return cached
    check_tabulable(gate, M)
    table = np.empty((M,) * gate.arity, dtype=np.int64)
    for rows in _chunks(gate.arity, M):
        target = table[rows] if gate.arity else table
        try:
            part = _call(gate, M, _grid(gate.arity, M, rows), target.shape)
            ok = bool(np.all((part >= 0) & (part < M)))
        except (ZeroDivisionError, FloatingPointError, ArithmeticError):
            ok = False
        if not ok:
            failure = _first_failure(gate, M, rows)
            if failure is None:  # the array and the pointwise evaluation disagree: never a silent table
                raise NramError(f"gate '{gate.name}' could not be tabulated at M = {M}", gate.span)
            raise TotalityError(_describe(gate, *failure, M), gate.span)
        target[...] = part
    table.flags.writeable = False
    _CACHE.put((gate, M), table)
    return table


def evaluate_point(gate: Gate, M: int, *args: int) -> int:
    """One application of the gate at M, range-checked (the reference machine's O(1) step)."""
    try:
        with np.errstate(all="raise"):
            value = int(gate.evaluate(M, *args))  # type: ignore[misc]
    except (ZeroDivisionError, FloatingPointError, ArithmeticError) as exc:
        raise TotalityError(_describe(gate, args, f"raises {type(exc).__name__}: {exc}", M), gate.span)
    if not 0 <= value < M:
        raise TotalityError(_describe(gate, args, f"= {value}, outside [0, {M})", M), gate.span)
    return value
