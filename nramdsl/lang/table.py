"""Table controllers: a controller written as one row per zero-pattern of the registers (paper §3.4).

A feedforward controller sees only which registers are 0, so its discretized form *is* a table of at
most 2^R rows; `controller table { … }` writes such a table by hand:

    controller table {
      when r2 == 0 { r2 = dec(read(r1))  r3 = one  r4 = one }
      otherwise    { write(add(r4, r2), read(r4))  r3 = inc(r3)  r4 = min(inc, r2) }
    }

A row's conditions name some registers (`r1 == 0`, `r1 != 0`); the first row whose conditions hold is
the step's circuit. Its statements wire gates (`add(r4, r2)`, nested or on their own line, where a bare
`add` then means that gate's output) and set registers (`r3 = inc(r3)`). A row is complete when it wires
every gate with a side effect (`write`: a row that means to change nothing writes a cell back, e.g.
`write(r1, read(r1))`); registers it does not set keep their value, and gates it does not wire are not
needed (nothing sees their output). `halt` sets the willingness to finish f = 1 (`halt 0.25` any other
value); without it f = 0.

This module checks a table against its machine (names, arity, the circuit order, every zero-pattern
covered, no row shadowed) collecting every error, and resolves it to a `Table` whose sources are the
circuit graph's node ids: ("reg", j) for register r_{j+1}, ("gate", i) for the i-th gate of the circuit.

Zero-patterns are bit masks: bit j is set when r_{j+1} == 0 (`cube_of_mask`, `pattern_text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from nramdsl.errors import ArityError, DuplicateName, InvalidValue, MissingSetting, NramError, Span, UnknownName
from nramdsl.lang import syntax as ast

Source = tuple[str, int]  # ("reg", j) or ("gate", i)
Report = Callable[[type[NramError], str, "Span | None"], None]

# Logit margin of a compiled table (`controller table(scale = …)`): the chosen candidate's logit minus
# the others'. At 30 the others' softmax mass is e^-30 ≈ 1e-13 per candidate, so the fuzzy run stays one-hot
# in float32 for thousands of steps (tested to complexity 50); smaller scales leave room to train.
DEFAULT_SCALE = 30
# A table has 2^R rows and compiles to 2^R hidden units.
MAX_TABLE_REGISTERS = 12
_REGISTER = re.compile(r"^r([0-9]+)$")


@dataclass(frozen=True)
class Rule:
    """One row of a table, resolved."""

    cube: tuple[bool | None, ...]  # per register: True = must be 0, False = must not be 0, None = either
    wires: tuple[tuple[int, tuple[Source, ...]], ...]  # (gate index, its argument sources), by gate index
    updates: tuple[tuple[int, Source], ...]  # (register index, source); registers not listed keep their value
    halt: float  # the willingness to finish f in this row
    span: Span | None = None

    def matches(self, mask: int) -> bool:
        return all(want is None or want == bool(mask >> j & 1) for j, want in enumerate(self.cube))


@dataclass(frozen=True)
class Table:
    rules: tuple[Rule, ...]
    registers: int
    scale: int = DEFAULT_SCALE
    span: Span | None = None

    def rule_for(self, mask: int) -> Rule:
        """The first rule whose conditions hold for the zero-pattern `mask` (the check proved one does)."""
        return next(r for r in self.rules if r.matches(mask))


def pattern_text(cube: Sequence[bool | None], sep: str = ", ") -> str:
    """`r1 == 0, r3 != 0` (registers that may be either are left out); '' when none is constrained."""
    return sep.join(f"r{j + 1} {'==' if z else '!='} 0" for j, z in enumerate(cube) if z is not None)


def cube_of_mask(mask: int, registers: int) -> tuple[bool, ...]:
    return tuple(bool(mask >> j & 1) for j in range(registers))


def register_index(name: str, registers: int) -> int | None:
    """`r3` -> 2 when the machine has at least 3 registers."""
    m = _REGISTER.match(name)
    return int(m.group(1)) - 1 if m and 1 <= int(m.group(1)) <= registers else None


class _RowChecker:
    """Resolves one row, reporting every error; `ok` says whether the row resolved cleanly."""

    def __init__(self, circuit: Sequence[str], arity: Mapping[str, int], effects: set[str], registers: int,
                 halts: bool, report: Report) -> None:
        self.circuit, self.arity, self.effects, self.R, self.report = circuit, arity, effects, registers, report
        self.halts = halts
        self.occurrences: dict[str, list[int]] = {}
        for i, name in enumerate(circuit):
            self.occurrences.setdefault(name, []).append(i)
        self.ok = True
        self.mentioned: set[int] = set()  # gates the current row wires (or tries to)

    def error(self, cls: type[NramError], message: str, span: Span | None) -> None:
        self.ok = False
        self.report(cls, message, span)

    def gate_name(self, i: int) -> str:
        """`add`, or `add.2` when the circuit repeats it."""
        name = self.circuit[i]
        found = self.occurrences[name]
        return name if len(found) == 1 else f"{name}.{found.index(i) + 1}"

    def register(self, name: ast.Name) -> int | None:
        j = register_index(name.value, self.R)
        if j is None:
            self.error(UnknownName, f"unknown register '{name.value}'; machine registers are r1 .. r{self.R}", name.span)
        return j

    def gate(self, ref: ast.GateRef) -> int | None:
        name = ref.name.value
        found = self.occurrences.get(name)
        if not found:
            self.error(UnknownName, f"'{name}' is not a gate of the circuit ({', '.join(dict.fromkeys(self.circuit))})", ref.span)
            return None
        if ref.occurrence is not None:
            k = ref.occurrence.value
            if not 1 <= k <= len(found):
                self.error(UnknownName, f"the circuit has {len(found)} '{name}' gate{'s' * (len(found) != 1)}, not {k}", ref.span)
                return None
            return found[k - 1]
        if len(found) > 1:
            which = " or ".join(f"{name}.{k}" for k in range(1, len(found) + 1))
            self.error(InvalidValue, f"the circuit has {len(found)} '{name}' gates: write {which}", ref.span)
            return None
        return found[0]

    def row(self, row: ast.TableRow) -> Rule | None:
        self.mentioned = set()
        cube = self.conditions(row)
        wires: dict[int, tuple[tuple[Source, ...], Span]] = {}
        bare: list[tuple[int, Span]] = []  # gates used by name: they must be wired somewhere in the row
        updates: dict[int, tuple[Source, Span]] = {}
        halt: tuple[float, Span] | None = None
        for stmt in row.body:
            if isinstance(stmt, ast.HaltStmt):
                if halt is not None:
                    self.error(DuplicateName, f"this row already says halt at {halt[1]}", stmt.span)
                f = 1.0 if stmt.probability is None else stmt.probability
                if not self.halts:
                    self.error(InvalidValue, "the machine never halts (`halt never`); a row cannot halt", stmt.span)
                elif not 0.0 <= f <= 1.0:
                    self.error(InvalidValue, f"halt takes a probability in [0, 1], got {f:g}", stmt.span)
                halt = (f, stmt.span)
            elif isinstance(stmt, ast.Assign):
                j = self.register(stmt.register)
                src = self.source(stmt.source, None, wires, bare)
                if j is not None and j in updates:
                    self.error(DuplicateName, f"r{j + 1} is already set in this row at {updates[j][1]}", stmt.register.span)
                elif j is not None and src is not None:
                    updates[j] = (src, stmt.span)
            else:
                self.wire(stmt, wires, bare)
        for i, name in enumerate(self.circuit):
            if name in self.effects and i not in self.mentioned:
                self.error(MissingSetting, f"this row does not wire '{self.gate_name(i)}'; every row must say what it "
                           f"writes (write(r1, read(r1)) writes a cell back unchanged)", row.span)
        for i, span in bare:
            if i not in self.mentioned and self.arity[self.circuit[i]] > 0:
                self.error(MissingSetting, f"gate '{self.gate_name(i)}' is used but not wired in this row; write "
                           f"{self.gate_name(i)}(…) with its arguments", span)
        if not self.ok or cube is None:
            return None
        return Rule(cube, tuple(sorted((i, w[0]) for i, w in wires.items())),
                    tuple(sorted((j, u[0]) for j, u in updates.items())), halt[0] if halt else 0.0, row.span)

    def conditions(self, row: ast.TableRow) -> tuple[bool | None, ...] | None:
        cube: list[bool | None] = [None] * self.R
        seen: dict[int, Span] = {}
        for c in row.conditions:
            j = self.register(c.register)
            if c.value.value != 0:
                self.error(InvalidValue, f"a row tests only whether a register is 0: write {c.register.value} == 0 "
                           f"or {c.register.value} != 0", c.value.span)
            if j is None:
                continue
            if j in seen:
                self.error(DuplicateName, f"r{j + 1} is already tested in this row at {seen[j]}", c.span)
            seen[j] = c.span
            cube[j] = c.zero
        return tuple(cube)

    def source(self, src: ast.WireSource, consumer: int | None, wires: dict, bare: list) -> Source | None:
        """A register, a gate's output by name, or a nested application (which wires that gate)."""
        if isinstance(src, ast.WireApp):
            i = self.wire(src, wires, bare)
            return None if i is None else self.visible(("gate", i), consumer, src.span)
        name = src.name.value
        j = register_index(name, self.R) if src.occurrence is None else None
        if j is not None:
            if name in self.occurrences:
                self.error(InvalidValue, f"'{name}' names both a register and a gate of the circuit; rename the gate",
                           src.span)
                return None
            return ("reg", j)
        if name not in self.occurrences and _REGISTER.match(name):
            self.register(src.name)
            return None
        i = self.gate(src)
        if i is None:
            return None
        bare.append((i, src.span))
        return self.visible(("gate", i), consumer, src.span)

    def visible(self, src: Source, consumer: int | None, span: Span) -> Source | None:
        """Gate i sees the registers and gates before it (Eq. 1); registers see every gate (Eq. 3)."""
        if consumer is not None and src[0] == "gate" and src[1] >= consumer:
            sees = "the registers" + (f" and gates 1 .. {consumer}" if consumer else "")
            self.error(InvalidValue, f"'{self.gate_name(consumer)}' is gate {consumer + 1} of the circuit and sees only "
                       f"{sees}; '{self.gate_name(src[1])}' is gate {src[1] + 1}", span)
            return None
        return src

    def wire(self, app: ast.WireApp, wires: dict, bare: list) -> int | None:
        i = self.gate(app.gate)
        if i is None:
            return None
        self.mentioned.add(i)  # wired, if with errors: no second error saying it is not
        name = self.circuit[i]
        want = self.arity[name]
        if len(app.args) != want:
            self.error(ArityError, f"gate '{name}' takes {want} argument{'s' * (want != 1)}, got {len(app.args)}", app.span)
            return None
        sources = tuple(self.source(a, i, wires, bare) for a in app.args)
        if None in sources:
            return None
        if i in wires and wires[i][0] != sources:
            self.error(DuplicateName, f"gate '{self.gate_name(i)}' is already wired differently in this row at {wires[i][1]}; "
                       f"the circuit evaluates it once per step", app.span)
            return None
        wires.setdefault(i, (sources, app.span))  # type: ignore[arg-type]
        return i


def _depth(src: ast.WireSource) -> int:
    """Nesting depth, without recursion (a too-deep row is refused before it is walked)."""
    deepest, stack = 0, [(src, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(node, ast.WireApp):
            stack.extend((a, d + 1) for a in node.args)
    return deepest


def _too_deep(row: ast.TableRow, limit: int) -> ast.RowStmt | None:
    for stmt in row.body:
        src = stmt.source if isinstance(stmt, ast.Assign) else stmt if isinstance(stmt, ast.WireApp) else None
        if src is not None and _depth(src) > limit:
            return stmt
    return None


def check_table(setting: ast.TableSetting, circuit: Sequence[str], arity: Mapping[str, int], effects: set[str],
                registers: int, halts: bool, report: Report) -> Table | None:
    """Check and resolve a table against its machine (`effects`: the gates that change memory, which every
    row must wire); every error goes to `report`. None when any was found."""
    before = _Counter(report)
    scale = _scale(setting, before)
    if registers > MAX_TABLE_REGISTERS:
        before(InvalidValue, f"a table controller has 2^R rows; R = {registers} is more than the "
               f"{MAX_TABLE_REGISTERS} registers a table may test", setting.span)
        return None
    checker = _RowChecker(circuit, arity, effects, registers, halts, before)
    rules: list[Rule | None] = []
    for row in setting.rows:
        deep = _too_deep(row, len(circuit) + 1)
        if deep is not None:
            before(InvalidValue, f"this statement nests gates deeper than the circuit has gates ({len(circuit)})", deep.span)
            rules.append(None)
            continue
        rules.append(checker.row(row))
    if before.count or None in rules:
        return None
    _check_cover([r for r in rules if r is not None], registers, setting.span, before)
    if before.count:
        return None
    return Table(tuple(r for r in rules if r is not None), registers, scale, setting.span)


def _check_cover(rules: list[Rule], registers: int, span: Span, report: Report) -> None:
    """Every zero-pattern has a row, and every row is the first match of some zero-pattern."""
    used: set[int] = set()
    missing: list[int] = []
    for mask in range(1 << registers):
        first = next((k for k, r in enumerate(rules) if r.matches(mask)), None)
        if first is None:
            missing.append(mask)
        else:
            used.add(first)
    if missing:
        shown = "; ".join(pattern_text(cube_of_mask(m, registers)) for m in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        report(MissingSetting, f"no row of the table applies when {shown}{more}; add rows or an `otherwise` row", span)
    for k, rule in enumerate(rules):
        if k not in used:
            report(InvalidValue, "this row never applies: the rows above it cover every zero-pattern it matches",
                   rule.span)


def _scale(setting: ast.TableSetting, report: Report) -> int:
    scale = DEFAULT_SCALE
    seen: set[str] = set()
    for a in setting.args:
        key = a.name.value
        if key in seen:
            report(DuplicateName, f"table argument '{key}' is given twice", a.name.span)
        elif key != "scale":
            report(UnknownName, f"unknown table argument '{key}'; expected scale", a.name.span)
        elif a.value.value < 1:
            report(InvalidValue, f"scale must be at least 1, got {a.value.value}", a.value.span)
        else:
            scale = a.value.value
        seen.add(key)
    return scale


class _Counter:
    """Forwards errors to a report and counts them."""

    def __init__(self, report: Report) -> None:
        self.report, self.count = report, 0

    def __call__(self, cls: type[NramError], message: str, span: Span | None) -> None:
        self.count += 1
        self.report(cls, message, span)
