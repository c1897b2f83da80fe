"""Test helpers for users' own pytest suites: distribution strategies and `check_gate`.

    from nramdsl.testing import check_gate, distributions

    def test_my_gates():
        check_gate("specs/mine.nram", "mulmod", M=8)   # raises AssertionError with a counterexample

    @given(distributions(8), distributions(8))
    def test_my_model_piece(a, b): ...

The strategies draw probability vectors as torch tensors. The main one draws non-negative floats, adds 1.0
at a drawn index and normalises, so a failing example shrinks towards a one-hot vector (the easiest
counterexample to read); exact one-hots, two-point mixtures and the uniform distribution are mixed in.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from hypothesis import strategies as st

from nramdsl.ir import Gate

__all__ = ["batched_distributions", "check_gate", "distributions", "one_hots", "paper_gates"]


def _one_hot(index: int, M: int, dtype: torch.dtype) -> torch.Tensor:
    out = torch.zeros(M, dtype=dtype)
    out[index] = 1
    return out


def one_hots(M: int, dtype: torch.dtype = torch.float64) -> st.SearchStrategy[torch.Tensor]:
    """Exact one-hot vectors of size M (integer inputs)."""
    return st.integers(0, M - 1).map(lambda i: _one_hot(i, M, dtype))


@st.composite
def _distribution(draw: st.DrawFn, M: int, dtype: torch.dtype) -> torch.Tensor:
    # Every kind draws the same weights and index, after one integer that picks the kind (0-2: bumped
    # weights, 3: one-hot, 4: two-point mixture, 5: uniform). The shrinker prefers short, then small,
    # choice sequences, so it ends at kind 0 with zero weights, i.e. one-hot(index), whenever it can.
    kind = draw(st.integers(0, 5))
    weights = np.array(draw(st.lists(st.floats(0.0, 1.0, allow_subnormal=False), min_size=M, max_size=M)))
    index = draw(st.integers(0, M - 1))
    if kind <= 2:
        weights[index] += 1.0  # the sum is >= 1: no division by ~0
        return torch.tensor(weights / weights.sum(), dtype=dtype)
    if kind == 3:
        return _one_hot(index, M, dtype)
    if kind == 4:
        other, lam = draw(st.integers(0, M - 1)), draw(st.floats(0.0, 1.0))
        mixture = np.zeros(M)
        mixture[index] += lam
        mixture[other] += 1.0 - lam
        return torch.tensor(mixture, dtype=dtype)
    return torch.full((M,), 1.0 / M, dtype=dtype)


def distributions(M: int, dtype: torch.dtype = torch.float64) -> st.SearchStrategy[torch.Tensor]:
    """Probability vectors of size M (non-negative, summing to 1 up to rounding), as `dtype` tensors.

    Mostly normalised random weights with 1.0 added at a drawn index; also exact one-hots, two-point
    mixtures and the uniform distribution. Failures shrink towards one-hot vectors.
    """
    return _distribution(M, dtype)


def batched_distributions(M: int, batch: int, dtype: torch.dtype = torch.float64) -> st.SearchStrategy[torch.Tensor]:
    """A `[batch, M]` tensor whose rows are drawn by `distributions`."""
    return st.lists(distributions(M, dtype), min_size=batch, max_size=batch).map(torch.stack)


def paper_gates() -> dict[str, Gate]:
    """The paper's 12 non-memory modules (§4.3) as Gates, built directly (no front end): reference gates
    for tests and comparisons. Only inc/add/sub/dec wrap mod M; min/max do not; comparisons give 0/1."""
    return dict(_paper_gates())


@functools.cache
def _paper_gates() -> dict[str, Gate]:
    # built once: the same Gate objects every call, so the tabulate/make_kernel caches hit
    unary, binary = ("a",), ("a", "b")

    def g(name: str, params: tuple[str, ...], fn: Callable[..., Any]) -> Gate:
        return Gate(name, params, None, fn)

    return {
        "zero": g("zero", (), lambda M: 0),
        "one": g("one", (), lambda M: 1),
        "two": g("two", (), lambda M: 2),
        "inc": g("inc", unary, lambda M, a: (a + 1) % M),
        "add": g("add", binary, lambda M, a, b: (a + b) % M),
        "sub": g("sub", binary, lambda M, a, b: (a - b) % M),
        "dec": g("dec", unary, lambda M, a: (a - 1) % M),
        "lt": g("lt", binary, lambda M, a, b: 1 * (a < b)),
        "le": g("le", binary, lambda M, a, b: 1 * (a <= b)),
        "eq": g("eq", binary, lambda M, a, b: 1 * (a == b)),
        "min": g("min", binary, lambda M, a, b: np.minimum(a, b)),
        "max": g("max", binary, lambda M, a, b: np.maximum(a, b)),
    }


def _load_gate(path: str | os.PathLike[str], name: str) -> Gate:
    """The gate `name` as used by a machine of a .nram file (front end imported only when needed)."""
    from nramdsl.loader import load_file
    from nramdsl.semantics import resolve_machine

    program = load_file(path)
    gates: dict[str, Gate] = {}
    for machine, _ in program.machines():
        gates.update(resolve_machine(program, machine.name.value).gates)
    if name not in gates or gates[name].builtin is not None:
        known = ", ".join(sorted(n for n, g in gates.items() if g.builtin is None)) or "none"
        raise KeyError(f"no machine in {os.fspath(path)} uses a gate {name!r} (gates: {known})")
    return gates[name]


def check_gate(gate_or_spec: Gate | str | os.PathLike[str], name: str | None = None, M: int = 8, *, max_examples: int = 100) -> None:
    """Check a gate's lifted kernel against its integer definition; AssertionError on failure.

    `gate_or_spec` is a `Gate`, or the path of a .nram file with `name` the gate to check. Runs the
    properties of `nramdsl.gatecheck` (simplex, exhaustive one-hot agreement, linearity in each argument,
    fast kernel == generic lift, batched == per example) at memory size M. The message names the property
    and a shrunk counterexample (inputs, expected, got). It runs Hypothesis itself: call it from a plain
    test, or suppress `HealthCheck.nested_given` on an enclosing `@given` test.
    """
    from nramdsl.gatecheck import run_gate_checks  # gatecheck imports this module's strategies

    if isinstance(gate_or_spec, Gate):
        gate = gate_or_spec
    else:
        if name is None:
            raise TypeError("check_gate(path, name): name the gate to check in the .nram file")
        gate = _load_gate(gate_or_spec, name)
    errors = run_gate_checks([gate], M, max_examples=max_examples)
    if errors:
        raise AssertionError("\n".join(e.format() for e in errors))
