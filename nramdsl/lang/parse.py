"""Text -> `syntax.Module`: the Lark LALR parser, built once, and its error translation.

Lark builds a parse tree with positions (`propagate_positions=True`, which also covers anonymous tokens
such as `(` and keywords); `_ToAst`, a non-recursive transformer, turns it into frozen dataclasses. Lark
exceptions become `SyntaxError_` naming the expected tokens as a user writes them (`'='`, `identifier`),
so a user never sees a Lark frame or a terminal name like `EQUAL`.
"""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.lexer import PatternStr
from lark.visitors import Transformer_NonRecursive, v_args

from nramdsl import limits
from nramdsl.errors import NramError, Span, SyntaxError_
from nramdsl.lang import syntax as ast

# How named terminals read in "expected ..." messages.
_TERMINAL_WORDS = {
    "NAME": "identifier",
    "INT": "integer",
    "FLOAT": "number",
    "STRING": "string",
    "$END": "end of file",
}


_PACKAGE = Path(__file__).resolve().parent.parent  # the nramdsl folder


def grammar_path() -> Path:
    """The installed wheel ships grammars/ inside the package; a source checkout has it at the root."""
    packaged = _PACKAGE / "grammars" / "nram.lark"
    if packaged.exists():
        return packaged
    return _PACKAGE.parent / "grammars" / "nram.lark"


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
    )


@functools.lru_cache(maxsize=1)
def keywords() -> frozenset[str]:
    """Every keyword of the grammar (its literal words). The contextual lexer lets them through as names,
    so `nramdsl.lang.check` refuses them as declared names."""
    words = (t.pattern.value for t in _lark().terminals if isinstance(t.pattern, PatternStr))
    return frozenset(w for w in words if w.isidentifier())


@functools.lru_cache(maxsize=1)
def _terminal_display() -> dict[str, str]:
    shown = dict(_TERMINAL_WORDS)
    for term in _lark().terminals:
        if isinstance(term.pattern, PatternStr):
            shown[term.name] = f"'{term.pattern.value}'"
    return shown


def _span_of_meta(file: str, meta) -> Span:  # meta: lark.tree.Meta
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def _span_of_token(file: str, tok: Token) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Parse tree -> AST. Every rule with meta gets the span of all its tokens, anonymous ones included."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def _span(self, meta) -> Span:
        return _span_of_meta(self.file, meta)

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(str(tok), _span_of_token(self.file, tok))

    def _int(self, tok: Token) -> int:
        """An integer literal, refused when it does not fit 64 bits (before Python converts a huge one)."""
        digits = str(tok).lstrip("0") or "0"
        if len(digits) > 19 or int(digits) >= 1 << limits.INT_BITS:
            shown = digits if len(digits) <= 30 else f"{digits[:12]}…({len(digits)} digits)"
            raise SyntaxError_(f"integer {shown} is too large (integers must be below 2^{limits.INT_BITS})",
                               _span_of_token(self.file, tok))
        return int(digits)

    # ---- files
    def start(self, meta, items):
        span = self._span(meta) if not meta.empty else Span(self.file, 1, 1, 1, 1)
        return ast.Module(self.file, tuple(items), span)

    def import_(self, meta, children):
        return ast.Import(children[0][1:-1], self._span(meta))

    # ---- gate sets
    def gateset(self, meta, children):
        return ast.GateSet(self._name(children[0]), tuple(children[1:]), self._span(meta))

    def constdef(self, meta, children):
        via = children[2] if len(children) > 2 else None
        return ast.GateDef(self._name(children[0]), (), children[1], via, self._span(meta), is_const=True)

    def gatedef(self, meta, children):
        name, *rest = children
        params = tuple(self._name(t) for t in rest if isinstance(t, Token))
        others = [c for c in rest if c is not None and not isinstance(c, Token)]
        body = others[0]
        via = others[1] if len(others) > 1 else None
        return ast.GateDef(self._name(name), params, body, via, self._span(meta))

    def via(self, meta, children):
        return ast.Via(children[0][1:-1], self._span(meta))

    # ---- expressions
    def num(self, meta, children):
        return ast.Num(self._int(children[0]), self._span(meta))

    def var(self, meta, children):
        return ast.Var(str(children[0]), self._span(meta))

    def call(self, meta, children):
        args = tuple(c for c in children[1:] if c is not None)
        return ast.Call(self._name(children[0]), args, self._span(meta))

    def neg(self, meta, children):
        return ast.UnaryOp("-", children[0], self._span(meta))

    def not_op(self, meta, children):
        return ast.Not(children[0], self._span(meta))

    def if_expr(self, meta, children):
        return ast.IfExpr(children[0], children[1], children[2], self._span(meta))

    def _binary(op: str, cls: type):  # noqa: N805 - a factory used in the class body only
        def rule(self, meta, children):
            return cls(op, children[0], children[1], self._span(meta))

        return rule

    add, sub = _binary("+", ast.BinOp), _binary("-", ast.BinOp)
    mul, floordiv, mod = _binary("*", ast.BinOp), _binary("//", ast.BinOp), _binary("mod", ast.BinOp)
    lt, le, gt = _binary("<", ast.Compare), _binary("<=", ast.Compare), _binary(">", ast.Compare)
    ge, eq, ne = _binary(">=", ast.Compare), _binary("==", ast.Compare), _binary("!=", ast.Compare)
    and_op, or_op = _binary("and", ast.BoolOp), _binary("or", ast.BoolOp)
    del _binary

    # ---- machines
    def machine(self, meta, children):
        return ast.Machine(self._name(children[0]), tuple(children[1:]), self._span(meta))

    def use(self, meta, children):
        return ast.UseSetting(tuple(self._name(t) for t in children), self._span(meta))

    def _size(key: str):  # noqa: N805
        def rule(self, meta, children):
            tok = children[0]
            return ast.SizeSetting(key, ast.Num(self._int(tok), _span_of_token(self.file, tok)), self._span(meta))

        return rule

    registers, memory, timesteps = _size("registers"), _size("memory"), _size("timesteps")
    del _size

    def circuit(self, meta, children):
        return ast.CircuitSetting(tuple(self._name(t) for t in children), None, self._span(meta))

    def circuit_group(self, meta, children):
        *names, repeat = children
        rep = None if repeat is None else ast.Num(self._int(repeat), _span_of_token(self.file, repeat))
        return ast.CircuitSetting(tuple(self._name(t) for t in names), rep, self._span(meta))

    def controller(self, meta, children):
        args = tuple(c for c in children[1:] if c is not None)
        return ast.ControllerSetting(self._name(children[0]), args, self._span(meta))

    def controller_table(self, meta, children):
        args = tuple(c for c in children if isinstance(c, ast.KeywordArg))
        rows = tuple(c for c in children if isinstance(c, ast.TableRow))
        return ast.TableSetting(args, rows, self._span(meta))

    def when_row(self, meta, children):
        conds = tuple(c for c in children if isinstance(c, ast.Condition))
        body = tuple(c for c in children if not isinstance(c, ast.Condition))
        return ast.TableRow(conds, body, self._span(meta))

    def otherwise_row(self, meta, children):
        return ast.TableRow((), tuple(children), self._span(meta), otherwise=True)

    def _condition(zero: bool):  # noqa: N805
        def rule(self, meta, children):
            name, value = children
            num = ast.Num(int(value), _span_of_token(self.file, value))
            return ast.Condition(self._name(name), zero, num, self._span(meta))

        return rule

    cond_zero, cond_nonzero = _condition(True), _condition(False)
    del _condition

    def assign(self, meta, children):
        return ast.Assign(self._name(children[0]), children[1], self._span(meta))

    def halt_stmt(self, meta, children):
        value = children[0]
        return ast.HaltStmt(None if value is None else float(value), self._span(meta))

    def wire_app(self, meta, children):
        return ast.WireApp(children[0], tuple(c for c in children[1:] if c is not None), self._span(meta))

    def gate_ref(self, meta, children):
        name, occurrence = children
        num = None if occurrence is None else ast.Num(int(occurrence), _span_of_token(self.file, occurrence))
        return ast.GateRef(self._name(name), num, self._span(meta))

    def kwarg(self, meta, children):
        name, value = children
        return ast.KeywordArg(self._name(name), ast.Num(self._int(value), _span_of_token(self.file, value)), self._span(meta))

    def halt(self, meta, children):
        return ast.HaltSetting(self._name(children[0]), self._span(meta))

    def write_returns(self, meta, children):
        return ast.WriteReturnsSetting(self._name(children[0]), self._span(meta))

    def task(self, meta, children):
        return ast.TaskSetting(self._name(children[0]), self._span(meta))

    def train(self, meta, children):
        return ast.TrainSetting(tuple(c for c in children if c is not None), self._span(meta))

    def train_entry(self, meta, children):
        return ast.TrainEntry(children[0], children[1], self._span(meta))

    def train_key(self, meta, children):
        """`noise.eta`: one name whose span runs from its first part to its last."""
        return ast.Name(".".join(str(t) for t in children), self._span(meta))

    def tv_int(self, meta, children):
        return self._int(children[0])

    def tv_neg_int(self, meta, children):
        return -self._int(children[0])

    def tv_float(self, meta, children):
        return float(children[0])

    def tv_neg_float(self, meta, children):
        return -float(children[0])

    def tv_string(self, meta, children):
        return str(children[0])[1:-1]

    def tv_name(self, meta, children):
        return str(children[0])


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "NAME":
        return f"identifier '{tok}'"
    if tok.type == "INT":
        return f"integer {tok}"
    if tok.type == "DOT":  # '.' belongs only inside a dotted train key: anywhere else it is a stray character
        return "character '.'"
    return f"'{tok}'"


def _expected(names: set[str] | frozenset[str] | None) -> str:
    shown = _terminal_display()
    words = sorted({shown.get(n, n) for n in names or ()})
    if not words:
        return ""
    if len(words) == 1:
        return f"; expected {words[0]}"
    return "; expected one of " + ", ".join(words)


def _did_you_mean(tok: Token, names: set[str] | frozenset[str] | None) -> str:
    """`registrs` where `registers` is expected: the closest expected keyword, if one is close."""
    if not str(tok).isidentifier():
        return ""
    shown = _terminal_display()
    words = [w[1:-1] for w in (shown.get(n, "") for n in names or ()) if w.startswith("'") and w[1:-1].isidentifier()]
    close = difflib.get_close_matches(str(tok), words, n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


# Comments, strings, braces and words: enough to follow which blocks are open, whatever else is wrong.
_BLOCK_TOKENS = re.compile(r'#[^\n]*|"[^"\n]*"?|[{}]|[A-Za-z_][A-Za-z0-9_]*')


def _open_block(text: str, upto: int) -> tuple[str, int] | None:
    """The innermost block still open at offset `upto`: how to name it, and the offset of its `{`."""
    stack: list[tuple[str, int]] = []
    words: list[str] = []
    for m in _BLOCK_TOKENS.finditer(text, 0, upto):
        tok = m.group()
        if tok == "{":
            kind, name = (words[-2:] if len(words) >= 2 else ["", *words])[-2:]
            described = {"gates": f"gate set '{name}'", "machine": f"machine '{name}'"}.get(kind, "")
            stack.append((described or ("train block" if name == "train" else "block"), m.start()))
        elif tok == "}":
            if stack:
                stack.pop()
        elif tok[0] not in '#"':
            words.append(tok)
    return stack[-1] if stack else None


def _unclosed(text: str, upto: int, names: set[str] | frozenset[str] | None) -> str:
    """A note for an error where `}` would have been accepted: which block is still open, and where."""
    if "RBRACE" not in (names or ()):
        return ""
    found = _open_block(text, upto)
    if found is None:
        return ""
    what, offset = found
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f" ({what}, opened at {line}:{column}, is not closed)"


def _syntax_error(exc: UnexpectedInput, file: str, text: str) -> SyntaxError_:
    line, col = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        names = exc.accepts or exc.expected
        expected = _expected(names)
        if tok.type == "$END":
            line, col, width = _end_position(text)
            note = _unclosed(text, len(text), names)
            return SyntaxError_(f"unexpected end of file{expected}{note}", Span(file, line, col, line, col + width), text)
        span = Span(file, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1)
        note = _did_you_mean(tok, names)
        if tok.type in ("MACHINE", "GATES", "IMPORT"):  # the next item began inside a block: a `}` is missing
            note += _unclosed(text, tok.start_pos or 0, names)
        return SyntaxError_(f"unexpected {_describe_token(tok)}{expected}{note}", span, text)
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else "?"
        expected = _expected(exc.allowed)
        return SyntaxError_(f"unexpected character {char!r}{expected}", Span(file, line, col, line, col + 1), text)
    if isinstance(exc, UnexpectedEOF):
        line, col, width = _end_position(text)
        note = _unclosed(text, len(text), set(exc.expected))
        return SyntaxError_(f"unexpected end of file{_expected(set(exc.expected))}{note}", Span(file, line, col, line, col + width), text)
    return SyntaxError_(str(exc).splitlines()[0], Span(file, line, col, line, col + 1), text)  # pragma: no cover


def _end_position(text: str) -> tuple[int, int, int]:
    """Where to put the caret for an unexpected end of file: just after the last character that is not
    the grammar's whitespace, on lines counted as the parser counts them (at "\\n" only)."""
    lines = text.split("\n")
    n = len(lines)
    while n > 1 and not lines[n - 1].strip(_WHITESPACE):
        n -= 1
    return n, len(lines[n - 1].rstrip(_WHITESPACE)) + 1, 1


_WHITESPACE = " \t\f\r"  # the grammar's WS besides "\n"


def _expr_size(e: ast.Expr) -> tuple[int, int]:
    """Nesting depth and number of operations, computed without recursion (the point is to refuse trees
    too deep to recurse on)."""
    deepest, nodes, stack = 0, 0, [(e, 1)]
    while stack:
        node, d = stack.pop()
        deepest, nodes = max(deepest, d), nodes + 1
        stack.extend((c, d + 1) for c in ast.children(node))
    return deepest, nodes


def _check_expressions(module: ast.Module, text: str) -> None:
    for item in module.items:
        if isinstance(item, ast.GateSet):
            for g in item.gates:
                depth, nodes = _expr_size(g.body)
                where = f"gate '{g.name.value}': "
                if depth > limits.EXPR_DEPTH.value:
                    raise limits.EXPR_DEPTH.error(depth, g.body.span, text, where)
                if nodes > limits.EXPR_NODES.value:
                    raise limits.EXPR_NODES.error(nodes, g.body.span, text, where)


def parse(text: str, file: str = "<string>") -> ast.Module:
    """Parse one file's text. Raises `SyntaxError_` (with the source attached for the caret line)."""
    try:
        tree: Tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, file, text) from None
    try:
        module = _ToAst(file).transform(tree)
    except VisitError as exc:  # lark wraps what a rule raises; ours are located already
        if isinstance(exc.orig_exc, NramError):
            err = exc.orig_exc
            raise type(err)(err.message, err.span, text) from None
        raise
    _check_expressions(module, text)
    return module
