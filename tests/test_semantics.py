"""Semantic checks, resolution to MachineSpec, imports, and the expression evaluator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nramdsl.lang import parse as parser_module
from nramdsl.errors import ErrorList, LoadError, NramError, TotalityError, UnknownName
from nramdsl.lang.gate_eval import compile_gate
from nramdsl.lang.spec import ControllerSpec
from nramdsl.lang.frontend import load_file, load_machine, load_text
from nramdsl.lang.check import DEFAULT_CHECK_M, check_program, resolve_machine
from nramdsl.lang.tabulate import evaluate_point, tabulate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PAPER14 = ("read", "zero", "one", "two", "inc", "add", "sub", "dec", "lt", "le", "eq", "min", "max", "write")

TASKS = {  # name: (R, M, T, controller, complexity, repeat)
    "access": (2, 16, 5, "mlp", 10, 1),
    "increment": (4, 16, 16, "mlp", 10, 1),
    "copy": (4, 16, 15, "mlp", 7, 1),
    "reverse": (4, 16, 16, "mlp", 7, 1),
    "swap": (4, 16, 8, "lstm", 10, 1),
    "permutation": (4, 16, 20, "lstm", 6, 1),
    "listk": (4, 32, 20, "lstm", 10, 1),
    "listsearch": (4, 32, 20, "lstm", 6, 1),
    "merge": (4, 32, 25, "lstm", 10, 2),
    "walkbst": (4, 42, 20, "lstm", 10, 2),
}


def machine_text(body: str, circuit: str = "read, zero, write", extra: str = "") -> str:
    return f"gates g {{\n  const zero = 0\n{body}\n}}\nmachine m {{\n  use g\n  registers 2\n  memory 8\n  timesteps 3\n  circuit {circuit}\n{extra}}}\n"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.nram")), ids=lambda p: p.stem)
def test_examples_are_valid(path: Path) -> None:
    assert check_program(load_file(path)) == []


def test_paper_machine() -> None:
    spec = load_machine(EXAMPLES / "paper.nram")
    assert (spec.name, spec.registers, spec.memory, spec.timesteps) == ("copy", 4, 16, 20)
    assert spec.circuit == PAPER14
    assert spec.controller == ControllerSpec("lstm", 64)
    assert (spec.halt, spec.write_returns, spec.task, dict(spec.train)) == ("learned", "zero", None, {})
    assert set(spec.gates) == set(PAPER14)
    assert spec.gates["read"].builtin == "read" and spec.gates["read"].params == ("p",) and spec.gates["read"].evaluate is None
    assert spec.gates["write"].builtin == "write" and spec.gates["write"].params == ("p", "v")
    assert [spec.gates[n].arity for n in PAPER14] == [1, 0, 0, 0, 1, 2, 2, 1, 2, 2, 2, 2, 2, 2]
    add = spec.gates["add"]
    assert tabulate(add, 16)[9, 9] == 2 and add.span is not None and add.span.line == 7
    assert spec.source is not None and spec.source.endswith("paper.nram")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_task_examples(task: str) -> None:
    R, M, T, kind, complexity, repeat = TASKS[task]
    spec = load_machine(EXAMPLES / f"{task}.nram")
    assert (spec.name, spec.task, spec.registers, spec.memory, spec.timesteps) == (task, task, R, M, T)
    assert spec.controller.kind == kind and spec.circuit == PAPER14 * repeat
    assert spec.train["complexity"] == complexity  # the rest of the recipe is the training defaults


def test_custom_example_records_via() -> None:
    spec = load_machine(EXAMPLES / "custom.nram")
    mul = spec.gates["mul"]
    assert mul.via == "mykernels:mul" and mul.via_span is not None and mul.via_span.line == 5
    assert mul.source_dir == str(EXAMPLES)
    assert tabulate(spec.gates["sel"], 16)[0, 5] == 0 and tabulate(spec.gates["sel"], 16)[3, 5] == 5
    assert tabulate(spec.gates["clamp_inc"], 16)[15] == 15


def test_overrides_and_aliases() -> None:
    program = load_file(EXAMPLES / "paper.nram")
    spec = resolve_machine(program, "copy", {"M": 40, "T": 7, "registers": 3})
    assert (spec.memory, spec.timesteps, spec.registers) == (40, 7, 3)
    assert resolve_machine(program, None, {"memory": 20}).memory == 20
    with pytest.raises(ErrorList) as info:
        resolve_machine(program, None, {"M": 1, "Q": 2})
    assert [e.message for e in info.value.errors] == [
        "override memory=1: memory must be at least 2, got 1",
        "unknown override 'Q'; expected one of M, R, T (memory, registers, timesteps)",
    ]


def test_totality_is_checked_at_the_overridden_memory_size() -> None:
    text = machine_text("  gate lim(a) = max(a, 9)", circuit="read, lim, write")
    program = load_text(text, "t.nram")
    assert resolve_machine(program, None, {"M": 10}).memory == 10
    with pytest.raises(TotalityError, match=r"lim\(0\) = 9, outside \[0, 8\)"):
        resolve_machine(program)


def test_unknown_machine_and_file_without_machine() -> None:
    program = load_file(EXAMPLES / "paper.nram")
    with pytest.raises(UnknownName, match="no machine named 'cpy' \\(did you mean 'copy'\\?\\)"):
        resolve_machine(program, "cpy")
    with pytest.raises(UnknownName, match="defines no machine"):
        resolve_machine(load_text("gates g { const zero = 0 }"))


def test_resolve_reports_all_errors_of_the_machine() -> None:
    text = machine_text("  gate f(a) = (a + b) mod M", circuit="read, nope, f, write", extra="  registers 3\n")
    with pytest.raises(ErrorList) as info:
        resolve_machine(load_text(text, "t.nram"))
    messages = [e.message for e in info.value.errors]
    assert len(messages) == 3 and "unknown name 'b'" in messages[0] and "unknown gate 'nope'" in messages[1]
    assert "setting 'registers'" in messages[2]
    assert "t.nram:3:" in info.value.format() and "^" in info.value.format()


def test_machines_are_scoped_per_file(tmp_path: Path) -> None:
    (tmp_path / "lib.nram").write_text(machine_text(""))
    (tmp_path / "top.nram").write_text('import "lib.nram"\nmachine m {\n  use g\n  registers 1\n  memory 4\n  timesteps 2\n  circuit read, write\n}\n')
    program = load_file(tmp_path / "top.nram")
    assert check_program(program) == []
    assert resolve_machine(program, "m").registers == 1  # the top file's machine shadows the import's


def test_imports_are_relative_parsed_once_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "base.nram").write_text("gates base { const zero = 0 }\n")
    (lib / "more.nram").write_text('import "base.nram"\ngates more { gate inc(a) = (a + 1) mod M }\n')
    (tmp_path / "top.nram").write_text(
        'import "lib/base.nram"\nimport "lib/more.nram"\n'
        "machine m { use base, more registers 2 memory 8 timesteps 3 circuit read, zero, inc, write }\n"
    )
    calls: list[str] = []
    real_parse = parser_module.parse

    def counting_parse(text: str, file: str = "<string>"):  # type: ignore[no-untyped-def]
        calls.append(file)
        return real_parse(text, file)

    monkeypatch.setattr("nramdsl.lang.load.parse", counting_parse)
    program = load_file(tmp_path / "top.nram")
    assert len(calls) == 3  # base.nram once, although two files import it
    assert [Path(f.path).name for f in program.files] == ["base.nram", "more.nram", "top.nram"]
    assert resolve_machine(program).circuit == ("read", "zero", "inc", "write")


def test_missing_file_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="cannot read 'no/such.nram'"):
        load_file("no/such.nram")


def test_unused_gate_sets_are_checked_at_the_default_memory_size() -> None:
    errors = check_program(load_text("gates g { gate inc(a) = a + 1 }", "t.nram"))
    assert len(errors) == 1 and isinstance(errors[0], TotalityError)
    assert f"M = {DEFAULT_CHECK_M}" in errors[0].message and "inc(15) = 16" in errors[0].message


def test_gate_objects_are_shared_between_resolutions() -> None:
    program = load_file(EXAMPLES / "paper.nram")
    assert resolve_machine(program).gates["add"] is resolve_machine(program).gates["add"]


# ---- the evaluator


def gate(params: str, body: str):  # type: ignore[no-untyped-def]
    program = load_text(f"gates g {{ gate f({params}) = {body} }}")
    gs = program.files[-1].module.items[0]
    g = gs.gates[0]  # type: ignore[union-attr]
    return compile_gate(tuple(p.value for p in g.params), g.body)


def test_operator_semantics_on_ints() -> None:
    f = gate("a, b", "a // b")
    assert f(8, -7, 2) == -4 and gate("a, b", "a mod b")(8, -7, 3) == 2
    assert gate("a, b", "a < b")(8, 1, 2) == 1 and gate("a, b", "a >= b")(8, 1, 2) == 0
    assert gate("a, b", "a and b")(8, 3, 5) == 1 and gate("a, b", "a or b")(8, 0, 0) == 0
    assert gate("a", "not a")(8, 0) == 1 and gate("a", "not a")(8, 4) == 0
    assert gate("a", "abs(a - 5)")(8, 2) == 3 and gate("a, b", "max(a, b) - min(a, b)")(8, 2, 6) == 4
    assert gate("a", "M - 1 - a")(8, 2) == 5
    assert all(type(gate("a", e)(8, 3)) is int for e in ("a < 2", "not a", "if a then 1 else 2", "a and 0", "min(a, 1)"))


def test_short_circuit_masks_division_in_untaken_branches() -> None:
    g = load_machine_text("  gate q(a, b) = if b == 0 then 0 else a // b\n  gate r(a, b) = b != 0 and a mod b == 1", "read, q, r, write")
    table = tabulate(g.gates["q"], 8)
    assert table[7, 0] == 0 and table[7, 2] == 3
    assert tabulate(g.gates["r"], 8)[3, 2] == 1 and tabulate(g.gates["r"], 8)[3, 0] == 0
    assert evaluate_point(g.gates["q"], 8, 5, 0) == 0


def load_machine_text(gates: str, circuit: str):  # type: ignore[no-untyped-def]
    return resolve_machine(load_text(machine_text(gates, circuit), "t.nram"))


def test_a_raise_in_a_taken_branch_is_still_reported() -> None:
    with pytest.raises(TotalityError, match=r"q\(0, 0\) raises"):
        load_machine_text("  gate q(a, b) = if a == 0 then a // b else 0", "read, q, write")


_leaf = st.sampled_from(["a", "b", "M", "0", "1", "2", "3", "7"])


def _node(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "//", "mod", "<", "<=", "==", "!=", ">", ">=", "and", "or"]), children)
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"(-{c})"),
        children.map(lambda c: f"(not {c})"),
        st.tuples(st.sampled_from(["min", "max"]), children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        children.map(lambda c: f"abs({c})"),
        st.tuples(children, children, children).map(lambda t: f"(if {t[0]} then {t[1]} else {t[2]})"),
    )


EXPRESSIONS = st.recursive(_leaf, _node, max_leaves=12)


@given(EXPRESSIONS, st.integers(2, 9))
def test_scalar_and_vectorized_evaluation_agree(expr: str, M: int) -> None:
    f = gate("a, b", expr)
    a, b = np.arange(M).reshape(M, 1), np.arange(M).reshape(1, M)
    scalar: dict[tuple[int, int], object] = {}
    for i in range(M):
        for j in range(M):
            try:
                scalar[i, j] = f(M, i, j)
            except ZeroDivisionError:
                scalar[i, j] = ZeroDivisionError
    raises = ZeroDivisionError in scalar.values()
    try:
        with np.errstate(all="raise"):
            table = np.broadcast_to(np.asarray(f(M, a, b)), (M, M))
    except (FloatingPointError, ZeroDivisionError):  # numpy's, or Python's for an all-scalar subterm
        assert raises, f"array evaluation of {expr} raised but no point does"
        return
    assert not raises, f"array evaluation of {expr} hid a division by zero"
    assert all(table[i, j] == scalar[i, j] for (i, j) in scalar), expr


def test_errors_are_nram_errors() -> None:
    with pytest.raises(NramError):
        load_machine(EXAMPLES / "paper.nram", "nothing")


def test_reserved_keywords_are_read_from_the_grammar() -> None:
    """The reserved words are the grammar's own literal words, not a hand-kept copy."""
    from nramdsl.lang.check import KEYWORDS

    grammar = (Path(__file__).resolve().parent.parent / "grammars" / "nram.lark").read_text()
    for word in ("import", "gates", "gate", "const", "via", "machine", "use", "registers", "memory", "timesteps",
                 "circuit", "controller", "halt", "write", "returns", "task", "train", "if", "then", "else", "and",
                 "or", "not", "mod"):
        assert word in KEYWORDS and f'"{word}"' in grammar
    assert not {"min", "max", "abs", "M"} & KEYWORDS
    errors = check_program(load_text("gates g { gate train(a) = a }"))
    assert [e.message for e in errors] == ["'train' is a keyword and cannot name a gate"]
