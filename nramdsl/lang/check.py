"""Check a `Program` and resolve a machine to a `MachineSpec`.

Every check runs in one pass and *collects* errors (sorted by position on the way out), so a user sees
all problems at once. The checks:

- program: duplicate gate set names and machine names (across all loaded files);
- gate sets: duplicate gate names, duplicate parameters, reserved names (keywords, `read`, `write`, `M`),
  unknown names in bodies, calls other than `min`/`max`/`abs` (user gates are not callable in bodies),
  wrong arity, malformed `via`;
- machines: duplicate and missing settings, unknown or ambiguous gate sets, circuit gates that no `use`
  brings in, sizes out of range, unknown controller / halt / write-returns values, repeated train keys;
- totality: every gate of a machine's circuit is tabulated at that machine's M (after overrides) by
  `nramdsl.lang.tabulate.tabulate`; `check_program` also tabulates gates no circuit uses, at `DEFAULT_CHECK_M`.

`Gate.span` is the span of the gate's *body*: that is what a totality error points at.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, get_args

from nramdsl import limits
from nramdsl.errors import (
    ArityError,
    DuplicateName,
    ErrorList,
    InvalidValue,
    MissingSetting,
    NramError,
    ReservedName,
    Span,
    TotalityError,
    UnknownName,
)
from nramdsl.lang import syntax as ast
from nramdsl.lang.gate_eval import FUNCTIONS, compile_gate, count_operations, value_bound
from nramdsl.lang.load import Program, SourceFile
from nramdsl.lang.parse import keywords
from nramdsl.lang.spec import BUILTIN_GATES, READ, WRITE, ControllerKind, ControllerSpec, Gate, HaltMode, MachineSpec, WriteReturns
from nramdsl.lang.table import check_table
from nramdsl.lang.tabulate import check_fits_64_bits, tabulable, tabulate

# M at which check_program proves totality of gates that no machine's circuit uses.
DEFAULT_CHECK_M = 16

# The grammar's keywords: the contextual lexer lets them through as names, so they are refused here.
# `min`, `max`, `abs` are not keywords: the paper's gates are called min and max.
KEYWORDS = keywords()
RESERVED_GATE_NAMES = KEYWORDS | set(BUILTIN_GATES) | {"M"}

BUILTIN_GATE_OBJECTS: dict[str, Gate] = {
    READ: Gate(READ, ("p",), None, None, builtin=READ),
    WRITE: Gate(WRITE, ("p", "v"), None, None, builtin=WRITE),
}

REQUIRED_SETTINGS = ("registers", "memory", "timesteps", "circuit")
MIN_SIZE = {"registers": 1, "memory": 2, "timesteps": 1}
SIZE_LIMITS = {"registers": limits.REGISTERS, "memory": limits.MEMORY, "timesteps": limits.TIMESTEPS}
OVERRIDE_KEYS = {"M": "memory", "memory": "memory", "R": "registers", "registers": "registers",
                 "T": "timesteps", "timesteps": "timesteps"}  # fmt: skip
CONTROLLERS: tuple[str, ...] = tuple(k for k in get_args(ControllerKind) if k != "table")  # table: its own syntax
CONTROLLER_ARGS = {"hidden": ControllerSpec.hidden}  # the only controller argument, and its default
HALT_MODES: tuple[str, ...] = get_args(HaltMode)
WRITE_RETURNS: tuple[str, ...] = get_args(WriteReturns)

_VIA = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


SUGGEST_FROM = 500  # a did-you-mean compares with every candidate: past this many, none is offered


def _suggest(name: str, candidates: list[str]) -> str:
    if len(candidates) > SUGGEST_FROM:
        return ""
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


@functools.lru_cache(maxsize=None)
def _build_gate(g: ast.GateDef, folder: str) -> Gate:
    """One Gate object per definition, so `tabulate`'s cache is shared by every resolution."""
    params = tuple(p.value for p in g.params)
    return Gate(
        name=g.name.value,
        params=params,
        span=g.body.span,
        evaluate=compile_gate(params, g.body),
        via=g.via.target if g.via else None,
        via_span=g.via.span if g.via else None,
        source_dir=folder,
        operations=count_operations(g.body),
        value_bound=functools.partial(value_bound, g.body),
    )


@dataclass
class _SetInfo:
    """A gate set, its file, and the definitions that passed their checks (the rest cannot be built)."""

    node: ast.GateSet
    file: SourceFile
    gates: dict[str, ast.GateDef] = field(default_factory=dict)  # first definition of each name
    valid: set[ast.GateDef] = field(default_factory=set)


class _Checker:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.errors: list[NramError] = []
        self.sets: dict[str, _SetInfo] = {}
        # Machine names are scoped by file: an imported file's machine may share a name with one of the
        # importer's (copy.nram imports paper.nram, and both define `copy`). Keyed by (file path, name).
        self.machines: dict[tuple[str, str], tuple[ast.Machine, SourceFile]] = {}
        self._totality_done: set[tuple[str, int]] = set()  # (gate span, M) already reported / proven
        self._all_gates: set[str] | None = None

    # ---- reporting
    def error(self, cls: type[NramError], message: str, span: Span | None) -> None:
        self.errors.append(cls(message, span, self._source(span)))

    def _source(self, span: Span | None) -> str | None:
        return self.program.sources.get(span.file) if span else None

    # ---- program level
    def check_names(self) -> None:
        for gs, file in self.program.gatesets():
            name = gs.name.value
            if name in self.sets:
                first = self.sets[name].node.name.span
                self.error(DuplicateName, f"gate set '{name}' is already defined at {first}", gs.name.span)
                continue
            if name in KEYWORDS:
                self.error(ReservedName, f"'{name}' is a keyword and cannot name a gate set", gs.name.span)
            self.sets[name] = _SetInfo(gs, file)
        for m, file in self.program.machines():
            name = m.name.value
            if (file.path, name) in self.machines:
                first = self.machines[file.path, name][0].name.span
                self.error(DuplicateName, f"machine '{name}' is already defined at {first}", m.name.span)
                continue
            if name in KEYWORDS:
                self.error(ReservedName, f"'{name}' is a keyword and cannot name a machine", m.name.span)
            self.machines[file.path, name] = (m, file)

    # ---- gate sets
    def all_gates(self) -> set[str]:
        """Every gate name of every gate set, computed once (a file may hold thousands of sets)."""
        if self._all_gates is None:
            self._all_gates = {g.name.value for i in self.sets.values() for g in i.node.gates}
        return self._all_gates

    def check_gateset(self, info: _SetInfo) -> None:
        all_gates = self.all_gates()
        for g in info.node.gates:
            ok = True
            name = g.name.value
            if name in info.gates:
                first = info.gates[name].name.span
                self.error(DuplicateName, f"gate '{name}' is already defined in gate set '{info.node.name.value}' at {first}", g.name.span)
                ok = False
            else:
                info.gates[name] = g
            if name in RESERVED_GATE_NAMES:
                self.error(ReservedName, _reserved_why(name, "a gate"), g.name.span)
                ok = False
            seen: set[str] = set()
            for p in g.params:
                if p.value in seen:
                    self.error(DuplicateName, f"parameter '{p.value}' appears twice in gate '{name}'", p.span)
                    ok = False
                seen.add(p.value)
                if p.value == "M":
                    self.error(ReservedName, "'M' is the memory size and cannot be a parameter", p.span)
                    ok = False
                elif p.value in KEYWORDS:
                    self.error(ReservedName, f"'{p.value}' is a keyword and cannot be a parameter", p.span)
                    ok = False
            ok = self.check_body(g, seen, all_gates) and ok
            if g.via and not _VIA.match(g.via.target):
                self.error(InvalidValue, f"via \"{g.via.target}\" is not of the form \"module:function\"", g.via.span)
                ok = False
            if ok:
                info.valid.add(g)

    def check_body(self, g: ast.GateDef, params: set[str], all_gates: set[str]) -> bool:
        ok = True
        stack: list[ast.Expr] = [g.body]
        while stack:
            e = stack.pop()
            stack.extend(reversed(ast.children(e)))
            if isinstance(e, ast.Var) and e.name not in params and e.name != "M":
                known = sorted(params) + ["M"]
                self.error(UnknownName, f"unknown name '{e.name}' in gate '{g.name.value}'{_suggest(e.name, known)}", e.span)
                ok = False
            elif isinstance(e, ast.Call):
                fname = e.func.value
                if fname not in FUNCTIONS:
                    if fname in all_gates or fname in BUILTIN_GATES:
                        msg = f"gate '{fname}' cannot be called in a gate body; only min, max and abs can"
                    else:
                        msg = f"unknown function '{fname}'{_suggest(fname, list(FUNCTIONS))}; only min, max and abs can be called"
                    self.error(UnknownName, msg, e.func.span)
                    ok = False
                elif len(e.args) != FUNCTIONS[fname]:
                    want = FUNCTIONS[fname]
                    self.error(ArityError, f"{fname} takes {want} argument{'s' * (want != 1)}, got {len(e.args)}", e.span)
                    ok = False
        return ok

    # ---- machines
    def check_machine(self, m: ast.Machine, file: SourceFile, overrides: Mapping[str, int]) -> MachineSpec | None:
        before = len(self.errors)
        mname = m.name.value
        settings: dict[str, Any] = {}
        for s in m.settings:
            if s.KEY in settings:
                first = settings[s.KEY].span
                self.error(DuplicateName, f"setting '{s.KEY}' of machine '{mname}' is already given at {first}", s.span)
            else:
                settings[s.KEY] = s
        for key in REQUIRED_SETTINGS:
            if key not in settings:
                self.error(MissingSetting, f"machine '{mname}' has no '{key}' setting", m.name.span)

        sizes = self.sizes(settings, overrides)
        available = self.check_use(m, settings.get("use"))
        circuit = self.check_circuit(m, settings.get("circuit"), available)
        controller = self.check_controller(settings.get("controller"))
        halt = self.check_choice(settings.get("halt"), "halt", HALT_MODES, "learned")
        write_returns = self.check_choice(settings.get("write returns"), "write returns", WRITE_RETURNS, "zero")
        train = self.check_train(settings.get("train"))
        task = settings["task"].task.value if "task" in settings else None

        # Gates come from the names as written, so totality is checked even if the circuit has other errors.
        gates: dict[str, Gate] = {}
        named = settings["circuit"].gates if "circuit" in settings else ()
        for gname in dict.fromkeys(r.value for r in named):
            if gname in BUILTIN_GATE_OBJECTS:
                gates[gname] = BUILTIN_GATE_OBJECTS[gname]
            elif gname in available:
                g, info = available[gname]
                if g in info.valid:
                    gates[gname] = _build_gate(g, info.file.folder)
        if sizes.get("memory") is not None:
            for gate in gates.values():
                if gate.evaluate is not None:
                    self.totality(gate, sizes["memory"], f"machine '{mname}'")

        setting = settings.get("controller")
        if isinstance(setting, ast.TableSetting) and circuit is not None and sizes.get("registers") is not None:
            controller = self.check_table(setting, circuit, gates, sizes["registers"], halt)

        if len(self.errors) > before or circuit is None or None in sizes.values():
            return None
        return MachineSpec(
            name=mname,
            span=m.name.span,
            registers=sizes["registers"],
            memory=sizes["memory"],
            timesteps=sizes["timesteps"],
            circuit=tuple(circuit),
            gates=gates,
            controller=controller,
            halt=halt,
            write_returns=write_returns,
            task=task,
            train=train,
            source=file.path,
            uses=tuple(r.value for r in settings["use"].sets) if "use" in settings else (),
            where=_setting_spans(settings, overrides),
        )

    def sizes(self, settings: dict[str, Any], overrides: Mapping[str, int]) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for key, least in MIN_SIZE.items():
            if key in overrides:
                value, span, where = overrides[key], None, f"override {key}={overrides[key]}: "
            elif key in settings:
                value, span, where = settings[key].value.value, settings[key].value.span, ""
            else:
                out[key] = None
                continue
            if value < least:
                self.error(InvalidValue, f"{where}{key} must be at least {least}, got {value}", span)
                value = None
            elif value > SIZE_LIMITS[key].value:
                self.errors.append(SIZE_LIMITS[key].error(value, span, self._source(span), where))
                value = None
            out[key] = value
        return out

    def check_use(self, m: ast.Machine, use: ast.UseSetting | None) -> dict[str, tuple[ast.GateDef, _SetInfo]]:
        """The gates the machine's `use` brings in, by name; reports unknown and ambiguous names."""
        available: dict[str, tuple[ast.GateDef, _SetInfo]] = {}
        seen: set[str] = set()
        for ref in use.sets if use else ():
            if ref.value in seen:
                self.error(DuplicateName, f"gate set '{ref.value}' is already used", ref.span)
                continue
            seen.add(ref.value)
            info = self.sets.get(ref.value)
            if info is None:
                self.error(UnknownName, f"unknown gate set '{ref.value}'{_suggest(ref.value, list(self.sets))}", ref.span)
                continue
            for gname, g in info.gates.items():
                if gname in available:
                    other = available[gname][1].node.name.value
                    self.error(
                        DuplicateName,
                        f"gate '{gname}' is defined in both gate sets '{other}' and '{ref.value}' used by machine '{m.name.value}'",
                        ref.span,
                    )
                else:
                    available[gname] = (g, info)
        return available

    def check_circuit(self, m: ast.Machine, c: ast.CircuitSetting | None, available: Mapping[str, Any]) -> list[str] | None:
        if c is None:
            return None
        ok = True
        for ref in c.gates:
            name = ref.value
            if name in BUILTIN_GATE_OBJECTS or name in available:
                continue
            ok = False
            defined_in = [s for s, info in self.sets.items() if name in info.gates]
            if defined_in:
                where = " and ".join(f"'{s}'" for s in defined_in)
                sets = "gate set" if len(defined_in) == 1 else "gate sets"
                self.error(UnknownName, f"gate '{name}' is defined in {sets} {where}, which machine '{m.name.value}' does not use", ref.span)
            else:
                known = sorted(set(available) | set(BUILTIN_GATE_OBJECTS))
                self.error(UnknownName, f"unknown gate '{name}'{_suggest(name, known)}", ref.span)
        repeat = 1
        if c.repeat is not None:
            repeat = c.repeat.value
            if repeat < 1:
                self.error(InvalidValue, f"circuit repeat count must be at least 1, got {repeat}", c.repeat.span)
                ok = False
        length = len(c.gates) * repeat  # checked before the list is built: `* 10**9` must not allocate
        if length > limits.CIRCUIT.value:
            span = c.repeat.span if c.repeat is not None else c.span
            self.errors.append(limits.CIRCUIT.error(length, span, self._source(span)))
            ok = False
        return [r.value for r in c.gates] * repeat if ok else None

    def check_table(self, setting: ast.TableSetting, circuit: list[str], gates: Mapping[str, Gate], R: int,
                    halt: str) -> ControllerSpec:
        """A table controller, checked once the circuit and R are known (nramdsl.lang.table)."""
        if any(name not in gates for name in circuit):
            return ControllerSpec(kind="table")  # a gate with errors of its own: its arity is unknown
        arity = {name: gates[name].arity for name in circuit}
        effects = {name for name in circuit if gates[name].builtin == WRITE}
        table = check_table(setting, circuit, arity, effects, R, halt == "learned", self.error)
        return ControllerSpec(kind="table", hidden=1 << R, table=table)

    def check_controller(self, c: ast.ControllerSetting | ast.TableSetting | None) -> ControllerSpec:
        if c is None:
            return ControllerSpec()
        if isinstance(c, ast.TableSetting):
            return ControllerSpec(kind="table")  # its rows are checked with the circuit (`check_table`)
        kind = c.kind.value
        if kind not in CONTROLLERS:
            self.error(InvalidValue, f"unknown controller '{kind}'; expected one of {', '.join(CONTROLLERS)}", c.kind.span)
        args = dict(CONTROLLER_ARGS)
        seen: set[str] = set()
        for a in c.args:
            key = a.name.value
            if key in seen:
                self.error(DuplicateName, f"controller argument '{key}' is given twice", a.name.span)
            elif key not in CONTROLLER_ARGS:
                self.error(UnknownName, f"unknown controller argument '{key}'; expected one of {', '.join(CONTROLLER_ARGS)}", a.name.span)
            elif a.value.value < 1:
                self.error(InvalidValue, f"{key} must be at least 1, got {a.value.value}", a.value.span)
            elif a.value.value > limits.HIDDEN.value:
                self.errors.append(limits.HIDDEN.error(a.value.value, a.value.span, self._source(a.value.span)))
            else:
                args[key] = a.value.value
            seen.add(key)
        return ControllerSpec(kind=kind if kind in CONTROLLERS else "lstm", hidden=args["hidden"])  # type: ignore[arg-type]

    def check_choice(self, s: ast.HaltSetting | ast.WriteReturnsSetting | None, key: str, choices: tuple[str, ...], default: str) -> Any:
        if s is None:
            return default
        value = s.mode.value
        if value not in choices:
            self.error(InvalidValue, f"unknown {key} mode '{value}'; expected one of {', '.join(choices)}", s.mode.span)
            return default
        return value

    def check_train(self, t: ast.TrainSetting | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for e in t.entries if t else ():
            if e.key.value in out:
                self.error(DuplicateName, f"train key '{e.key.value}' is given twice", e.key.span)
            else:
                out[e.key.value] = e.value
        return out

    # ---- totality
    def totality(self, gate: Gate, M: int, context: str) -> None:
        """Tables over the limits (`nramdsl.limits.TABLE_ENTRIES`, `TABLE_WORK`) are not built here: M =
        10,000 for the integer reference machine would need 10^8 entries per binary gate, and
        `nramdsl.lang.tabulate.evaluate_point` range-checks every application there instead; a back end
        that tabulates gets tabulate's own errors."""
        key = (str(gate.span), M)
        if key in self._totality_done:
            return
        self._totality_done.add(key)
        try:
            check_fits_64_bits(gate, M)
            if tabulable(gate, M):
                tabulate(gate, M)
        except TotalityError as exc:
            self.error(TotalityError, f"{exc.message} (in {context})", exc.span)
        except NramError as exc:
            self.error(type(exc), f"{exc.message} (in {context})", exc.span)


def _setting_spans(settings: Mapping[str, Any], overrides: Mapping[str, int]) -> dict[str, Span]:
    """Where each setting a later stage reads is written (`MachineSpec.where`): the sizes' values (not those
    an override replaced: they are written on the command line), the task's name, and each train entry as
    `train.KEY`."""
    out: dict[str, Span] = {}
    for key in MIN_SIZE:
        if key in settings and key not in overrides:
            out[key] = settings[key].value.span
    if "task" in settings:
        out["task"] = settings["task"].task.span
    for e in settings["train"].entries if "train" in settings else ():
        out.setdefault(f"train.{e.key.value}", e.span)
    return out


def _reserved_why(name: str, what: str) -> str:
    if name in BUILTIN_GATES:
        return f"'{name}' is a built-in memory gate and cannot name {what}"
    if name == "M":
        return f"'M' is the memory size and cannot name {what}"
    return f"'{name}' is a keyword and cannot name {what}"


def _normalize_overrides(overrides: Mapping[str, int] | None) -> tuple[dict[str, int], list[NramError]]:
    out: dict[str, int] = {}
    errors: list[NramError] = []
    for key, value in (overrides or {}).items():
        full = OVERRIDE_KEYS.get(key)
        if full is None:
            errors.append(UnknownName(f"unknown override '{key}'; expected one of M, R, T (memory, registers, timesteps)"))
        elif isinstance(value, bool) or not isinstance(value, int):
            errors.append(InvalidValue(f"override {key}={value!r} is not an integer"))
        else:
            out[full] = value
    return out, errors


def _raise(errors: list[NramError]) -> None:
    unique = list({(type(e), e.message, e.span): e for e in errors}.values())
    if len(unique) == 1:
        raise unique[0]
    raise ErrorList(unique)


def _sorted(errors: list[NramError]) -> list[NramError]:
    unique = list({(type(e), e.message, e.span): e for e in errors}.values())
    return ErrorList(unique).errors if unique else []


def check_program(program: Program) -> list[NramError]:
    """Every error in the program: all gate sets, all machines, and totality of every gate (sorted)."""
    c = _Checker(program)
    c.check_names()
    for info in c.sets.values():
        c.check_gateset(info)
    in_circuit: set[ast.GateDef] = set()
    for m, file in c.machines.values():
        c.check_machine(m, file, {})
        circuit = next((s for s in m.settings if isinstance(s, ast.CircuitSetting)), None)
        use = next((s for s in m.settings if isinstance(s, ast.UseSetting)), None)
        names = {r.value for r in circuit.gates} if circuit else set()
        for ref in use.sets if use else ():
            info = c.sets.get(ref.value)
            in_circuit.update(g for n, g in (info.gates.items() if info else ()) if n in names)
    for info in c.sets.values():
        for g in info.valid - in_circuit:
            c.totality(_build_gate(g, info.file.folder), DEFAULT_CHECK_M, f"gate set '{info.node.name.value}', checked at the default M")
    return _sorted(c.errors)


def resolve_machine(program: Program, name: str | None = None, overrides: Mapping[str, int] | None = None) -> MachineSpec:
    """Resolve one machine (None: the first machine of the top file) with optional size overrides.

    `overrides` keys: "M"/"memory", "R"/"registers", "T"/"timesteps". Raises the single error, or an
    `ErrorList` of every error found in the program-level names, the gate sets the machine uses and the
    machine itself (including totality at the resolved M).
    """
    c = _Checker(program)
    c.check_names()
    sizes, errors = _normalize_overrides(overrides)
    if name is None:
        top = [m for m in program.top.module.items if isinstance(m, ast.Machine)]
        if not top:
            where = Span(program.top.path, 1, 1, 1, 2)  # the file itself: its first line
            _raise(c.errors + errors + [UnknownName("this file defines no machine; compile and train need one",
                                                    where, program.top.text)])
        name = top[0].name.value
    # The top file's machines first, then the imported files' in load order.
    files = [program.top.path] + [f.path for f in program.files[:-1]]
    found = next((c.machines[f, name] for f in files if (f, name) in c.machines), None)
    if found is None:
        names = list(dict.fromkeys(n for _, n in c.machines))
        msg = f"no machine named '{name}'{_suggest(name, names)}; machines: {', '.join(names) or 'none'}"
        _raise(c.errors + errors + [UnknownName(msg)])
    assert found is not None
    machine, file = found
    use = next((s for s in machine.settings if isinstance(s, ast.UseSetting)), None)
    for ref in dict.fromkeys(r.value for r in (use.sets if use else ())):
        if ref in c.sets:
            c.check_gateset(c.sets[ref])
    spec = c.check_machine(machine, file, sizes)
    if c.errors or errors or spec is None:
        _raise(c.errors + errors)
    assert spec is not None
    return spec
