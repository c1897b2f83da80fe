"""Kernel classification and the fast kernels against the generic lift (paper Eq. 2)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nramdsl.errors import NramError, Span
from nramdsl.lang.spec import Gate
from nramdsl.kernels.select import KernelChoice, classify
from nramdsl.kernels.lift import GateKernel, make_kernel
from nramdsl.kernels.select import FFT_MIN_M
from nramdsl.lang.tabulate import tabulate
from nramdsl.testing import distributions, paper_gates
from nramdsl.kernels.via import load_via

PAPER = paper_gates()


def binary(name: str, fn) -> Gate:  # type: ignore[no-untyped-def]
    return Gate(name, ("a", "b"), None, fn)


def random_dists(batch: int, M: int, dtype: torch.dtype = torch.float64, seed: int = 0, sparse: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, M, generator=g, dtype=torch.float64)
    if sparse:  # exact zeros, so that exact outputs have zeros too
        x = x * (torch.rand(batch, M, generator=g, dtype=torch.float64) < 0.3)
        x[:, 0] += 1e-3
    return (x / x.sum(-1, keepdim=True)).to(dtype)


# ----------------------------------------------------------------------------------- classification
def expected_paper_choice(name: str, M: int) -> KernelChoice:
    return {
        "zero": KernelChoice("constant", 0, k=0),
        "one": KernelChoice("constant", 0, k=1),
        "two": KernelChoice("constant", 0, k=2),
        "inc": KernelChoice("shift", 1, arg=0, k=1),
        "dec": KernelChoice("shift", 1, arg=0, k=M - 1),
        "add": KernelChoice("add", 2, k=0),
        "sub": KernelChoice("sub", 2, k=0),
        "lt": KernelChoice("lt", 2, values=(0, 1)),
        "le": KernelChoice("le", 2, values=(0, 1)),
        "eq": KernelChoice("eq", 2, values=(0, 1)),
        "min": KernelChoice("min", 2),
        "max": KernelChoice("max", 2),
    }[name]


@pytest.mark.parametrize("M", [3, 8, 16, 40])
@pytest.mark.parametrize("name", list(PAPER))
def test_paper_gates_get_their_kernel(name: str, M: int) -> None:
    assert classify(tabulate(PAPER[name], M), M) == expected_paper_choice(name, M)


# (integer definition in disguise, expected choice) at M = 8; the name is never consulted
DISGUISED = [
    (lambda M, a, b: (b + 3 + a) % M, KernelChoice("add", 2, k=3)),
    (lambda M, x, y: (y + x) % M, KernelChoice("add", 2, k=0)),
    (lambda M, a, b: (a + (M - b) + 2) % M, KernelChoice("sub", 2, k=2)),
    (lambda M, a, b: (b - a - 1) % M, KernelChoice("rsub", 2, k=7)),
    (lambda M, a, b: 1 - 1 * (a >= b), KernelChoice("lt", 2, values=(0, 1))),
    (lambda M, a, b: 1 * (b < a), KernelChoice("gt", 2, values=(0, 1))),
    (lambda M, a, b: 1 - 1 * (a < b), KernelChoice("ge", 2, values=(0, 1))),
    (lambda M, a, b: 1 * (b >= a), KernelChoice("le", 2, values=(0, 1))),
    (lambda M, a, b: np.where(a == b, 2, 5), KernelChoice("ne", 2, values=(2, 5))),
    (lambda M, a, b: 7 - 6 * (a != b), KernelChoice("eq", 2, values=(1, 7))),
    (lambda M, a, b: np.maximum(b, a), KernelChoice("max", 2)),
    (lambda M, a, b: M - 1 - np.maximum(M - 1 - a, M - 1 - b), KernelChoice("min", 2)),
    (lambda M, a, b: (a + 5 + 0 * b) % M, KernelChoice("shift", 2, arg=0, k=5)),
    (lambda M, a, b: (b - 1) % M, KernelChoice("shift", 2, arg=1, k=7)),
    (lambda M, a, b: b + 0 * a, KernelChoice("shift", 2, arg=1, k=0)),
    (lambda M, a, b: 3 + 0 * (a * b), KernelChoice("constant", 2, k=3)),
    (lambda M, a, b: (a * a) % M, KernelChoice("unary", 2, arg=0, mapping=(0, 1, 4, 1, 0, 1, 4, 1))),
    (lambda M, a, b: M - 1 - b, KernelChoice("unary", 2, arg=1, mapping=(7, 6, 5, 4, 3, 2, 1, 0))),
    (lambda M, a, b: (a * b) % M, KernelChoice("generic", 2)),
    (lambda M, a, b: np.minimum(a, b) * (a != b), KernelChoice("generic", 2)),
]


@pytest.mark.parametrize("fn,expected", DISGUISED)
def test_classification_reads_the_table_not_the_name(fn, expected: KernelChoice) -> None:  # type: ignore[no-untyped-def]
    assert classify(tabulate(binary("anything", fn), 8), 8) == expected


def test_three_argument_gates() -> None:
    g = Gate("pick", ("a", "b", "c"), None, lambda M, a, b, c: (c + 2 + 0 * a * b) % M)
    assert classify(tabulate(g, 5), 5) == KernelChoice("shift", 3, arg=2, k=2)
    h = Gate("sum3", ("a", "b", "c"), None, lambda M, a, b, c: (a + b + c) % M)
    assert classify(tabulate(h, 5), 5).kind == "generic"
    x = [random_dists(4, 5, seed=s) for s in range(3)]
    for gate in (g, h):
        torch.testing.assert_close(make_kernel(gate, 5)(*x), make_kernel(gate, 5, generic=True)(*x), rtol=0, atol=1e-12)


class_tables = st.sampled_from([c for _, c in DISGUISED if c.kind not in ("generic", "unary")])


@settings(max_examples=40, deadline=None)
@given(choice=class_tables, M=st.integers(3, 12), perm=st.booleans())
def test_classify_is_sound_on_class_tables(choice: KernelChoice, M: int, perm: bool) -> None:
    """Build a class's table directly at M, optionally scramble it; the classified kernel's table matches."""
    a, b = np.arange(M)[:, None], np.arange(M)[None, :]
    tables = {
        "add": (a + b + choice.k) % M, "sub": (a - b + choice.k) % M, "rsub": (b - a + choice.k) % M,
        "min": np.minimum(a, b), "max": np.maximum(a, b), "constant": np.full((M, M), choice.k % M),
        "shift": np.broadcast_to((a + choice.k) % M if choice.arg == 0 else (b + choice.k) % M, (M, M)),
    }  # fmt: skip
    if choice.values is not None:
        pred = {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b, "eq": a == b, "ne": a != b}[choice.kind]
        tables[choice.kind] = np.where(pred, choice.values[1] % M, choice.values[0] % M)
    table = np.array(tables[choice.kind], dtype=np.int64)
    if perm:  # an extra relabelling of one entry turns any structured table into a generic one
        table[0, 0] = (table[0, 0] + 1) % M
    gate = binary("t", lambda M_, x, y: table[x, y])
    found = classify(table, M)
    if not perm and (choice.values is None or choice.values[0] % M < choice.values[1] % M):
        assert found.kind == choice.kind or M <= 3  # tiny M: classes coincide, any matching one is sound
    eye = torch.eye(M, dtype=torch.float64)
    combos = torch.cartesian_prod(torch.arange(M), torch.arange(M))
    out = make_kernel(gate, M, fft="never")(eye[combos[:, 0]], eye[combos[:, 1]])
    assert torch.equal(out.argmax(-1), torch.from_numpy(table.reshape(-1)))


# ----------------------------------------------------------------------------------- fast == generic
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("M", [8, 40])
@pytest.mark.parametrize("fft", ["always", "never"])
@pytest.mark.parametrize("name", [n for n in PAPER if PAPER[n].arity])
def test_fast_kernels_match_the_generic_lift(name: str, M: int, fft: str, dtype: torch.dtype) -> None:
    gate = PAPER[name]
    fast, ref = make_kernel(gate, M, fft=fft), make_kernel(gate, M, generic=True)  # type: ignore[arg-type]
    args = [random_dists(16, M, dtype, seed=s) for s in range(gate.arity)]
    out = fast(*args)
    assert out.dtype == dtype and out.shape == (16, M)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    torch.testing.assert_close(out, ref(*args), rtol=0, atol=tol)


@pytest.mark.parametrize("name", ["lt", "le", "eq", "min", "max"])
def test_cumulative_sum_kernels_are_exactly_non_negative(name: str) -> None:
    a, b = random_dists(256, 64, torch.float32, seed=5, sparse=True), random_dists(256, 64, torch.float32, seed=6, sparse=True)
    for args in ((a, b), (b, a)):
        assert (make_kernel(PAPER[name], 64)(*args) >= 0).all()


def test_leading_dimensions_broadcast() -> None:
    a, b = random_dists(6, 8).reshape(2, 3, 8), random_dists(1, 8, seed=1)
    for name in ("add", "lt", "min", "inc"):
        k = make_kernel(PAPER[name], 8)
        args = (a, b)[: k.arity]
        torch.testing.assert_close(k(*args), make_kernel(PAPER[name], 8, generic=True)(*args), rtol=0, atol=1e-12)


def test_fft_threshold_and_modes() -> None:
    add = PAPER["add"]
    assert make_kernel(add, FFT_MIN_M - 1).choice.fft is False
    assert make_kernel(add, FFT_MIN_M).choice.fft is True
    assert make_kernel(add, 8, fft="always").choice.fft is True
    assert make_kernel(add, 256, fft="never").choice.fft is False
    assert make_kernel(add, 64).choice.describe() == "modular add (a + b) mod M (circular convolution, FFT)"
    with pytest.raises(ValueError, match="fft must be"):
        make_kernel(add, 8, fft="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fft_output_is_non_negative_and_its_nll_matches_the_exact_lift(dtype: torch.dtype) -> None:
    M, eps = 64, 1e-6
    a, b = random_dists(64, M, dtype, seed=1, sparse=True), random_dists(64, M, dtype, seed=2, sparse=True)
    target = torch.randint(0, M, (64,), generator=torch.Generator().manual_seed(3))
    for name in ("add", "sub"):
        fft, exact = make_kernel(PAPER[name], M, fft="always"), make_kernel(PAPER[name], M, generic=True)
        out, ref = fft(a, b), exact(a, b)
        assert (out >= 0).all()
        assert (ref == 0).any(), "the test needs exact zeros for the clamp to matter"
        nll = -torch.log(out.gather(-1, target[:, None]).clamp(min=eps)).mean()
        nll_ref = -torch.log(ref.gather(-1, target[:, None]).clamp(min=eps)).mean()
        assert abs(nll.item() - nll_ref.item()) <= 1e-4 * nll_ref.item()


# ----------------------------------------------------------------------------------- gradients
GRAD_CASES = [
    ("shift", PAPER["inc"], "auto"),
    ("unary", Gate("sq", ("a",), None, lambda M, a: (a * a) % M), "auto"),
    ("unary", Gate("rev", ("a",), None, lambda M, a: M - 1 - a), "auto"),
    ("add", PAPER["add"], "never"),
    ("add", PAPER["add"], "always"),
    ("sub", PAPER["sub"], "always"),
    ("rsub", binary("rsub", lambda M, a, b: (b - a) % M), "never"),
    ("lt", PAPER["lt"], "auto"),
    ("le", PAPER["le"], "auto"),
    ("ne", binary("ne", lambda M, a, b: 1 * (a != b)), "auto"),
    ("eq", PAPER["eq"], "auto"),
    ("min", PAPER["min"], "auto"),
    ("max", PAPER["max"], "auto"),
    ("generic", binary("mul", lambda M, a, b: (a * b) % M), "auto"),
]


@pytest.mark.parametrize("kind,gate,fft", GRAD_CASES)
def test_gradients_flow(kind: str, gate: Gate, fft: str) -> None:
    kernel = make_kernel(gate, 5, fft=fft)  # type: ignore[arg-type]
    assert kernel.choice.kind == kind
    args = tuple(random_dists(2, 5, seed=s).requires_grad_() for s in range(gate.arity))
    assert torch.autograd.gradcheck(kernel, args)


# ----------------------------------------------------------------------------------- the kernel object
def test_constants() -> None:
    two = make_kernel(PAPER["two"], 8)
    out = two(batch=3, dtype=torch.float64)
    assert out.shape == (3, 8) and out.dtype == torch.float64 and (out.argmax(-1) == 2).all()
    out[0, 0] = 5  # the kernel hands out a fresh tensor, never a shared cached one
    assert two(batch=1)[0, 0] == 0
    zero2 = make_kernel(binary("z", lambda M, a, b: 0 * a), 8)
    like = random_dists(4, 8, torch.float32)
    assert torch.equal(zero2(like, like), torch.eye(8)[[0, 0, 0, 0]])


def test_make_kernel_is_cached_per_gate_m_and_options() -> None:
    add = PAPER["add"]
    assert make_kernel(add, 8) is make_kernel(add, 8)
    assert make_kernel(add, 8) is not make_kernel(add, 9)
    assert make_kernel(add, 8, generic=True).choice.kind == "generic"
    assert isinstance(make_kernel(add, 8), GateKernel) and make_kernel(add, 8).arity == 2


def test_builtins_and_wrong_calls_are_refused() -> None:
    read = Gate("read", ("p",), None, None, builtin="read")
    with pytest.raises(ValueError, match="built-in memory gate"):
        make_kernel(read, 8)
    add = make_kernel(PAPER["add"], 8)
    with pytest.raises(TypeError, match="takes 2"):
        add(random_dists(2, 8))
    with pytest.raises(ValueError, match="M = 8"):
        add(random_dists(2, 9), random_dists(2, 9))


# ----------------------------------------------------------------------------------- via kernels
VIA_SPAN = Span("spec.nram", 3, 20, 3, 35)


@pytest.fixture
def via_dir(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "nram_test_kernels.py").write_text(
        "import torch\n"
        "def add(a, b):\n"
        "    M = a.shape[-1]\n"
        "    return torch.fft.irfft(torch.fft.rfft(a) * torch.fft.rfft(b), n=M).clamp(min=0)\n"
        "NOT_CALLABLE = 3\n"
    )
    yield str(tmp_path)
    sys.modules.pop("nram_test_kernels", None)


def via_gate(via: str, source_dir: str) -> Gate:
    return Gate("add", ("a", "b"), None, lambda M, a, b: (a + b) % M, via=via, via_span=VIA_SPAN, source_dir=source_dir)


def test_via_kernel_is_loaded_from_the_spec_folder(via_dir: str) -> None:
    path_before = list(sys.path)
    gate = via_gate("nram_test_kernels:add", via_dir)
    kernel = make_kernel(gate, 8)
    assert sys.path == path_before
    assert kernel.choice.kind == "via" and "nram_test_kernels:add" in kernel.choice.describe()
    assert make_kernel(gate, 8, generic=True).choice.kind == "generic"
    a, b = random_dists(4, 8), random_dists(4, 8, seed=1)
    torch.testing.assert_close(kernel(a, b), make_kernel(gate, 8, generic=True)(a, b), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "via,message",
    [
        ("no_such_module_xyz:add", "no module named 'no_such_module_xyz'"),
        ("nram_test_kernels:mul", "has no attribute 'mul'"),
        ("nram_test_kernels:NOT_CALLABLE", "is not callable"),
        ("nram_test_kernels", "must be \"module:function\""),
    ],
)
def test_via_errors_point_at_the_via_clause(via_dir: str, via: str, message: str) -> None:
    path_before = list(sys.path)
    with pytest.raises(NramError, match=message) as info:
        load_via(via_gate(via, via_dir))
    assert info.value.span == VIA_SPAN
    assert sys.path == path_before


@settings(max_examples=30, deadline=None)
@given(a=distributions(6, torch.float32), b=distributions(6, torch.float32))
def test_float32_kernels_on_drawn_distributions(a: torch.Tensor, b: torch.Tensor) -> None:
    for gate in PAPER.values():
        if gate.arity:
            args = (a[None], b[None])[: gate.arity]
            out = make_kernel(gate, 6, fft="always")(*args)
            torch.testing.assert_close(out, make_kernel(gate, 6, generic=True)(*args), rtol=0, atol=1e-6)
