"""The `nramdsl` command line: `check` and `compile`; other modules add subcommands.

Subcommands are `Subcommand` records in the static list `SUBCOMMANDS`. To add one (e.g. `train`), write
`nramdsl/cli_train.py` with `COMMAND = Subcommand("train", "…", add_arguments, run)` and append it to
`SUBCOMMANDS` below; `run(args) -> int` returns the exit code and may raise `NramError`.

Exit codes: 0 success, 1 an error in the user's input (printed as `file:line:col: error: …` with the
source line and a caret), 2 a usage error (argparse).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from nramdsl.circuit_graph import build_graph
from nramdsl.emit import EMITTERS
from nramdsl.errors import ErrorList, NramError
from nramdsl.ir import Gate
from nramdsl.loader import load_file
from nramdsl.semantics import OVERRIDE_KEYS, check_program, resolve_machine


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def parse_override(text: str) -> tuple[str, int]:
    """`--set M=32` -> ("M", 32); argparse turns the ValueError into a usage error (exit 2)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or key not in OVERRIDE_KEYS:
        raise argparse.ArgumentTypeError(f"expected KEY=INT with KEY one of {', '.join(OVERRIDE_KEYS)}, got {text!r}")
    try:
        return key, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key} must be an integer, got {value!r}") from None


def add_set_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=INT",
        type=parse_override,
        action="append",
        default=[],
        help="override a size: M (memory), R (registers) or T (timesteps); repeatable",
    )


def _gate_checks() -> Callable[[list[Gate], int], list[NramError]] | None:
    """`nramdsl.gatecheck.run_gate_checks` when that module exists (written separately)."""
    if importlib.util.find_spec("nramdsl.gatecheck") is None:
        return None
    return importlib.import_module("nramdsl.gatecheck").run_gate_checks


# ---- check


def _check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="an .nram file")
    add_set_option(p)


def _run_check(args: argparse.Namespace) -> int:
    program = load_file(args.spec)
    overrides = dict(args.overrides)
    errors = check_program(program)
    machines = [m.name.value for m, _ in program.machines()]
    if not errors and overrides:
        for name in machines:
            try:
                resolve_machine(program, name, overrides)
            except ErrorList as exc:
                errors.extend(exc.errors)
            except NramError as exc:
                errors.append(exc)
    run_gate_checks = _gate_checks()
    if not errors and run_gate_checks is not None:
        for name in machines:
            spec = resolve_machine(program, name, overrides)
            tabulable = [g for g in spec.gates.values() if g.evaluate is not None]
            errors.extend(run_gate_checks(tabulable, spec.memory))
    if errors:
        raise ErrorList(errors) if len(errors) > 1 else errors[0]
    n_sets = sum(1 for _ in program.gatesets())
    n_gates = sum(len(gs.gates) for gs, _ in program.gatesets())
    print(f"{args.spec}: ok ({n_sets} gate sets, {len(machines)} machines, {n_gates} gates)")
    return 0


# ---- compile


def _compile_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="an .nram file")
    p.add_argument("--machine", help="which machine (default: the first in SPEC)")
    add_set_option(p)
    p.add_argument("--emit", choices=sorted(EMITTERS), default="summary", help="what to print (default: summary)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the emission to FILE instead of stdout")


def _run_compile(args: argparse.Namespace) -> int:
    program = load_file(args.spec)
    spec = resolve_machine(program, args.machine, dict(args.overrides))
    text = EMITTERS[args.emit](build_graph(spec), program.sources)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise NramError(f"cannot write '{args.output}': {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    return 0


SUBCOMMANDS: list[Subcommand] = [
    Subcommand("check", "parse and validate a spec (all machines and gate sets)", _check_arguments, _run_check),
    Subcommand("compile", "resolve one machine and emit its circuit", _compile_arguments, _run_compile),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nramdsl", description="Neural Random-Access Machines from a spec.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in SUBCOMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except NramError as exc:
        print(exc.format(), file=sys.stderr)
        return 1
