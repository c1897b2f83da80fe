"""Parser: golden ASTs, precedence, spans, and syntax errors in the user's words."""

from __future__ import annotations

import pytest

from nramdsl.lang import syntax as ast
from nramdsl.errors import NramError, Span, SyntaxError_
from nramdsl.lang.parse import _lark, grammar_path, parse


def S(line: int, col: int, end_line: int, end_col: int, file: str = "t.nram") -> Span:
    return Span(file, line, col, end_line, end_col)


def body(expr: str) -> ast.Expr:
    module = parse(f"gates g {{ gate f(a, b, c) = {expr} }}")
    gs = module.items[0]
    assert isinstance(gs, ast.GateSet)
    return gs.gates[0].body


def shape(e: ast.Expr) -> str:
    """A span-free rendering with full parentheses, to test precedence."""
    if isinstance(e, ast.Num):
        return str(e.value)
    if isinstance(e, ast.Var):
        return e.name
    if isinstance(e, ast.UnaryOp):
        return f"(-{shape(e.operand)})"
    if isinstance(e, ast.Not):
        return f"(not {shape(e.operand)})"
    if isinstance(e, (ast.BinOp, ast.Compare, ast.BoolOp)):
        return f"({shape(e.left)} {e.op} {shape(e.right)})"
    if isinstance(e, ast.Call):
        return f"{e.func.value}({', '.join(shape(a) for a in e.args)})"
    assert isinstance(e, ast.IfExpr)
    return f"(if {shape(e.cond)} then {shape(e.then)} else {shape(e.orelse)})"


def test_golden_gate_set() -> None:
    text = "gates g {\n  const one = 1\n  gate inc(a) = (a + 1) mod M via \"k:inc\"\n}\n"
    expected = ast.Module(
        "t.nram",
        (
            ast.GateSet(
                ast.Name("g", S(1, 7, 1, 8)),
                (
                    ast.GateDef(ast.Name("one", S(2, 9, 2, 12)), (), ast.Num(1, S(2, 15, 2, 16)), None, S(2, 3, 2, 16), is_const=True),
                    ast.GateDef(
                        ast.Name("inc", S(3, 8, 3, 11)),
                        (ast.Name("a", S(3, 12, 3, 13)),),
                        ast.BinOp(
                            "mod",
                            ast.BinOp("+", ast.Var("a", S(3, 18, 3, 19)), ast.Num(1, S(3, 22, 3, 23)), S(3, 18, 3, 23)),
                            ast.Var("M", S(3, 29, 3, 30)),
                            S(3, 17, 3, 30),
                        ),
                        ast.Via("k:inc", S(3, 31, 3, 42)),
                        S(3, 3, 3, 42),
                    ),
                ),
                S(1, 1, 4, 2),
            ),
        ),
        S(1, 1, 4, 2),
    )
    assert parse(text, "t.nram") == expected


def test_golden_machine() -> None:
    text = (
        "machine m {\n"
        "  use p, q\n"
        "  registers 4\n"
        "  circuit (read, inc) * 2\n"
        "  controller mlp(hidden = 8)\n"
        "  halt never\n"
        "  write returns value\n"
        "  task copy\n"
        '  train { steps = 10, lr = 0.5, name = "x", mode = fast, shift = -2, }\n'
        "}"
    )
    m = parse(text, "t.nram").items[0]
    assert isinstance(m, ast.Machine)
    assert m.name == ast.Name("m", S(1, 9, 1, 10))
    use, regs, circuit, ctrl, halt, wr, task, train = m.settings
    assert use == ast.UseSetting((ast.Name("p", S(2, 7, 2, 8)), ast.Name("q", S(2, 10, 2, 11))), S(2, 3, 2, 11))
    assert regs == ast.SizeSetting("registers", ast.Num(4, S(3, 13, 3, 14)), S(3, 3, 3, 14))
    assert isinstance(circuit, ast.CircuitSetting) and [n.value for n in circuit.gates] == ["read", "inc"]
    assert circuit.repeat == ast.Num(2, S(4, 25, 4, 26))
    assert isinstance(ctrl, ast.ControllerSetting) and ctrl.kind.value == "mlp" and ctrl.args[0].value.value == 8
    assert isinstance(halt, ast.HaltSetting) and halt.mode.value == "never"
    assert isinstance(wr, ast.WriteReturnsSetting) and wr.mode.value == "value"
    assert isinstance(task, ast.TaskSetting) and task.task.value == "copy"
    assert isinstance(train, ast.TrainSetting)
    assert {e.key.value: e.value for e in train.entries} == {"steps": 10, "lr": 0.5, "name": "x", "mode": "fast", "shift": -2}


def test_plain_circuit_and_bare_controller() -> None:
    m = parse("machine m { circuit read, zero, write controller lstm }").items[0]
    assert isinstance(m, ast.Machine)
    circuit, ctrl = m.settings
    assert isinstance(circuit, ast.CircuitSetting) and circuit.repeat is None and len(circuit.gates) == 3
    assert isinstance(ctrl, ast.ControllerSetting) and ctrl.args == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a + b * c", "(a + (b * c))"),
        ("a - b - c", "((a - b) - c)"),
        ("a * b // c mod M", "(((a * b) // c) mod M)"),
        ("-a * b", "((-a) * b)"),
        ("- -a", "(-(-a))"),
        ("a + 1 < b * 2", "((a + 1) < (b * 2))"),
        ("not a < b", "(not (a < b))"),
        ("a and b or c", "((a and b) or c)"),
        ("a or b and c", "(a or (b and c))"),
        ("not a and b", "((not a) and b)"),
        ("if a then b else c + 1", "(if a then b else (c + 1))"),
        ("if a then if b then 1 else 2 else 3", "(if a then (if b then 1 else 2) else 3)"),
        ("min(a, b + 1) + abs(-c)", "(min(a, (b + 1)) + abs((-c)))"),
        ("(a + b) * c", "((a + b) * c)"),
    ],
)
def test_precedence_is_python_like(text: str, expected: str) -> None:
    assert shape(body(text)) == expected


def test_every_node_has_a_real_span() -> None:
    module = parse("gates g { gate f(a) = if not a then -(a) else min(a, 1) }\nmachine m { train { } }", "t.nram")
    stack: list[object] = [module]
    seen = 0
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            stack.extend(node)
            continue
        if not hasattr(node, "__dataclass_fields__"):
            continue
        span = getattr(node, "span")
        assert isinstance(span, Span) and span.line >= 1 and span.column >= 1, node
        seen += 1
        stack.extend(getattr(node, f) for f in node.__dataclass_fields__ if f != "span")
    assert seen > 10


def test_soft_keywords_parse_and_comments_are_ignored() -> None:
    # `mod` as a gate name parses (the contextual lexer); the semantic check rejects it.
    module = parse("# c\ngates g { gate mod(a) = a # trailing\n gate min(a, b) = min(a, b) }")
    gs = module.items[0]
    assert isinstance(gs, ast.GateSet) and [g.name.value for g in gs.gates] == ["mod", "min"]


def test_zero_ary_gate_and_const_are_both_accepted() -> None:
    gs = parse("gates g { const zero = 0 gate one() = 1 }").items[0]
    assert isinstance(gs, ast.GateSet)
    assert [(g.name.value, g.params, g.is_const) for g in gs.gates] == [("zero", (), True), ("one", (), False)]


def test_import_records_the_path() -> None:
    assert parse('import "paper.nram"', "t.nram").items == (ast.Import("paper.nram", S(1, 1, 1, 20)),)


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("gates g { gate f(a) a }", 1, 21, "unexpected identifier 'a'; expected '='"),
        ("gates g {", 1, 10, "unexpected end of file; expected one of 'const', 'gate', '}'"),
        ("gates { }", 1, 7, "unexpected '{'; expected identifier"),
        ("machine m { registers x }", 1, 23, "unexpected identifier 'x'; expected integer"),
        ("machine m { train { lr = 2..6 } }", 1, 27, "unexpected character '.'"),
        ("gates g { gate f(a) = a @ 1 }", 1, 25, "unexpected character '@'"),
        ("gates g { gate f(a) = 1 2 }", 1, 25, "unexpected integer 2"),
    ],
)
def test_syntax_errors_name_tokens_as_written(text: str, line: int, col: int, message: str) -> None:
    with pytest.raises(SyntaxError_) as info:
        parse(text, "t.nram")
    err = info.value
    assert err.span is not None and (err.span.line, err.span.column) == (line, col), err.format()
    assert message in err.message
    assert "EQUAL" not in err.message and "LBRACE" not in err.message and "__ANON" not in err.message
    assert err.format().splitlines()[1] == "    " + text


def test_float_terminal_needs_digits_on_both_sides() -> None:
    train = parse("machine m { train { a = 2.5, b = 1e3, c = 7 } }").items[0].settings[0]  # type: ignore[union-attr]
    assert [e.value for e in train.entries] == [2.5, 1000.0, 7]


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(NramError, match="nesting depth 5,001 is over the limit of 100"):
        parse("gates g { gate f(a) = " + "-" * 5000 + "a }")
    with pytest.raises(NramError, match="nesting depth 3,000 is over the limit of 100"):
        parse("gates g { gate f(a) = " + " + ".join(["a"] * 3000) + " }")


def test_grammar_is_found_and_parser_built_once() -> None:
    assert grammar_path().is_file()
    assert _lark() is _lark()
