"""Tabulate a gate's integer semantics over all inputs once M is bound, and prove it total.

A gate is total at M when it returns a value in [0, M) for every input in [0, M)^arity without raising.
Anything else is a `TotalityError` naming the gate, the first failing inputs (in row-major order), the
value, and the gate's source position. Nothing is ever clipped: a clipped table would leak or move
probability mass silently (TerpreT's "error bin" flaw).
"""

from __future__ import annotations

import functools

import numpy as np

from nramdsl.errors import TotalityError
from nramdsl.lang.spec import Gate


def _grid(arity: int, M: int) -> tuple[np.ndarray, ...]:
    """Open-mesh argument arrays: argument k varies along axis k."""
    return tuple(np.arange(M, dtype=np.int64).reshape((1,) * k + (M,) + (1,) * (arity - 1 - k)) for k in range(arity))


def _call(gate: Gate, M: int, args: tuple) -> np.ndarray:
    assert gate.evaluate is not None, f"built-in gate {gate.name!r} has no table"
    with np.errstate(all="raise"):
        out = gate.evaluate(M, *args)
    return np.broadcast_to(np.asarray(out, dtype=np.int64), (M,) * gate.arity)


def _first_failure(gate: Gate, M: int) -> tuple[tuple[int, ...], str]:
    """Scan inputs one by one (only on the error path) to name the first that fails and why."""
    for flat in range(M**gate.arity):
        point = tuple(int(x) for x in np.unravel_index(flat, (M,) * gate.arity)) if gate.arity else ()
        try:
            with np.errstate(all="raise"):
                value = int(gate.evaluate(M, *point))  # type: ignore[misc]
        except (ZeroDivisionError, FloatingPointError, ArithmeticError) as exc:
            return point, f"raises {type(exc).__name__}: {exc}"
        if not 0 <= value < M:
            return point, f"= {value}, outside [0, {M})"
    raise AssertionError("no failing input found")  # pragma: no cover - only called after a failure


def _describe(gate: Gate, point: tuple[int, ...], why: str, M: int) -> str:
    call = f"{gate.name}({', '.join(map(str, point))})" if gate.params else gate.name
    hint = " (did you forget 'mod M'?)" if why.startswith("=") else ""
    return f"gate '{gate.name}' is not total at M = {M}: {call} {why}{hint}"


@functools.lru_cache(maxsize=256)
def tabulate(gate: Gate, M: int) -> np.ndarray:
    """The gate's table: an int64 array of shape (M,) * arity (0-d for a constant), read-only."""
    try:
        table = _call(gate, M, _grid(gate.arity, M))
        ok = bool(np.all((table >= 0) & (table < M)))
    except (ZeroDivisionError, FloatingPointError, ArithmeticError):
        ok = False
    if not ok:
        point, why = _first_failure(gate, M)
        raise TotalityError(_describe(gate, point, why, M), gate.span)
    table = np.array(table, dtype=np.int64, copy=True)  # own, contiguous, and 0-d for constants
    table.flags.writeable = False
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
