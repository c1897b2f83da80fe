"""Properties every lifted gate must have, and `run_gate_checks` behind `nramdsl check`.

The properties, each a function that raises `GateCheckFailure` (an AssertionError) naming the failing
row's inputs, the expected and the actual output:

(a) `check_simplex`: outputs are non-negative and sum to 1 (tolerance by dtype);
(b) `check_one_hots`: exhaustive one-hot agreement with the integer table: all M^arity one-hot input
    combinations, in chunks, the output mass must sit on table[a, b] (a fixed sample of them where all
    would be over `nramdsl.limits.EXHAUSTIVE_WORK`; `sampling_note` says so);
(c) `check_linearity`: the kernel is linear in each argument over mixtures,
    f(lam A + (1 - lam) A', B) = lam f(A, B) + (1 - lam) f(A', B);
(d) `check_against`: the kernel agrees with a reference (the generic lift) on random distributions;
(e) `check_batched`: a batch gives the same rows as one example at a time.

(b) and (c) together pin the lifted gate down completely: a function that is linear in each argument is
determined by its values on the one-hot vectors, which span the simplex, and (b) fixes those to Eq. 2's.
(a) alone proves nothing: a wrong table still gives distributions. (d) and (e) are cheaper differential
checks that localise a fault. For a `via` gate the user's kernel is checked against its own integer
definition (its table and the generic lift of it).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st

from nramdsl import limits
from nramdsl.errors import NramError, Note
from nramdsl.kernels.distributions import batched_distributions
from nramdsl.kernels.lift import GateKernel, make_kernel
from nramdsl.kernels.select import FftMode
from nramdsl.lang.spec import Gate
from nramdsl.lang.tabulate import table_size, tabulate

Tensor = torch.Tensor

BATCH = 2  # rows per drawn batch: enough for (e) to compare a batch with its rows; more slows shrinking
CHUNK_ELEMENTS = 1 << 22  # kernel work per chunk of (b)'s one-hot rows (32 MiB in float64)


class GateCheckFailure(AssertionError):
    """A lifted gate violates one of the properties (a)-(e); the message shows a counterexample."""

    def __init__(self, prop: str, detail: str) -> None:
        super().__init__(f"{prop}: {detail}")
        self.prop = prop
        self.detail = detail


def tolerance(dtype: torch.dtype, M: int, *, loose: bool = False) -> float:
    """Absolute tolerance per entry. loose: FFT and user kernels, whose rounding is not just reordering."""
    base = 1e-10 if dtype == torch.float64 else 1e-5
    if loose:
        base *= 10
    return base * max(1.0, M / 16)  # rounding grows with the number of terms summed per output bin


def format_distribution(x: Tensor) -> str:
    """A short, readable vector: 'one-hot(3)', '[0.5 0 0.5 0]', or only the non-zeros when M > 16."""
    x = x.detach().to("cpu", torch.float64)
    nonzero = x.nonzero().flatten().tolist()
    if len(nonzero) == 1 and x[nonzero[0]] == 1.0:
        return f"one-hot({nonzero[0]})"
    if x.numel() <= 16:
        return "[" + " ".join(f"{v:.4g}" for v in x.tolist()) + "]"
    shown = ", ".join(f"{i}: {x[i].item():.4g}" for i in nonzero[:8])
    return "{" + shown + (", ..." if len(nonzero) > 8 else "") + "}"


def _names(kernel: GateKernel) -> tuple[str, ...]:
    return kernel.gate.params


def _row(t: Tensor, i: int) -> Tensor:
    return t[i] if t.dim() > 1 else t


def _fail(prop: str, kernel: GateKernel, inputs: Sequence[tuple[str, Tensor]], expected: str, got: Tensor, note: str = "") -> GateCheckFailure:
    shown = ", ".join(f"{n} = {format_distribution(v)}" for n, v in inputs) or "no inputs"
    extra = f" ({note})" if note else ""
    return GateCheckFailure(prop, f"inputs {shown}; expected {expected}, got {format_distribution(got)}{extra}")


def _loose(kernel: GateKernel) -> bool:
    return bool(kernel.choice.fft) or kernel.choice.kind == "via"


def check_simplex(kernel: GateKernel, *dists: Tensor) -> None:
    """(a) Every output row is non-negative and sums to 1."""
    out = kernel(*dists)
    tol = tolerance(out.dtype, kernel.M, loose=_loose(kernel))
    bad_negative = (out < -tol).any(-1)
    bad_sum = (out.sum(-1) - 1).abs() > tol * kernel.M
    bad = (bad_negative | bad_sum).reshape(-1).nonzero().flatten().tolist()
    if bad:
        i = bad[0]
        row = out.reshape(-1, kernel.M)[i]
        inputs = [(n, _row(d, i)) for n, d in zip(_names(kernel), dists)]
        raise _fail("(a) output on the simplex", kernel, inputs, "non-negative entries summing to 1", row, f"sum {row.sum().item():.10g}")


def all_one_hot_inputs(arity: int, M: int, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """One `[M**arity, M]` tensor per argument: every combination of one-hot inputs, row-major."""
    combos = torch.cartesian_prod(*[torch.arange(M)] * arity).reshape(-1, arity) if arity else torch.zeros(1, 0, dtype=torch.long)
    eye = torch.eye(M, dtype=dtype)
    return tuple(eye[combos[:, k]] for k in range(arity))


def _unravel(flat: Tensor, arity: int, M: int) -> Tensor:
    """Flat row-major indices of input combinations -> `[n, arity]` argument values (first argument slowest)."""
    combos = torch.empty(len(flat), arity, dtype=torch.long)
    rest = flat.clone()
    for k in reversed(range(arity)):
        combos[:, k] = rest % M
        rest = rest // M
    return combos


def one_hot_rows(arity: int, M: int) -> Tensor:
    """Which of the M^arity one-hot input combinations (b) checks: all of them while the work, M^arity rows
    of up to M^arity each, is within `limits.EXHAUSTIVE_WORK`; else a fixed sample (seeded, so a check
    is reproducible) of `limits.SAMPLED_ROWS`, the first and last combination among them."""
    total = table_size(arity, M)
    if total * total <= limits.EXHAUSTIVE_WORK.value:
        return torch.arange(total)
    drawn = np.random.default_rng(0).choice(total, limits.SAMPLED_ROWS - 2, replace=False)
    return torch.unique(torch.cat([torch.tensor([0, total - 1]), torch.from_numpy(drawn)]))


def sampling_note(gate: Gate, M: int) -> Note | None:
    """A note for `nramdsl check` when (b) samples rather than checks every input combination of `gate`."""
    total = table_size(gate.arity, M)
    if gate.builtin is not None or total * total <= limits.EXHAUSTIVE_WORK.value:
        return None
    limit = limits.EXHAUSTIVE_WORK
    return Note(f"gate '{gate.name}' at M = {M}: one-hot agreement checked on {len(one_hot_rows(gate.arity, M)):,} "
                f"sampled input combinations of {total:,}, not all: the exhaustive check's work {total * total:,} is "
                f"over the limit of {limit.value:,}{limit.how_to_raise()}", gate.span)


def check_one_hots(kernel: GateKernel, dtype: torch.dtype = torch.float64) -> None:
    """(b) For every integer input combination (`one_hot_rows`) the output is one-hot at the table value.
    Rows go through the kernel in chunks of bounded work, so memory stays small whatever M and arity."""
    M, arity = kernel.M, kernel.arity
    table = torch.from_numpy(tabulate(kernel.gate, M).reshape(-1).copy())
    eye = torch.eye(M, dtype=dtype)
    tol = tolerance(dtype, M, loose=_loose(kernel))
    rows = one_hot_rows(arity, M)
    step = max(1, CHUNK_ELEMENTS // max(M, table_size(arity, M)))
    for start in range(0, len(rows), step):
        flat = rows[start : start + step]
        combos = _unravel(flat, arity, M)
        inputs = tuple(eye[combos[:, k]] for k in range(arity))
        out = kernel(*inputs) if arity else kernel(batch=1, dtype=dtype)
        want = table[flat]
        bad = (((out - eye[want]).abs() > tol).any(-1) | (out.argmax(-1) != want)).nonzero().flatten().tolist()
        if bad:
            i = bad[0]
            shown = [(n, d[i]) for n, d in zip(_names(kernel), inputs)]
            raise _fail("(b) one-hot agreement with the integer table", kernel, shown, f"one-hot({int(want[i])})", out[i])


def check_linearity(kernel: GateKernel, dists: Sequence[Tensor], alternative: Tensor, lam: float, arg: int) -> None:
    """(c) Mixing argument `arg` with `alternative` mixes the outputs with the same weight."""
    mixed_in = list(dists)
    mixed_in[arg] = lam * dists[arg] + (1 - lam) * alternative
    other = list(dists)
    other[arg] = alternative
    got = kernel(*mixed_in)
    expected = lam * kernel(*dists) + (1 - lam) * kernel(*other)
    tol = tolerance(got.dtype, kernel.M, loose=_loose(kernel))
    bad = ((got - expected).abs() > tol).reshape(-1, kernel.M).any(-1).nonzero().flatten().tolist()
    if bad:
        i = bad[0]
        name = _names(kernel)[arg]
        inputs = [(n, _row(d, i)) for n, d in zip(_names(kernel), dists)] + [(f"{name}'", _row(alternative, i))]
        raise _fail(
            f"(c) linearity in argument {name}", kernel, inputs, format_distribution(expected.reshape(-1, kernel.M)[i]),
            got.reshape(-1, kernel.M)[i], f"mixing {name} with {name}' at lambda = {lam:.4g}",
        )  # fmt: skip


def check_against(kernel: GateKernel, reference: GateKernel, *dists: Tensor) -> None:
    """(d) The kernel agrees with a reference kernel (the generic lift of the same table)."""
    got, expected = kernel(*dists), reference(*dists)
    tol = tolerance(got.dtype, kernel.M, loose=_loose(kernel))
    bad = ((got - expected).abs() > tol).reshape(-1, kernel.M).any(-1).nonzero().flatten().tolist()
    if bad:
        i = bad[0]
        inputs = [(n, _row(d, i)) for n, d in zip(_names(kernel), dists)]
        raise _fail(
            f"(d) agreement with the reference, {reference.choice.describe()}", kernel, inputs,
            format_distribution(expected.reshape(-1, kernel.M)[i]), got.reshape(-1, kernel.M)[i],
        )  # fmt: skip


def check_batched(kernel: GateKernel, *dists: Tensor) -> None:
    """(e) Each row of a batched call equals the call on that row alone."""
    batched = kernel(*dists)
    tol = tolerance(batched.dtype, kernel.M)
    for i in range(batched.shape[0]):
        rows = [d[i : i + 1] for d in dists]
        single = kernel(*rows)[0]
        if ((batched[i] - single).abs() > tol).any():
            inputs = [(n, d[0]) for n, d in zip(_names(kernel), rows)]
            raise _fail("(e) batched == one example at a time", kernel, inputs, format_distribution(single), batched[i], f"row {i} of {batched.shape[0]}")


def check_settings(max_examples: int, verbosity: Verbosity = Verbosity.quiet) -> settings:
    """Hypothesis settings for reproducible checks: derandomised, no deadline, no example database."""
    return settings(
        max_examples=max_examples, derandomize=True, deadline=None, database=None, report_multiple_bugs=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck),
        verbosity=verbosity, print_blob=False,
    )  # fmt: skip


def check_kernel(kernel: GateKernel, reference: GateKernel, *, max_examples: int = 50) -> None:
    """All properties (a)-(e) for one kernel; raises GateCheckFailure with a shrunk counterexample."""
    M, arity = kernel.M, kernel.arity
    for dtype in (torch.float64, torch.float32):
        check_one_hots(kernel, dtype)
    if arity == 0:
        check_simplex(kernel)
        return
    draws = st.tuples(
        st.tuples(*[batched_distributions(M, BATCH) for _ in range(arity)]),
        batched_distributions(M, BATCH), st.floats(0.0, 1.0), st.integers(0, arity - 1),
    )  # fmt: skip

    @check_settings(max_examples)
    @given(draws)
    def random_inputs(draw: tuple[tuple[Tensor, ...], Tensor, float, int]) -> None:
        dists, alternative, lam, arg = draw
        check_simplex(kernel, *dists)
        check_against(kernel, reference, *dists)
        check_linearity(kernel, dists, alternative, lam, arg)
        check_batched(kernel, *dists)

    random_inputs()


def run_gate_checks(gates: Sequence[Gate], M: int, *, max_examples: int = 50, fft: FftMode = "auto") -> list[NramError]:
    """Check every non-built-in gate at M; one NramError at the gate's source per failing gate.

    The kernel checked is the one a model would run (`make_kernel(gate, M, fft=fft)`), against the generic
    lift of the gate's table. Totality errors and `via` loading errors are returned too. Results are
    cached per (gate, M, options): a spec whose machines share a gate set checks each gate once.
    """
    found = (_check_gate(g, M, max_examples, fft) for g in dict.fromkeys(gates) if g.builtin is None)
    return [e for e in found if e is not None]


@functools.lru_cache(maxsize=1024)
def _check_gate(gate: Gate, M: int, max_examples: int, fft: FftMode) -> NramError | None:
    try:
        kernel = make_kernel(gate, M, fft=fft)
        check_kernel(kernel, make_kernel(gate, M, generic=True), max_examples=max_examples)
    except GateCheckFailure as exc:
        return NramError(f"gate '{gate.name}' ({kernel.choice.describe()}) fails at M = {M}: {exc}", gate.span)
    except NramError as exc:
        return exc
    except Exception as exc:
        if gate.via is None:
            raise  # a fault in nramdsl's own kernels, not in the user's input
        return NramError(f"gate '{gate.name}': 'via' kernel {gate.via} raised {type(exc).__name__}: {exc}", gate.via_span or gate.span)
    return None
