"""The front end as one call, for every caller: a spec file (or its text) to a resolved machine.

    load_machine("examples/copy.nram")              # the first machine of the file
    load_machine(path, "copy", {"M": 32})           # a named machine, with a size override
    load_ref(spec.ref)                              # the same machine again, in a worker or from a run

Stages, each in its own module: read and parse the file and its imports (`load`, `parse`), check every
name and size and resolve the machine (`check`), proving each gate total at its M (`tabulate`). Every
error is an `NramError` located in the source; `check` collects all of them in one pass.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from nramdsl.errors import ErrorList, LoadError, NramError
from nramdsl.lang.check import check_program, resolve_machine
from nramdsl.lang.load import Program, load_file, load_text
from nramdsl.lang.spec import MachineSpec, SpecRef

__all__ = ["CheckedSpec", "check_program", "check_spec", "load_file", "load_machine", "load_ref", "load_text",
           "machine_from_text", "resolve", "resolve_machine"]


def resolve(program: Program, machine: str | None, overrides: Mapping[str, int] | None, ref: SpecRef) -> MachineSpec:
    """One machine of a loaded program, carrying `ref` so that it can be loaded again."""
    spec = resolve_machine(program, machine, overrides)
    return dataclasses.replace(spec, ref=SpecRef(ref.path, spec.name, dict(overrides or {}), ref.source, ref.filename))


def load_machine(path: str | os.PathLike[str], machine: str | None = None,
                 overrides: Mapping[str, int] | None = None) -> MachineSpec:
    """Load a file and resolve one machine (None: the top file's first) with optional size overrides
    ("M"/"memory", "R"/"registers", "T"/"timesteps")."""
    return resolve(load_file(path), machine, overrides, SpecRef(path=os.path.abspath(os.fspath(path))))


def machine_from_text(text: str, filename: str = "<string>", machine: str | None = None,
                      overrides: Mapping[str, int] | None = None) -> MachineSpec:
    """As `load_machine`, for source text (imports resolve beside `filename`)."""
    return resolve(load_text(text, filename), machine, overrides, SpecRef(source=text, filename=filename))


@dataclass(frozen=True)
class CheckedSpec:
    """A whole file checked: every error, and every machine resolved when there are none."""

    program: Program
    machines: tuple[MachineSpec, ...]
    errors: tuple[NramError, ...]


def check_spec(path: str | os.PathLike[str], overrides: Mapping[str, int] | None = None) -> CheckedSpec:
    """Every gate set and machine of a file and its imports (`nramdsl check`): all errors in one pass, then
    every machine resolved with the size overrides (which can make a gate's table leave its range)."""
    program = load_file(path)
    errors = check_program(program)
    machines: list[MachineSpec] = []
    if not errors:
        for machine, _ in program.machines():
            try:
                machines.append(resolve_machine(program, machine.name.value, overrides))
            except ErrorList as exc:
                errors.extend(exc.errors)
            except NramError as exc:
                errors.append(exc)
    return CheckedSpec(program, tuple(machines) if not errors else (), tuple(errors))


def load_ref(ref: SpecRef) -> MachineSpec:
    """The machine a `SpecRef` names (config.json's "spec" of a run directory, a worker's job)."""
    if ref.source is not None:
        return machine_from_text(ref.source, ref.filename, ref.machine, ref.overrides)
    if ref.path is None:
        raise LoadError("the run does not record which machine it trained (no spec path or source)")
    if not Path(ref.path).exists():
        raise LoadError(f"the spec '{ref.path}' this run was trained from no longer exists")
    return load_machine(ref.path, ref.machine, ref.overrides)

