"""The integer semantics of gate bodies: an AST expression compiled to a Python function.

`compile_gate(params, body)` returns `evaluate(M, *args)` for `nramdsl.lang.spec.Gate`. It works on Python ints
(the reference machine's pointwise step, exact big-int arithmetic) and on numpy int64 arrays that
broadcast (one call tabulates the whole gate). Semantics:

- `+ - *`, floor division `//` and floor modulo `mod` as in Python (numpy's are the same);
- comparisons give 1/0; `and`, `or`, `not` test truthiness (nonzero) and give 1/0;
- `and`, `or` and `if … then … else …` short-circuit, so `b != 0 and a // b > 1` is total.

Short-circuiting on arrays: both sides are computed for every point, so a `//` or `mod` by zero in a
branch that is not taken at some point would raise (under `np.errstate(all="raise")`) although the
scalar evaluation at that point does not. To keep scalar and array evaluation in agreement, every
operation is evaluated under a *mask* of the points where it is live; `//` and `mod` replace the divisor
by 1 where the mask is false. At live points a zero divisor still raises, exactly as the scalar does.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np

from nramdsl.lang import syntax as ast

Value = Any  # a Python int or a numpy int64 array / scalar
Mask = Any  # None (every point live) or a numpy bool array
Env = dict[str, Value]
Compiled = Callable[[Env, Mask], Value]

FUNCTIONS: dict[str, int] = {"min": 2, "max": 2, "abs": 1}  # the only callables in gate bodies, by arity


def _is_array(x: Value) -> bool:
    return isinstance(x, (np.ndarray, np.generic))


def _truth(x: Value) -> Value:
    """Nonzero test: a bool for Python ints, a bool array for arrays."""
    return x != 0 if _is_array(x) else bool(x)


def _as_int(b: Value) -> Value:
    """A boolean (Python or numpy) as 1/0 of the same kind."""
    return np.asarray(b).astype(np.int64) if _is_array(b) else int(b)


def _live(mask: Mask, cond: Value) -> Mask:
    return cond if mask is None else mask & cond


def _safe_divisor(b: Value, mask: Mask) -> Value:
    """The divisor with 1 at points that are not live (see the module docstring)."""
    if mask is None:
        return b
    return np.where(mask, b, 1)


_ARITH: dict[str, Callable[[Value, Value], Value]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "//": operator.floordiv,
    "mod": operator.mod,
}
_COMPARE: dict[str, Callable[[Value, Value], Value]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _minmax(pick_array: Callable, pick_int: Callable) -> Callable[[Value, Value], Value]:
    def f(a: Value, b: Value) -> Value:
        return pick_array(a, b) if _is_array(a) or _is_array(b) else pick_int(a, b)

    return f


_CALLS: dict[str, Callable[..., Value]] = {
    "min": _minmax(np.minimum, min),
    "max": _minmax(np.maximum, max),
    "abs": lambda a: np.abs(a) if _is_array(a) else abs(a),
}


def compile_expr(e: ast.Expr) -> Compiled:
    """Compile a checked expression (every name bound, every call valid) to `f(env, mask)`."""
    if isinstance(e, ast.Num):
        value = e.value
        return lambda env, mask: value
    if isinstance(e, ast.Var):
        name = e.name
        return lambda env, mask: env[name]
    if isinstance(e, ast.UnaryOp):
        f = compile_expr(e.operand)
        return lambda env, mask: -f(env, mask)
    if isinstance(e, ast.Not):
        f = compile_expr(e.operand)
        return lambda env, mask: _as_int(np.logical_not(v) if _is_array(v := _truth(f(env, mask))) else not v)
    if isinstance(e, ast.BinOp):
        return _compile_binop(e)
    if isinstance(e, ast.Compare):
        lf, rf, cmp = compile_expr(e.left), compile_expr(e.right), _COMPARE[e.op]
        return lambda env, mask: _as_int(cmp(lf(env, mask), rf(env, mask)))
    if isinstance(e, ast.BoolOp):
        return _compile_boolop(e)
    if isinstance(e, ast.Call):
        fs, call = [compile_expr(a) for a in e.args], _CALLS[e.func.value]
        return lambda env, mask: call(*(f(env, mask) for f in fs))
    if isinstance(e, ast.IfExpr):
        return _compile_if(e)
    raise TypeError(f"not an expression: {e!r}")  # pragma: no cover - the parser makes no other node


def _compile_binop(e: ast.BinOp) -> Compiled:
    lf, rf, op = compile_expr(e.left), compile_expr(e.right), _ARITH[e.op]
    if e.op in ("//", "mod"):
        return lambda env, mask: op(lf(env, mask), _safe_divisor(rf(env, mask), mask))
    return lambda env, mask: op(lf(env, mask), rf(env, mask))


def _compile_boolop(e: ast.BoolOp) -> Compiled:
    lf, rf, is_and = compile_expr(e.left), compile_expr(e.right), e.op == "and"

    def run(env: Env, mask: Mask) -> Value:
        left = _truth(lf(env, mask))
        if not _is_array(left):  # scalar condition: short-circuit as Python does
            if left != is_and:
                return int(left)
            return _as_int(_truth(rf(env, mask)))
        right = _truth(rf(env, _live(mask, left if is_and else ~left)))
        return _as_int((left & right) if is_and else (left | right))

    return run


def _compile_if(e: ast.IfExpr) -> Compiled:
    cf, tf, ef = compile_expr(e.cond), compile_expr(e.then), compile_expr(e.orelse)

    def run(env: Env, mask: Mask) -> Value:
        cond = _truth(cf(env, mask))
        if not _is_array(cond):
            return tf(env, mask) if cond else ef(env, mask)
        return np.where(cond, tf(env, _live(mask, cond)), ef(env, _live(mask, ~cond))).astype(np.int64)

    return run


def compile_gate(params: tuple[str, ...], body: ast.Expr) -> Callable[..., Value]:
    """`evaluate(M, *args)` for a gate with these parameters (see `nramdsl.lang.spec.Gate`)."""
    f = compile_expr(body)

    def evaluate(M: Value, *args: Value) -> Value:
        if len(args) != len(params):
            raise TypeError(f"expected {len(params)} arguments, got {len(args)}")
        env = dict(zip(params, args))
        env["M"] = M
        return f(env, None)

    return evaluate


# ---- how large the values of a body can get, before computing any of them

_CAP = 1 << 64  # interval ends saturate here: past 2^63 only "too large" matters


def _clamp(lo: int, hi: int) -> tuple[int, int]:
    return max(-_CAP, min(lo, _CAP)), max(-_CAP, min(hi, _CAP))


def _interval(e: ast.Expr, M: int, peak: list[int]) -> tuple[int, int]:
    """Bounds [lo, hi] of `e` over every input in [0, M); `peak[0]` collects the largest magnitude of any
    subexpression. Conservative: `if` takes both branches, `//` and `mod` any nonzero divisor."""
    if isinstance(e, ast.Num):
        lo = hi = e.value
    elif isinstance(e, ast.Var):
        lo, hi = (M, M) if e.name == "M" else (0, M - 1)
    elif isinstance(e, (ast.Compare, ast.BoolOp, ast.Not)):
        for c in ast.children(e):
            _interval(c, M, peak)
        lo, hi = 0, 1
    elif isinstance(e, ast.UnaryOp):
        a, b = _interval(e.operand, M, peak)
        lo, hi = -b, -a
    elif isinstance(e, ast.BinOp):
        (a, b), (c, d) = _interval(e.left, M, peak), _interval(e.right, M, peak)
        if e.op == "+":
            lo, hi = a + c, b + d
        elif e.op == "-":
            lo, hi = a - d, b - c
        elif e.op == "*":
            products = (a * c, a * d, b * c, b * d)
            lo, hi = min(products), max(products)
        elif e.op == "//":  # |x // y| <= |x| for |y| >= 1
            lo, hi = -max(abs(a), abs(b)), max(abs(a), abs(b))
        else:  # mod: strictly inside (-|y|, |y|)
            top = max(abs(c), abs(d))
            lo, hi = -top, top
    elif isinstance(e, ast.Call):
        bounds = [_interval(x, M, peak) for x in e.args]
        if e.func.value == "abs":
            (a, b), = bounds
            lo, hi = (0 if a <= 0 <= b else min(abs(a), abs(b))), max(abs(a), abs(b))
        else:
            pick = min if e.func.value == "min" else max
            lo, hi = pick(x[0] for x in bounds), pick(x[1] for x in bounds)
    else:  # IfExpr
        _interval(e.cond, M, peak)
        (a, b), (c, d) = _interval(e.then, M, peak), _interval(e.orelse, M, peak)
        lo, hi = min(a, c), max(b, d)
    lo, hi = _clamp(lo, hi)
    peak[0] = max(peak[0], abs(lo), abs(hi))
    return lo, hi


def value_bound(body: ast.Expr, M: int) -> int:
    """The largest magnitude any intermediate value of `body` can take at M (saturating at 2^64): tables are
    computed in 64-bit integers, where numpy wraps around silently, so this must stay below 2^63."""
    peak = [0]
    _interval(body, M, peak)
    return peak[0]


def count_operations(body: ast.Expr) -> int:
    """Nodes of the expression: the numpy operations one evaluation runs (for the tabulation work limit)."""
    count, stack = 0, [body]
    while stack:
        count += 1
        stack.extend(ast.children(stack.pop()))
    return count
