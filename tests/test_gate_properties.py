"""Properties (a)-(e) of nramdsl.kernels.properties on the paper's gates, random gates and deliberately wrong kernels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nramdsl.errors import NramError, Span
from nramdsl.kernels.properties import (
    GateCheckFailure,
    all_one_hot_inputs,
    check_against,
    check_batched,
    check_kernel,
    check_linearity,
    check_one_hots,
    check_simplex,
    format_distribution,
    run_gate_checks,
)
from nramdsl.lang.spec import Gate
from nramdsl.kernels.lift import GateKernel, make_kernel
from nramdsl.testing import batched_distributions, paper_gates

PAPER = paper_gates()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DTYPES = [torch.float32, torch.float64]


# ----------------------------------------------------------------------------------- the paper's gates
@pytest.mark.parametrize("M", [8, 16])
def test_paper_gates_pass_every_check(M: int) -> None:
    assert run_gate_checks(list(PAPER.values()), M, max_examples=20) == []


def test_paper_gates_pass_with_fft_kernels() -> None:
    assert run_gate_checks([PAPER["add"], PAPER["sub"]], 8, max_examples=20, fft="always") == []


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(PAPER))
def test_exhaustive_one_hot_agreement(name: str, dtype: torch.dtype) -> None:
    check_one_hots(make_kernel(PAPER[name], 7), dtype)
    check_one_hots(make_kernel(PAPER[name], 7, fft="always"), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_properties_on_drawn_distributions(dtype: torch.dtype) -> None:
    M = 6
    kernels = [(make_kernel(g, M, fft=f), make_kernel(g, M, generic=True)) for g in PAPER.values() if g.arity for f in ("never", "always")]  # type: ignore[arg-type]

    @settings(max_examples=25, deadline=None)
    @given(
        a=batched_distributions(M, 3, dtype), b=batched_distributions(M, 3, dtype),
        alt=batched_distributions(M, 3, dtype), lam=st.floats(0, 1), arg=st.integers(0, 1),
    )  # fmt: skip
    def run(a: torch.Tensor, b: torch.Tensor, alt: torch.Tensor, lam: float, arg: int) -> None:
        for kernel, reference in kernels:
            dists = (a, b)[: kernel.arity]
            check_simplex(kernel, *dists)
            check_linearity(kernel, dists, alt, lam, min(arg, kernel.arity - 1))
            check_against(kernel, reference, *dists)
            check_batched(kernel, *dists)

    run()


# ----------------------------------------------------------------------------------- random gates
def expressions() -> st.SearchStrategy[str]:
    """Small integer expressions over a, b and constants (numpy-vectorised), reduced mod M by the gate."""
    leaves = st.sampled_from(["a", "b", "0", "1", "2", "3"])

    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        pairs = st.tuples(children, children)
        return st.one_of(
            st.tuples(st.sampled_from(["+", "-", "*"]), pairs).map(lambda t: f"({t[1][0]} {t[0]} {t[1][1]})"),
            st.tuples(st.sampled_from(["np.minimum", "np.maximum"]), pairs).map(lambda t: f"{t[0]}({t[1][0]}, {t[1][1]})"),
            st.tuples(st.sampled_from(["<", "<=", "==", "!=", ">", ">="]), pairs).map(lambda t: f"(1 * ({t[1][0]} {t[0]} {t[1][1]}))"),
        )

    return st.recursive(leaves, extend, max_leaves=5)


def expression_gate(expr: str) -> Gate:
    return Gate(f"g[{expr}]", ("a", "b"), None, eval(f"lambda M, a, b: ({expr}) % M", {"np": np}))  # noqa: S307


def table_gate(table: np.ndarray) -> Gate:
    return Gate("table", ("a", "b"), None, lambda M, a, b: table[a, b])


def disguised_tables(M: int) -> st.SearchStrategy[np.ndarray]:
    """Tables of the fast classes with a random offset and output values, e.g. (b + 3 + a) mod M."""
    a, b = np.arange(M)[:, None], np.arange(M)[None, :]
    k = st.integers(0, M - 1)
    pair = st.tuples(k, k)
    return st.one_of(
        k.map(lambda k: (b + k + a) % M),
        k.map(lambda k: (a - b + k) % M),
        k.map(lambda k: (b - a + k) % M),
        k.map(lambda k: np.broadcast_to((b + k) % M, (M, M))),
        st.tuples(st.sampled_from([np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal]), pair).map(
            lambda t: np.where(t[0](a, b), t[1][1], t[1][0])
        ),
        st.just(np.maximum(b, a)),
        st.just(np.minimum(b, a)),
    )


def random_tables(M: int) -> st.SearchStrategy[np.ndarray]:
    flat = st.lists(st.integers(0, M - 1), min_size=M * M, max_size=M * M)
    return st.one_of(flat.map(lambda v: np.array(v, dtype=np.int64).reshape(M, M)), disguised_tables(M))


def _check_drawn(gate: Gate, M: int, a: torch.Tensor, b: torch.Tensor, alt: torch.Tensor, lam: float, fft: str) -> None:
    kernel, reference = make_kernel(gate, M, fft=fft), make_kernel(gate, M, generic=True)  # type: ignore[arg-type]
    check_one_hots(kernel)
    check_simplex(kernel, a, b)
    check_linearity(kernel, (a, b), alt, lam, 0)
    check_linearity(kernel, (a, b), alt, lam, 1)
    check_against(kernel, reference, a, b)
    check_batched(kernel, a, b)


M_RANDOM = 5


@settings(max_examples=60, deadline=None)
@given(
    expr=expressions(), a=batched_distributions(M_RANDOM, 2), b=batched_distributions(M_RANDOM, 2),
    alt=batched_distributions(M_RANDOM, 2), lam=st.floats(0, 1), fft=st.sampled_from(["never", "always"]),
)  # fmt: skip
def test_random_expression_gates(expr: str, a: torch.Tensor, b: torch.Tensor, alt: torch.Tensor, lam: float, fft: str) -> None:
    _check_drawn(expression_gate(expr), M_RANDOM, a, b, alt, lam, fft)


@settings(max_examples=60, deadline=None)
@given(
    table=random_tables(M_RANDOM), a=batched_distributions(M_RANDOM, 2), b=batched_distributions(M_RANDOM, 2),
    alt=batched_distributions(M_RANDOM, 2), lam=st.floats(0, 1), fft=st.sampled_from(["never", "always"]),
)  # fmt: skip
def test_random_table_gates(table: np.ndarray, a: torch.Tensor, b: torch.Tensor, alt: torch.Tensor, lam: float, fft: str) -> None:
    _check_drawn(table_gate(table), M_RANDOM, a, b, alt, lam, fft)


@settings(max_examples=30, deadline=None)
@given(table=disguised_tables(7))
def test_disguised_tables_get_a_fast_kernel(table: np.ndarray) -> None:
    assert make_kernel(table_gate(np.array(table)), 7).choice.kind not in ("generic", "unary")


# ----------------------------------------------------------------------------------- wrong kernels are caught
SPAN = Span("spec.nram", 4, 3, 4, 30)
VIA_SPAN = Span("spec.nram", 4, 32, 4, 50)


@pytest.fixture
def wrong_kernels(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "nram_wrong_kernels.py").write_text(
        "import torch\n"
        "def add(a, b):  # out[c] = sum_x a[x] b[(c - x) mod M], a gathered circulant\n"
        "    M = a.shape[-1]\n"
        "    index = (torch.arange(M)[:, None] - torch.arange(M)[None, :]) % M\n"
        "    return (b[..., index] * a[..., None, :]).sum(-1)\n"
        "def add_off_by_one(a, b):\n"
        "    return torch.roll(add(a, b), 1, dims=-1)\n"
        "def add_nonlinear(a, b):\n"
        "    # right on every one-hot pair, wrong on mixtures: caught by linearity, not by (b)\n"
        "    out = add(a, b) ** 2\n"
        "    return out / out.sum(-1, keepdim=True)\n"
        "def add_raises(a, b):\n"
        "    raise RuntimeError('boom')\n"
    )
    yield str(tmp_path)
    sys.modules.pop("nram_wrong_kernels", None)


def add_via(function: str, folder: str) -> Gate:
    return Gate("add", ("a", "b"), SPAN, lambda M, a, b: (a + b) % M, via=f"nram_wrong_kernels:{function}", via_span=VIA_SPAN, source_dir=folder)


def test_a_correct_via_kernel_passes(wrong_kernels: str) -> None:
    assert run_gate_checks([add_via("add", wrong_kernels)], 8) == []


def test_an_off_by_one_via_kernel_is_caught_with_a_counterexample(wrong_kernels: str) -> None:
    (error,) = run_gate_checks([add_via("add_off_by_one", wrong_kernels)], 8)
    assert error.span == SPAN
    assert "(b) one-hot agreement" in error.message
    assert "inputs a = one-hot(0), b = one-hot(0); expected one-hot(0), got one-hot(1)" in error.message


def test_a_nonlinear_via_kernel_is_caught_by_linearity_or_the_generic_lift(wrong_kernels: str) -> None:
    (error,) = run_gate_checks([add_via("add_nonlinear", wrong_kernels)], 8)
    assert "(c) linearity" in error.message or "(d)" in error.message
    assert "expected [" in error.message and "got [" in error.message  # short vectors, shrunk


def test_a_raising_via_kernel_is_reported_at_the_via_clause(wrong_kernels: str) -> None:
    (error,) = run_gate_checks([add_via("add_raises", wrong_kernels)], 8)
    assert error.span == VIA_SPAN and "RuntimeError: boom" in error.message
    # and where in the kernel: the line of the `raise`, in the kernel's own file
    assert f"(at {wrong_kernels}/nram_wrong_kernels.py:13, in add_raises)" in error.message


def test_a_missing_via_module_is_an_error_not_a_crash() -> None:
    gate = Gate("add", ("a", "b"), SPAN, lambda M, a, b: (a + b) % M, via="no_such_kernels_xyz:add", via_span=VIA_SPAN)
    (error,) = run_gate_checks([gate], 8)
    assert error.span == VIA_SPAN and "no module named" in error.message


def test_the_simplex_alone_does_not_catch_a_wrong_table() -> None:
    """A kernel for the wrong table still outputs distributions; one-hot agreement is what catches it."""
    gate = PAPER["add"]
    wrong = make_kernel(Gate("add", ("a", "b"), None, lambda M, a, b: (a + b + 1) % M), 6)
    impostor = GateKernel(gate, 6, wrong.choice, wrong)  # the right gate, the wrong kernel
    check_simplex(impostor, *all_one_hot_inputs(2, 6, torch.float64))
    with pytest.raises(GateCheckFailure, match="one-hot agreement"):
        check_one_hots(impostor)
    with pytest.raises(GateCheckFailure, match=r"\(b\)"):
        check_kernel(impostor, make_kernel(gate, 6, generic=True), max_examples=5)


def test_totality_errors_and_builtins() -> None:
    partial = Gate("half", ("a", "b"), SPAN, lambda M, a, b: a + b)
    read = Gate("read", ("p",), None, None, builtin="read")
    errors = run_gate_checks([partial, read, PAPER["inc"]], 8)
    assert len(errors) == 1 and "not total" in errors[0].message and errors[0].span == SPAN


def test_run_gate_checks_is_reproducible(wrong_kernels: str) -> None:
    from nramdsl.kernels import properties as gatecheck

    first = run_gate_checks([add_via("add_nonlinear", wrong_kernels)], 4)[0].message
    gatecheck._check_gate.cache_clear()  # run hypothesis again rather than reading the cache
    assert run_gate_checks([add_via("add_nonlinear", wrong_kernels)], 4)[0].message == first


def test_format_distribution() -> None:
    assert format_distribution(torch.eye(4)[2]) == "one-hot(2)"
    assert format_distribution(torch.tensor([0.5, 0.0, 0.5, 0.0])) == "[0.5 0 0.5 0]"
    long = torch.zeros(32)
    long[[3, 9]] = 0.5
    assert format_distribution(long) == "{3: 0.5, 9: 0.5}"


# ----------------------------------------------------------------------------------- every example spec
def example_gates() -> list[tuple[str, Gate, int]]:
    from nramdsl.lang.frontend import load_file
    from nramdsl.lang.check import resolve_machine

    found: dict[Gate, tuple[str, Gate, int]] = {}
    for path in sorted(EXAMPLES.glob("*.nram")):
        try:
            program = load_file(path)
            specs = [resolve_machine(program, m.name.value) for m, _ in program.machines()]
        except NramError:
            continue  # a spec the front end rejects is the front end's tests' business
        for spec in specs:
            for gate in spec.gates.values():
                if gate.builtin is None:
                    found.setdefault(gate, (path.name, gate, spec.memory))
    return list(found.values())


def test_every_gate_of_every_example_spec() -> None:
    pytest.importorskip("nramdsl.lang.frontend")
    pytest.importorskip("nramdsl.lang.check")
    cases = example_gates()
    assert cases, "no example specs found"
    for file, gate, M in cases:
        errors = run_gate_checks([gate], min(M, 16), max_examples=20)
        assert not errors, f"{file}: " + "\n".join(e.format() for e in errors)
