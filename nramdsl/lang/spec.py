"""The resolved machine: what the front end hands to every back end.

A `MachineSpec` is a machine with every name resolved, sizes checked and its gate set closed over the
circuit. It is independent of any particular memory size: gates carry their integer semantics as a
function of M, so the same spec is tabulated at M = 16 for training and evaluated pointwise at
M = 10,000 by the integer reference machine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

from nramdsl.errors import NramError, Span
from nramdsl.lang.table import Table

# The built-in memory gates. Their semantics are the paper's (§3.2) and are implemented by each back end.
READ = "read"
WRITE = "write"
BUILTIN_GATES: tuple[str, ...] = (READ, WRITE)

WriteReturns = Literal["zero", "value", "address", "old"]
HaltMode = Literal["learned", "never"]
ControllerKind = Literal["lstm", "mlp", "table"]


@dataclass(frozen=True)
class Gate:
    """One gate: a total function {0..M-1}^arity -> {0..M-1}, or a built-in memory gate.

    `evaluate(M, *args)` is the integer semantics. It accepts Python ints or numpy int64 arrays that
    broadcast together (so one call tabulates the whole gate) and returns the same kind. It does not
    check the range: `nramdsl.lang.tabulate.tabulate` does that and reports a totality error.
    For built-ins (`builtin` set) `evaluate` is None: their meaning depends on memory.
    """

    name: str
    params: tuple[str, ...]
    span: Span | None
    evaluate: Callable[..., Any] | None
    builtin: str | None = None  # READ or WRITE for the memory gates
    via: str | None = None  # "module:function" of a hand-written batched kernel, if the spec names one
    via_span: Span | None = None
    source_dir: str | None = None  # folder of the file that defined the gate (first on sys.path for `via`)
    # What the resource limits read before tabulating (`nramdsl.lang.tabulate`): the operations one
    # evaluation runs, and the largest magnitude of any intermediate value at M (None: not known, as for a
    # gate written as a Python function).
    operations: int = field(default=1, compare=False)
    value_bound: Callable[[int], int] | None = field(default=None, compare=False)

    @property
    def arity(self) -> int:
        return len(self.params)


@dataclass(frozen=True)
class ControllerSpec:
    kind: ControllerKind = "lstm"
    hidden: int = 64
    # `controller table { … }`: the program, compiled to an MLP with one hidden unit per zero-pattern
    # (hidden = 2^R) by nramdsl.machine.weights
    table: Table | None = None


@dataclass(frozen=True)
class SpecRef:
    """Where a machine comes from: enough to load it again, in a worker process or from a run directory
    (`nramdsl.lang.frontend.load_ref`). A file by path, or the text itself for a machine loaded from text."""

    path: str | None = None  # the top file, absolute
    machine: str | None = None  # None: the top file's first machine
    overrides: Mapping[str, int] = field(default_factory=dict)  # size overrides ("M", "R", "T")
    source: str | None = None  # the text of the top file, when it was not read from `path`
    filename: str = "<run>"  # the name the text was loaded under (imports resolve beside it)

    def pinned(self, spec: MachineSpec) -> SpecRef:
        """This reference with the machine's name and its sizes written out, so that it loads exactly the
        machine that was trained even where `spec` was changed after loading (`dataclasses.replace`)."""
        sizes = {"M": spec.memory, "R": spec.registers, "T": spec.timesteps}
        return SpecRef(self.path, spec.name, sizes, self.source, self.filename)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"machine": self.machine, "overrides": dict(self.overrides)}
        if self.source is not None:
            out.update(source=self.source, filename=self.filename)
        else:
            out["path"] = self.path
        return out

    @classmethod
    def from_json(cls, info: Mapping[str, Any]) -> SpecRef:
        """From a run's config.json, which is untrusted: a part of the wrong type is an `NramError`."""
        ref = cls(path=info.get("path"), machine=info.get("machine"), overrides=info.get("overrides") or {},
                  source=info.get("source"), filename=info.get("filename", "<run>"))
        texts = (ref.path, ref.machine, ref.source)
        if not all(t is None or isinstance(t, str) for t in texts) or not isinstance(ref.filename, str) or not (
                isinstance(ref.overrides, dict) and all(isinstance(k, str) and type(v) is int for k, v in ref.overrides.items())):
            raise NramError('the run configuration\'s "spec" is malformed (a path, machine, source or size of the '
                            'wrong type)')
        return dataclasses.replace(ref, overrides=dict(ref.overrides))


@dataclass(frozen=True)
class MachineSpec:
    name: str
    span: Span | None
    registers: int
    memory: int  # the default M; the CLI (--set M=…) and the API can override it
    timesteps: int
    circuit: tuple[str, ...]  # gate names in evaluation order, repetitions expanded
    gates: Mapping[str, Gate]  # every gate named in `circuit`
    controller: ControllerSpec = field(default_factory=ControllerSpec)
    halt: HaltMode = "learned"
    write_returns: WriteReturns = "zero"
    task: str | None = None  # the task this machine is meant for (training preset)
    train: Mapping[str, Any] = field(default_factory=dict)  # training preset, validated by the trainer
    source: str | None = None  # path of the file that defined the machine
    uses: tuple[str, ...] = ()  # the gate sets it `use`s, as written (a printed program names them again)
    # Where settings are written, for errors a later stage finds in them: "memory", "registers",
    # "timesteps" (the values), "task" (the name) and "train.KEY" (the entry)
    where: Mapping[str, Span] = field(default_factory=dict, compare=False)
    ref: SpecRef | None = field(default=None, compare=False)  # how to load it again (set by the front end)

    def gate_at(self, i: int) -> Gate:
        return self.gates[self.circuit[i]]

    def without_via(self) -> MachineSpec:
        """This machine with every `via` kernel left out: those gates run on the built-in kernel of their own
        integer definition (the function `nramdsl check` holds a via kernel to), and nothing beside the spec
        is imported. For looking at a spec or a run whose Python one has not read."""
        gates = {name: dataclasses.replace(g, via=None, via_span=None) if g.via else g for name, g in self.gates.items()}
        return dataclasses.replace(self, gates=gates)
