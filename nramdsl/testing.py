"""Test helpers for users' own pytest suites: distribution strategies and `check_gate`.

    from nramdsl.testing import check_gate, distributions

    def test_my_gates():
        check_gate("specs/mine.nram", "mulmod", M=8)   # raises AssertionError with a counterexample

    @given(distributions(8), distributions(8))
    def test_my_model_piece(a, b): ...

The strategies (`nramdsl.kernels.distributions`) draw probability vectors as torch tensors; failures
shrink towards one-hot vectors. `check_gate` runs the properties of `nramdsl.kernels.properties`.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import numpy as np

from nramdsl.kernels.distributions import batched_distributions, distributions, one_hots
from nramdsl.kernels.properties import run_gate_checks
from nramdsl.lang.frontend import load_file, resolve_machine
from nramdsl.lang.spec import Gate

__all__ = ["batched_distributions", "check_gate", "distributions", "one_hots", "paper_gates"]


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
    """The gate `name` as used by a machine of a .nram file."""
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
    properties of `nramdsl.kernels.properties` (simplex, exhaustive one-hot agreement, linearity in each argument,
    fast kernel == generic lift, batched == per example) at memory size M. The message names the property
    and a shrunk counterexample (inputs, expected, got). It runs Hypothesis itself: call it from a plain
    test, or suppress `HealthCheck.nested_given` on an enclosing `@given` test.
    """
    if isinstance(gate_or_spec, Gate):
        gate = gate_or_spec
    else:
        if name is None:
            raise TypeError("check_gate(path, name): name the gate to check in the .nram file")
        gate = _load_gate(gate_or_spec, name)
    errors = run_gate_checks([gate], M, max_examples=max_examples)
    if errors:
        raise AssertionError("\n".join(e.format() for e in errors))
