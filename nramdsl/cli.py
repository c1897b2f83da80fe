"""The `nramdsl` command line: `check` and `compile` here; `train`, `eval`, `reproduce` in `cli_train`.

Subcommands are `Subcommand` records (`cli_args`) in the static list `SUBCOMMANDS`; `run(args) -> int`
returns the exit code and may raise `NramError`.

Exit codes: 0 success, 1 an error in the user's input (printed as `file:line:col: error: …` with the
source line and a caret), 2 a usage error (argparse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from nramdsl.circuit_graph import build_graph
from nramdsl.cli_args import Subcommand, add_set_option
from nramdsl.cli_train import COMMANDS as TRAINING_COMMANDS
from nramdsl.emit import EMITTERS
from nramdsl.errors import ErrorList, NramError
from nramdsl.ir import Gate, MachineSpec
from nramdsl.loader import load_file
from nramdsl.semantics import check_program, resolve_machine


def _gate_checks() -> Callable[[list[Gate], int], list[NramError]] | None:
    """`nramdsl.gatecheck.run_gate_checks`, imported late: hypothesis and the kernels take seconds to load,
    and `compile` does not need them. A hook so the CLI tests can switch the (separately tested) checks off."""
    from nramdsl.gatecheck import run_gate_checks

    return run_gate_checks


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


PROGRAM = "program"  # the torch.export artifact; binary, so it needs -o


def _compile_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="an .nram file")
    p.add_argument("--machine", help="which machine (default: the first in SPEC)")
    add_set_option(p)
    p.add_argument("--emit", choices=sorted([*EMITTERS, PROGRAM]),
                   help="what to produce (default: summary; program when -o ends in .pt2)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the emission to FILE instead of stdout")
    p.add_argument("--weights", metavar="CHECKPOINT", type=Path,
                   help="with --emit program: controller weights from a run's checkpoint.pt (default: untrained)")


def _run_compile(args: argparse.Namespace) -> int:
    program = load_file(args.spec)
    spec = resolve_machine(program, args.machine, dict(args.overrides))
    emit = args.emit or (PROGRAM if args.output and args.output.endswith(".pt2") else "summary")
    if emit == PROGRAM:
        return _write_program(spec, args.output, args.weights)
    if args.weights is not None:
        raise NramError("--weights only applies to --emit program")
    text = EMITTERS[emit](build_graph(spec), program.sources)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise NramError(f"cannot write '{args.output}': {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    return 0


def _write_program(spec: MachineSpec, output: str | None, weights: Path | None) -> int:
    """The unrolled machine as a torch.export program that plain PyTorch loads (`nramdsl.export`)."""
    if not output:
        raise NramError("--emit program writes a binary file: give -o FILE (e.g. -o machine.pt2)")
    from nramdsl.checkpoint import load_checkpoint
    from nramdsl.export import save_program
    from nramdsl.model import NRAM

    model = NRAM(spec)
    if weights is not None:
        if not weights.is_file():
            raise NramError(f"--weights: '{weights}' is not a file")
        try:
            state = load_checkpoint(weights)["model"]
        except Exception as exc:  # torch.load raises many kinds on a file that is not a checkpoint
            raise NramError(f"--weights: cannot read '{weights}' as a checkpoint ({type(exc).__name__})") from None
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            lines = str(exc).splitlines()  # torch: a header line, then one line per mismatched tensor
            first = lines[1].strip() if len(lines) > 1 else str(exc)
            raise NramError(f"--weights: '{weights}' was trained on a different machine ({first})") from None
    try:
        save_program(model, Path(output))
    except OSError as exc:
        raise NramError(f"cannot write '{output}': {exc.strerror or exc}") from None
    print(f"wrote {output}: torch.export program of machine '{spec.name}' (M = {spec.memory}, T = {spec.timesteps}, "
          f"batch dynamic); load with torch.export.load(path).module()", file=sys.stderr)
    return 0


SUBCOMMANDS: list[Subcommand] = [
    Subcommand("check", "parse and validate a spec (all machines and gate sets)", _check_arguments, _run_check),
    Subcommand("compile", "resolve one machine and emit its circuit", _compile_arguments, _run_compile),
    *TRAINING_COMMANDS,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nramdsl", description="Neural Random-Access Machines from a spec.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in SUBCOMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(command_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the words after `nramdsl`, for results that record their command
    try:
        return args.command_run(args)
    except NramError as exc:
        print(exc.format(), file=sys.stderr)
        return 1
