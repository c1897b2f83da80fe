"""The syntax tree of an .nram file: frozen dataclasses, every node with a real source span.

The parser (`nramdsl.lang.parse`) builds these; `nramdsl.lang.check` checks and resolves them. Nothing here
knows about M or gates' meaning. Every node carries `span`; names are `Name` nodes so that errors about a
name point at the name itself, not at the construct around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union

from nramdsl.errors import Span


@dataclass(frozen=True)
class Name:
    """An identifier where it is written."""

    value: str
    span: Span


# ---- expressions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: int
    span: Span


@dataclass(frozen=True)
class Var:
    """A parameter of the gate, or `M`."""

    name: str
    span: Span


@dataclass(frozen=True)
class UnaryOp:
    op: str  # "-"
    operand: Expr
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # "+", "-", "*", "//", "mod"
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Compare:
    op: str  # "<", "<=", ">", ">=", "==", "!="
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and", "or" (short-circuiting, result 1/0)
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Not:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    """`min(a, b)`, `max(a, b)`, `abs(a)`; any other name is rejected by the semantic check."""

    func: Name
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class IfExpr:
    cond: Expr
    then: Expr
    orelse: Expr
    span: Span


Expr = Union[Num, Var, UnaryOp, BinOp, Compare, BoolOp, Not, Call, IfExpr]


def children(e: Expr) -> tuple[Expr, ...]:
    """The direct subexpressions of `e`, left to right."""
    if isinstance(e, (UnaryOp, Not)):
        return (e.operand,)
    if isinstance(e, (BinOp, Compare, BoolOp)):
        return (e.left, e.right)
    if isinstance(e, Call):
        return e.args
    if isinstance(e, IfExpr):
        return (e.cond, e.then, e.orelse)
    return ()


# ---- gate sets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Via:
    """`via "module:function"`: a hand-written batched kernel for the gate."""

    target: str
    span: Span


@dataclass(frozen=True)
class GateDef:
    name: Name
    params: tuple[Name, ...]
    body: Expr
    via: Via | None
    span: Span
    is_const: bool = False  # written `const NAME = …` (the same as a 0-ary `gate NAME() = …`)


@dataclass(frozen=True)
class GateSet:
    name: Name
    gates: tuple[GateDef, ...]
    span: Span


# ---- machines ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UseSetting:
    KEY: ClassVar[str] = "use"
    sets: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class SizeSetting:
    """`registers R`, `memory M` or `timesteps T`; `key` says which."""

    key: str
    value: Num
    span: Span

    @property
    def KEY(self) -> str:  # noqa: N802 - same interface as the other settings' class constant
        return self.key


@dataclass(frozen=True)
class CircuitSetting:
    KEY: ClassVar[str] = "circuit"
    gates: tuple[Name, ...]
    repeat: Num | None  # `circuit (…) * k`; None means once
    span: Span


@dataclass(frozen=True)
class KeywordArg:
    name: Name
    value: Num
    span: Span


@dataclass(frozen=True)
class ControllerSetting:
    KEY: ClassVar[str] = "controller"
    kind: Name
    args: tuple[KeywordArg, ...]
    span: Span


@dataclass(frozen=True)
class HaltSetting:
    KEY: ClassVar[str] = "halt"
    mode: Name
    span: Span


@dataclass(frozen=True)
class WriteReturnsSetting:
    KEY: ClassVar[str] = "write returns"
    mode: Name
    span: Span


@dataclass(frozen=True)
class TaskSetting:
    KEY: ClassVar[str] = "task"
    task: Name
    span: Span


@dataclass(frozen=True)
class TrainEntry:
    key: Name
    value: int | float | str  # identifiers are stored as their text
    span: Span


@dataclass(frozen=True)
class TrainSetting:
    KEY: ClassVar[str] = "train"
    entries: tuple[TrainEntry, ...]
    span: Span


# ---- table controllers (`controller table { when r1 == 0 { … } … }`; resolved by nramdsl.lang.table) ------


@dataclass(frozen=True)
class GateRef:
    """`add`, or `add.2` for the second `add` of a repeated circuit; a bare name may also be a register."""

    name: Name
    occurrence: Num | None
    span: Span


@dataclass(frozen=True)
class WireApp:
    """`add(r4, r2)`: the gate's arguments in this row; nested applications wire earlier gates."""

    gate: GateRef
    args: tuple[WireSource, ...]
    span: Span


WireSource = Union[GateRef, WireApp]


@dataclass(frozen=True)
class Condition:
    """`r1 == 0` (zero=True) or `r1 != 0`; `value` must be 0 (the controller sees only zero-ness)."""

    register: Name
    zero: bool
    value: Num
    span: Span


@dataclass(frozen=True)
class Assign:
    """`r3 = inc(r3)`: the register's value after the step (Eq. 3)."""

    register: Name
    source: WireSource
    span: Span


@dataclass(frozen=True)
class HaltStmt:
    """`halt` (willingness to finish f = 1) or `halt 0.25`; a row without it has f = 0."""

    probability: float | None
    span: Span


RowStmt = Union[Assign, WireApp, HaltStmt]


@dataclass(frozen=True)
class TableRow:
    conditions: tuple[Condition, ...]  # empty for `otherwise`
    body: tuple[RowStmt, ...]
    span: Span
    otherwise: bool = False


@dataclass(frozen=True)
class TableSetting:
    KEY: ClassVar[str] = "controller"
    args: tuple[KeywordArg, ...]
    rows: tuple[TableRow, ...]
    span: Span


Setting = Union[
    UseSetting,
    SizeSetting,
    CircuitSetting,
    ControllerSetting,
    TableSetting,
    HaltSetting,
    WriteReturnsSetting,
    TaskSetting,
    TrainSetting,
]


@dataclass(frozen=True)
class Machine:
    name: Name
    settings: tuple[Setting, ...]
    span: Span


# ---- files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    path: str  # as written, relative to the importing file
    span: Span


Item = Union[Import, GateSet, Machine]


@dataclass(frozen=True)
class Module:
    """One parsed file."""

    file: str
    items: tuple[Item, ...]
    span: Span
