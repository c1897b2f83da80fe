"""Property tests of the whole front end on generated specs and on corruptions of them.

Valid specs (random gate bodies over the grammar, wrapped in `mod M` so they are total) must check clean
and resolve to a graph of the right size. Corrupted specs (characters or tokens deleted, inserted or
swapped) must either be accepted or raise the project's `NramError`: never another exception.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
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
