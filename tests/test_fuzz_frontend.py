"""Property tests of the whole front end on generated specs and on corruptions of them.

Valid specs (random gate bodies over the grammar, wrapped in `mod M` so they are total) must check clean
and resolve to a graph of the right size. Corrupted specs (characters or tokens deleted, inserted or
swapped) must either be accepted or raise the project's `NramError`: never another exception.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from pathlib import Path

import pytest
from bounded import classify, run_limited, score_errors, warm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nramdsl.circuit.graph import build_graph
from nramdsl.errors import NramError
from nramdsl.lang.frontend import load_text
from nramdsl.lang.check import check_program, resolve_machine

_OPS = ["+", "-", "*", "<", "<=", "==", "!=", ">", ">=", "and", "or"]  # no // or mod: those can divide by 0


def expressions(params: list[str]) -> st.SearchStrategy[str]:
    leaf = st.sampled_from([*params, "M", "0", "1", "3"])

    def node(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(children, st.sampled_from(_OPS), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            children.map(lambda c: f"(-{c})"),
            children.map(lambda c: f"(not {c})"),
            st.tuples(st.sampled_from(["min", "max"]), children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            children.map(lambda c: f"abs({c})"),
            st.tuples(children, children, children).map(lambda t: f"(if {t[0]} then {t[1]} else {t[2]})"),
        )

    return st.recursive(leaf, node, max_leaves=8)


@st.composite
def specs(draw: st.DrawFn) -> tuple[str, int, int, list[int]]:
    n = draw(st.integers(1, 4))
    lines, arities = [], []
    for i in range(n):
        arity = draw(st.integers(0, 2))
        params = ["a", "b"][:arity]
        body = draw(expressions(params) if params else st.sampled_from(["0", "1", "M - 1"]))
        lines.append(f"  gate g{i}({', '.join(params)}) = ({body}) mod M")
        arities.append(arity)
    R, M = draw(st.integers(1, 3)), draw(st.integers(2, 6))
    order = draw(st.permutations([f"g{i}" for i in range(n)]))
    repeat = draw(st.integers(1, 2))
    circuit = ", ".join(["read", *order, "write"])
    text = (
        "# generated\ngates gen {\n" + "\n".join(lines) + "\n}\n"
        f"machine m {{\n  use gen\n  registers {R}\n  memory {M}\n  timesteps 2\n"
        f"  circuit ({circuit}) * {repeat}\n  controller mlp(hidden = 4)\n  train {{ lr = 0.5, name = \"x\" }}\n}}\n"
    )
    gate_arity = {f"g{i}": a for i, a in enumerate(arities)}
    full = [1, *[gate_arity[g] for g in order], 2] * repeat
    return text, R, M, full


@settings(max_examples=60, deadline=None)
@given(specs())
def test_generated_specs_are_valid(spec: tuple[str, int, int, list[int]]) -> None:
    text, R, M, arities = spec
    program = load_text(text, "gen.nram")
    assert check_program(program) == []
    machine = resolve_machine(program)
    g = build_graph(machine)
    Q = len(arities)
    assert machine.memory == M and g.number_of_nodes() == 2 * R + Q + 1
    memory_edges = sum(1 for name in machine.circuit if name in ("read", "write"))
    assert g.number_of_edges() == sum(R + i for i, a in enumerate(arities) if a) + R * (R + Q) + memory_edges


_TOKENS = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|\d+|//|<=|>=|==|!=|\S")
_NOISE = list("(){},=*+-<>#\"$.:9 \n") + ["gate", "gates", "const", "mod", "if", "then", "else", "via", "use", "M", "read", "write", "machine", "circuit", "registers", "0", "2..6"]


@st.composite
def corruptions(draw: st.DrawFn) -> str:
    text = draw(specs())[0]
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):  # character edits
            i = draw(st.integers(0, max(0, len(text) - 1)))
            kind = draw(st.sampled_from(["delete", "insert", "swap"]))
            if kind == "delete":
                text = text[:i] + text[i + 1 :]
            elif kind == "insert":
                text = text[:i] + draw(st.sampled_from(_NOISE)) + text[i:]
            elif i + 1 < len(text):
                text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        else:  # token edits
            tokens = _TOKENS.findall(text)
            i = draw(st.integers(0, len(tokens) - 1))
            kind = draw(st.sampled_from(["delete", "insert", "swap"]))
            if kind == "delete":
                del tokens[i]
            elif kind == "insert":
                tokens.insert(i, draw(st.sampled_from(_NOISE)) + " ")
            elif i + 2 < len(tokens):
                tokens[i], tokens[i + 2] = tokens[i + 2], tokens[i]
            text = "".join(tokens)
    return text


@settings(max_examples=150, deadline=None)
@given(corruptions())
def test_corrupted_specs_raise_only_nram_errors(text: str) -> None:
    try:
        program = load_text(text, "fuzz.nram")
        errors = check_program(program)
    except NramError as exc:
        assert exc.format().startswith(("fuzz.nram:", "error:"))
        return
    for err in errors:
        assert isinstance(err, NramError) and err.format()
    if not errors:
        try:
            resolve_machine(program)
        except NramError:
            pass


# ---- the command line under fuzzing: only the project's errors, located, in bounded time and memory
#
# Each example runs `nramdsl check` and `nramdsl compile --emit summary` in a forked child (tests/bounded.py)
# under 2 GiB of data segment and a hang detector. The budget is small here (derandomized under the `ci`
# profile); a longer run is
#     NRAMDSL_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz_frontend.py -k bounded
# and benchmarks/fuzz_frontend.py measures the figures in docs/limits.md.

FUZZ_EXAMPLES = int(os.environ.get("NRAMDSL_FUZZ_EXAMPLES", "25"))
MEMORY_BYTES = 2 << 30
HANG_SECONDS = 120  # a hang detector, not a timing: every example here takes about a second
EXTREME = st.sampled_from([0, 1, 2, 3, 16, 40, 155, 3000, 10**6, 10**9, 10**19, 10**30])
LOOK_ALIKES = ["а", "０", "−", "“", "\u00a0", "\u200b", "\u202e", "\u2028", "\x0c", "\r", "\t", "\x00", "\x1b[2J"]
ODD_IMPORTS = ["/dev/zero", "/dev/stdin", "fifo", "nul\x00.nram", "paper.nram", "missing.nram", ".", "/"]


@st.composite
def extreme_specs(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Grammar-shaped specs whose numbers, nesting, names and imports go to extremes, with `--set` overrides."""
    text, *_ = draw(specs())
    numbers = re.compile(r"\b\d+\b")
    spans = list(numbers.finditer(text))
    for m in draw(st.lists(st.sampled_from(spans), max_size=3, unique_by=lambda m: m.start())) if spans else []:
        text = text[: m.start()] + str(draw(EXTREME)).ljust(len(m.group())) + text[m.end():]
    kind = draw(st.sampled_from(["deep", "wide", "long name", "import", "arity", "none"]))
    if kind == "deep":
        k = draw(st.sampled_from([99, 101, 5000]))
        text = text.replace("= (", "= (" + "-" * k, 1)
    elif kind == "wide":
        text = text.replace("= (", "= (" + "a + " * draw(st.sampled_from([10, 3000])), 1)
    elif kind == "long name":
        text = text.replace("machine m", "machine " + "m" * draw(st.sampled_from([100, 100_000])), 1)
    elif kind == "import":
        text = f'import "{draw(st.sampled_from(ODD_IMPORTS))}"\n' + text
    elif kind == "arity":
        text = text.replace("gate g0(", "gate g0(" + "".join(f"p{i}, " for i in range(draw(st.integers(3, 30)))), 1)
    args = draw(st.lists(st.sampled_from(["M", "R", "T"]).flatmap(
        lambda k: EXTREME.map(lambda v: f"{k}={v}")), max_size=1))
    return text, [w for a in args for w in ("--set", a)]


@st.composite
def byte_mutants(draw: st.DrawFn) -> bytes:
    """Corrupted specs as bytes: look-alike and control characters, flipped bytes, truncation."""
    text = draw(corruptions())
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(LOOK_ALIKES)) + text[i:]
    data = bytearray(text.encode())
    for _ in range(draw(st.integers(0, 2))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the paper's gates (imports resolve) and a FIFO (an import of it must not wait)."""
    warm()
    folder = tmp_path_factory.mktemp("fuzz")
    shutil.copy(Path(__file__).resolve().parent.parent / "examples" / "paper.nram", folder / "paper.nram")
    os.mkfifo(folder / "fifo")
    return folder


def _few_gate_examples() -> None:
    from nramdsl import cli
    from nramdsl.kernels.properties import run_gate_checks

    checks = functools.partial(run_gate_checks, max_examples=2)
    cli._gate_checks = lambda: checks


def _no_gate_checks() -> None:
    from nramdsl import cli

    cli._gate_checks = lambda: None


def _assert_bounded_and_located(data: bytes, args: list[str], folder: Path, prepare=_few_gate_examples) -> None:  # type: ignore[no-untyped-def]
    path = folder / "fuzz.nram"
    path.write_bytes(data)
    try:
        lines: list[str] | None = data.decode("utf-8").removeprefix("\ufeff").split("\n")
    except UnicodeDecodeError:
        lines = None
    for argv in (["check", str(path), *args], ["compile", str(path), "--emit", "summary", *args]):
        result = run_limited(argv, MEMORY_BYTES, HANG_SECONDS, prepare)
        verdict = classify(result)
        assert verdict in ("ok", "error"), f"{verdict} on {argv[0]}: {result.get('detail') or result}"
        assert result["rc"] in (0, 1), result
        scores = score_errors(result["stderr"], str(path), lines)
        assert scores["unlocated_errors"] == 0, result["stderr"]
        assert scores["wrong_caret"] == 0, result["stderr"]
        assert (result["rc"] == 1) == (scores["error_lines"] > 0), result["stderr"]


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(extreme_specs())
def test_bounded_extreme_specs(fuzz_dir: Path, case: tuple[str, list[str]]) -> None:
    text, args = case
    _assert_bounded_and_located(text.encode("utf-8", "surrogatepass"), args, fuzz_dir)


@settings(max_examples=4 * FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(byte_mutants())
def test_bounded_raw_bytes(fuzz_dir: Path, data: bytes) -> None:
    """Most mutants do not parse; the property checks of those that do are the other test's business."""
    _assert_bounded_and_located(data, [], fuzz_dir, _no_gate_checks)
