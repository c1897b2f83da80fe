"""The `nramdsl` command line: check, compile, train, eval, reproduce, results, explain, run, trace.

Each subcommand is a `Subcommand` record in `SUBCOMMANDS`: a function that adds its arguments and one
that runs it, `run(args) -> int`, which may raise `NramError`. The handlers only parse and print; the
work is done by the library (`lang.frontend`, `circuit.views`, `training`, `programs`).

Exit codes: 0 success, 1 an error in the user's input (printed as `file:line:col: error: …` with the
source line and a caret), 2 a usage error (argparse), 130 training stopped by Ctrl-C (saved).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from nramdsl.circuit.graph import build_graph
from nramdsl.circuit.views import EMITTERS
from nramdsl.errors import ErrorList, NramError
from nramdsl.lang.check import OVERRIDE_KEYS
from nramdsl.lang.frontend import check_spec, load_file, resolve
from nramdsl.lang.spec import Gate, MachineSpec, SpecRef
from nramdsl.training.config import MAX_SEED


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ---- threads

# One thread unless told otherwise: the machine is many small ops, for which torch's default of one thread
# per core measured 5.6x slower training, 18x slower `eval` and a 4.2x slower test suite on a loaded 2-core
# machine, with identical results. A seed search (`reproduce --jobs N`) gives each worker its share.
DEFAULT_THREADS = 1


def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high]; anything else is a usage error (exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" + (f" and <= {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {text!r}")
        return value

    return parse


_positive = _whole(1)


def _use_threads(args: argparse.Namespace) -> None:
    """The thread count chosen (`--threads`, else $OMP_NUM_THREADS, else DEFAULT_THREADS), given to torch:
    through the environment when torch is not imported yet (it reads it on import), directly otherwise."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    args.threads = args.threads or (int(env) if env.isdigit() and int(env) > 0 else DEFAULT_THREADS)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(args.threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)


def _threads_said(args: argparse.Namespace) -> str:
    n = args.threads
    return f"{n} CPU thread{'s' * (n != 1)}; --threads N to change"


# ---- shared options


def _override(text: str) -> tuple[str, int]:
    """`--set M=32` -> ("M", 32); argparse turns the ValueError into a usage error (exit 2)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or key not in OVERRIDE_KEYS:
        raise argparse.ArgumentTypeError(f"expected KEY=INT with KEY one of {', '.join(OVERRIDE_KEYS)}, got {text!r}")
    try:
        return key, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key} must be an integer, got {value!r}") from None


def option_arg(text: str) -> tuple[str, str]:
    """argparse type of `--option KEY=VALUE` (here and in benchmarks/): a usage error, not a traceback, without `=`."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _add_spec(p: argparse.ArgumentParser, machine: bool = True) -> None:
    p.add_argument("spec", help="an .nram file")
    if machine:
        p.add_argument("--machine", help="which machine (default: the first in SPEC)")
    p.add_argument("--set", dest="overrides", metavar="KEY=INT", type=_override, action="append", default=[],
                   help="override a size: M (memory), R (registers) or T (timesteps); repeatable")


def _load(args: argparse.Namespace) -> MachineSpec:
    """The machine the arguments name: the one front-end call every command that trains or compiles makes."""
    path = str(Path(args.spec).resolve())
    return resolve(load_file(args.spec), args.machine, dict(args.overrides), SpecRef(path=path))


# ---- check


def _gate_checks() -> Callable[[list[Gate], int], list[NramError]] | None:
    """`nramdsl.kernels.properties.run_gate_checks`, imported late: hypothesis and the kernels take seconds
    to load, and `compile` does not need them. A hook so the CLI tests can switch the (separately tested)
    checks off."""
    # Hypothesis keeps a cache in ./.hypothesis by default: a user's folder is no place for it
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nramdsl" / "hypothesis"
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(cache))
    from nramdsl.kernels.properties import run_gate_checks

    return run_gate_checks


def _check_arguments(p: argparse.ArgumentParser) -> None:
    _add_spec(p, machine=False)
    p.add_argument("--skip-via", action="store_true",
                   help="do not import the `via` kernels beside the spec (importing runs their Python code): "
                        "check those gates' integer definitions with the built-in kernels instead")


def _run_check(args: argparse.Namespace) -> int:
    from nramdsl.training.setup import check_training

    checked = check_spec(args.spec, dict(args.overrides))
    errors = list(checked.errors)
    for spec in checked.machines:  # everything `train` reads from the machine
        errors.extend(check_training(spec))
    run_gate_checks = _gate_checks()
    if not errors and run_gate_checks is not None:
        from nramdsl.kernels.properties import sampling_note

        for spec in checked.machines:
            spec = spec.without_via() if args.skip_via else spec
            tabulable = [g for g in spec.gates.values() if g.evaluate is not None]
            found = run_gate_checks(tabulable, spec.memory)
            errors.extend(found)
            failed = {e.span for e in found}
            notes = (sampling_note(g, spec.memory) for g in dict.fromkeys(tabulable) if g.span not in failed)
            for note in filter(None, notes):
                print(note.format(), file=sys.stderr)
    errors = list({(e.message, e.span): e for e in errors}.values())  # machines sharing a cause report it once
    if errors:
        raise ErrorList(errors) if len(errors) > 1 else errors[0]
    program = checked.program
    n_sets = sum(1 for _ in program.gatesets())
    n_gates = sum(len(gs.gates) for gs, _ in program.gatesets())
    print(f"{args.spec}: ok ({n_sets} gate sets, {len(checked.machines)} machines, {n_gates} gates)")
    return 0


# ---- compile

PROGRAM = "program"  # the torch.export artifact; binary, so it needs -o
WEIGHTS = "weights"  # the controller's initial weights as a checkpoint (a table compiled); binary too


def _compile_arguments(p: argparse.ArgumentParser) -> None:
    _add_spec(p)
    p.add_argument("--emit", choices=sorted([*EMITTERS, PROGRAM, WEIGHTS]),
                   help="what to produce (default: summary; program when -o ends in .pt2)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the emission to FILE instead of stdout")
    p.add_argument("--weights", metavar="CHECKPOINT", type=Path,
                   help="with --emit program: controller weights from a run's checkpoint.pt (default: untrained)")
    p.add_argument("--seed", type=_whole(0, MAX_SEED), default=0,
                   help="with --emit program and no --weights: the seed of the untrained weights (default 0)")


def _run_compile(args: argparse.Namespace) -> int:
    spec = _load(args)
    emit = args.emit or (PROGRAM if args.output and args.output.endswith(".pt2") else "summary")
    if emit == PROGRAM and not args.output:
        args.command_parser.error("--emit program writes a binary file: give -o FILE (e.g. -o machine.pt2)")
    if emit == PROGRAM:
        return _write_program(spec, args.output, args.weights, args.seed)
    if emit == WEIGHTS:
        return _write_weights(spec, args.output, args.seed)
    if args.weights is not None:
        raise NramError("--weights only applies to --emit program")
    text = EMITTERS[emit](build_graph(spec), {})  # the views read gate source text from the spec's files
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise NramError(f"cannot write '{args.output}': {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    return 0


def _write_program(spec: MachineSpec, output: str, weights: Path | None, seed: int) -> int:
    """The unrolled machine as a torch.export program that plain PyTorch loads (`nramdsl.machine.export`)."""
    import torch

    from nramdsl.machine.export import OUTPUTS, save_program
    from nramdsl.machine.fuzzy import NRAM
    from nramdsl.training.loop import load_weights
    from nramdsl.training.rundir import load_checkpoint

    folder = Path(output).resolve().parent
    if not folder.is_dir():  # torch would say so only after exporting, and as a RuntimeError
        raise NramError(f"cannot write '{output}': the folder '{folder}' does not exist")
    with torch.random.fork_rng(devices=[]):  # seeded: the same untrained artifact every time
        torch.manual_seed(seed)
        model = NRAM(spec)
    if weights is not None:
        # a run's checkpoint, or weights alone (`compile --emit weights`): only the weights are read
        load_weights(model, load_checkpoint(weights), weights)
    save_program(model, Path(output))
    print(f"wrote {output}: torch.export program of machine '{spec.name}' (M = {spec.memory}, T = {spec.timesteps}, "
          f"batch dynamic; {'trained' if weights else f'untrained, seed {seed}'}); "
          f"torch.export.load(path).module()(memory) returns {OUTPUTS}", file=sys.stderr)
    return 0


def _write_weights(spec: MachineSpec, output: str | None, seed: int) -> int:
    """The model's initial state as a checkpoint (`{"model": state_dict}`, what `--weights` reads): for a
    table controller, the MLP that runs the table (`nramdsl.machine.weights`); for a network, its initial
    weights under `--seed`, the same every time."""
    if not output:
        raise NramError("--emit weights writes a binary file: give -o FILE (e.g. -o weights.pt)")
    import torch

    from nramdsl.machine.fuzzy import NRAM
    from nramdsl.training.rundir import save_checkpoint

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = NRAM(spec)
    try:
        save_checkpoint(Path(output), {"model": model.state_dict()})
    except OSError as exc:
        raise NramError(f"cannot write '{output}': {exc.strerror or exc}") from None
    what = "the MLP that runs its table" if spec.controller.table is not None else f"an untrained controller, seed {seed}"
    print(f"wrote {output}: machine '{spec.name}', {what}", file=sys.stderr)
    return 0


# ---- train, reproduce: a machine and its training settings


def _training_arguments(p: argparse.ArgumentParser) -> None:
    from nramdsl.tasks import available_tasks

    _add_spec(p)
    p.add_argument("--task", help=f"the task (default: the machine's `task`); one of {', '.join(available_tasks())}")
    p.add_argument("--steps", type=int, help="optimizer updates (default: the machine's train block, else 3000)")
    p.add_argument("--option", dest="options", metavar="KEY=VALUE", type=option_arg, action="append", default=[],
                   help="any training setting, e.g. --option lr=0.01 --option noise.eta=0.3 (all of them below); "
                        "repeatable")


def _job(args: argparse.Namespace) -> tuple[Any, SpecRef]:
    """The training job the arguments describe: the machine's preset, then --option, --steps, --seed, --task."""
    from nramdsl.training.setup import configure, plan

    spec = _load(args)
    options: dict[str, Any] = dict(args.options)
    for key, value in (("steps", args.steps), ("seed", getattr(args, "seed", None)), ("task", args.task)):
        if value is not None:
            options[key] = value
    job = plan(spec, configure(spec, options))
    assert spec.ref is not None
    return job, spec.ref


def _train_arguments(p: argparse.ArgumentParser) -> None:
    _training_arguments(p)
    p.add_argument("--seed", type=int, help="random seed (default 0); a population's members get SEED .. SEED+K-1")
    p.add_argument("--population", type=int, default=1, metavar="K",
                   help="train K seeds as one batched model (default 1); see also --option pbt.every=N")
    p.add_argument("--out", type=Path, help="run directory (default runs/MACHINE-TASK-sSEED, runs/MACHINE-TASK-pK-sSEED)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-eval", action="store_true", help="skip the generalization table at the end")
    p.add_argument("--examples", type=_positive, default=64, help="test cases per row of the final table (default 64)")


def _run_train(args: argparse.Namespace) -> int:
    from nramdsl.training.evaluate import format_table, generalization
    from nramdsl.training.interrupt import TrainingInterrupted
    from nramdsl.training.loop import train
    from nramdsl.training.rundir import RunDir
    from nramdsl.training.stopping import RULES

    job, origin = _job(args)
    cfg, spec = job.config, job.spec
    if args.population < 1:
        raise NramError("--population must be >= 1")
    if args.population > 1:
        return _train_population(args, job, origin)
    run = RunDir(args.out) if args.out else RunDir.default("runs", spec.name, cfg.task, cfg.seed)
    run.check_writable()
    if args.resume and not run.has_checkpoint():
        raise NramError(f"nothing to resume: {run.checkpoint} does not exist")
    print(f"training machine '{spec.name}' on task '{cfg.task}' for up to {cfg.steps} steps -> {run.path} "
          f"({_threads_said(args)})", file=sys.stderr)
    try:
        result = train(spec, cfg, run.path, resume=args.resume, progress=True, origin=origin)
    except TrainingInterrupted as stop:
        return _interrupted(args, run, stop)
    print(f"done: {result.steps} steps in {result.wall:.1f} s ({result.steps / max(result.wall, 1e-9):.1f} steps/s), "
          f"train error {result.train_error:.1%} at difficulty {result.level}, {result.skipped} updates skipped")
    if result.stopped is not None:
        rule = RULES.get(result.stopped)
        why = rule.why(cfg) if rule else result.stopped
        if rule is not None and rule.gives_up:
            print(f"gave up at step {result.gave_up_at}: {why}; {rule.advice}")
        else:
            print(f"stopped at step {result.steps}: {why}")
    if not args.no_eval:
        report = generalization(result.model, job.task, spec, job.complexity, examples=args.examples,
                                readout=cfg.readout)
        print(f"\ngeneralization (trained up to complexity {job.complexity}; M just fits, T = 2 x scaled; "
              f"read out at the halting step; the last row runs the integer machine only)")
        print(format_table([report.train_row] + report.rows))
    return 0


def _interrupted(args: argparse.Namespace, run: Any, stop: Any) -> int:
    """Ctrl-C: the run saved its checkpoint at the end of the step; say how to go on, exit 130."""
    again = [*args.argv, *([] if args.out else ["--out", str(run.path)]), *([] if args.resume else ["--resume"])]
    print(f"interrupted at step {stop.step}: saved {run.checkpoint}; go on with:\n"
          f"  nramdsl {' '.join(shlex.quote(a) for a in again)}", file=sys.stderr)
    return 130


def _train_population(args: argparse.Namespace, job: Any, origin: SpecRef) -> int:
    from tabulate import tabulate

    from nramdsl.training.interrupt import TrainingInterrupted
    from nramdsl.training.loop import MEMBERS, train_population
    from nramdsl.training.rundir import RunDir

    cfg, spec, K = job.config, job.spec, args.population
    seeds = list(range(cfg.seed, cfg.seed + K))
    run = RunDir(args.out) if args.out else RunDir.population_default("runs", spec.name, cfg.task, K, cfg.seed)
    run.check_writable()
    if args.resume and not run.has_checkpoint():
        raise NramError(f"nothing to resume: {run.checkpoint} does not exist")
    print(f"training a population of {K} (seeds {seeds[0]}-{seeds[-1]}) of machine '{spec.name}' on task "
          f"'{cfg.task}' for up to {cfg.steps} steps each -> {run.path} ({_threads_said(args)})", file=sys.stderr)
    try:
        results = train_population(spec, cfg, seeds, run.path, resume=args.resume, progress=True, origin=origin)
    except TrainingInterrupted as stop:
        return _interrupted(args, run, stop)
    rows = [[r.seed, r.steps, f"{r.train_error:.1%}", r.level, "-" if r.solved_at is None else r.solved_at,
             r.stopped or "-", f"{r.wall:.1f}"] for r in results]
    print(tabulate(rows, headers=["seed", "steps", "train error", "level", "solved at", "stopped", "wall s"],
                   tablefmt="simple"))
    solved = [r for r in results if r.solved_at is not None]
    print(f"{len(solved)} of {K} members solved the training task; each member is a run directory: "
          f"nramdsl eval {run.path / MEMBERS}/sSEED")
    if solved and not args.no_eval:
        _score_members(job, solved, args.examples)
    return 0


def _score_members(job: Any, results: list[Any], examples: int) -> None:
    """The members that solved their training task against the four bars, their fuzzy runs batched."""
    from tabulate import tabulate

    from nramdsl.training.unit import BARS, score_members

    print(f"\nscoring the {len(results)} members that solved the training task ({examples} test cases a row, "
          f"as nramdsl reproduce does)", file=sys.stderr)
    rows = score_members(results, job, examples)
    print(tabulate([[row["seed"], *("yes" if row["bars"][b] else "no" for b in BARS)] for row in rows],
                   headers=["seed", "train", "generalize (<= 50)", "discrete = fuzzy", "integer machine at 1,000"],
                   tablefmt="simple"))


def _reproduce_arguments(p: argparse.ArgumentParser) -> None:
    _training_arguments(p)
    p.add_argument("--seeds", type=int, default=3, help="how many seeds (FIRST .. FIRST+N-1) to train (default 3)")
    p.add_argument("--first-seed", type=int, default=0, metavar="FIRST",
                   help="the first seed (default 0); a search extended to new seeds leaves the old ones as they are")
    p.add_argument("--population", type=int, default=1, metavar="K",
                   help="train the seeds in populations of K, each one batched model (default 1: one seed at a time)")
    p.add_argument("--jobs", type=int, default=1,
                   help="units (seeds, or populations) trained at once, each in its own process (default 1)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the units as tasks on a Ray cluster (e.g. auto, or ray://HOST:10001; needs nramdsl[ray])")
    p.add_argument("--fresh", action="store_true",
                   help="retrain every seed (default: reuse a seed already trained with the same machine and settings)")
    p.add_argument("--extend", action="store_true",
                   help="add these seeds to the search in RESULTS/TASK.json (same machine, settings and population "
                        "size; its seeds and these one range) and record the one command that trains them all, "
                        "instead of replacing the file")
    p.add_argument("--results", type=Path, default=Path("results"), help="folder for TASK.json (default results/)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="folder for the run directories")


def _run_reproduce(args: argparse.Namespace) -> int:
    from nramdsl.training.extend import earlier_rows, whole_command
    from nramdsl.training.rundir import write_json
    from nramdsl.training.search import run_seeds, summarize

    if args.seeds < 1 or args.jobs < 1 or args.population < 1:
        raise NramError("--seeds, --population and --jobs must be >= 1")
    if args.first_seed < 0 or args.first_seed + args.seeds - 1 > MAX_SEED:
        raise NramError(f"--first-seed must be >= 0, and the last seed (FIRST + N - 1) at most {MAX_SEED}")
    job, origin = _job(args)
    cfg = job.config
    path = args.results / f"{cfg.task}.json"
    wanted = list(range(args.first_seed, args.first_seed + args.seeds))
    # checked before training, so a file that cannot be extended costs nothing
    earlier = earlier_rows(path, job.spec, cfg, args.population, wanted) if args.extend else []
    seeds = run_seeds(job.spec, cfg, wanted, args.runs.resolve(), origin, population=args.population,
                      jobs=args.jobs, reuse=not args.fresh, progress=sys.stderr.isatty(), ray=args.ray,
                      report=lambda line: print(f"[{cfg.task}] {line}", file=sys.stderr, flush=True))
    argv = args.argv
    if args.extend:  # also when this run replaced every row of the file: --extend must not stay in the command
        seeds = sorted(earlier + seeds, key=lambda row: row["seed"])
        argv = whole_command(argv, seeds[0]["seed"], len(seeds))
    command = "nramdsl " + " ".join(shlex.quote(a) for a in argv)
    summary = summarize(cfg.task, job.spec, cfg, seeds, command, population=args.population)
    write_json(path, summary)
    print(json.dumps({k: summary[k] for k in ("task", "seeds_tried", "reached", "mean_steps_per_s")}))
    print(f"wrote {path}", file=sys.stderr)
    return 0


# ---- eval


class _OneMember(argparse.Action):
    """`--member` given once: argparse would keep the last value silently, so `eval RUN --member 4 --member 7`
    would score seed 7 alone while the user reads the table as both."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        if getattr(namespace, self.dest) is not None:
            parser.error(f"{option_string} given twice: eval scores one member; run it once per member")
        setattr(namespace, self.dest, values)


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="a run directory written by `nramdsl train`")
    p.add_argument("--complexity", type=int, action="append", help="complexity to test (repeatable); "
                   "default: training complexity, twice it, 20 and 50")
    p.add_argument("--memory", type=int, help="memory size M for every row (default: just large enough)")
    p.add_argument("--timesteps", type=int, help="step budget T for every row (default: 2 x scaled)")
    p.add_argument("--slack", type=float, default=2.0, help="multiplier on the scaled step budget (default 2)")
    p.add_argument("--discretize", action="store_true", help="also run the discretized model on the integer machine")
    p.add_argument("--big", type=int, default=0,
                   help="with --discretize, also run the integer machine alone at this complexity")
    p.add_argument("--readout", choices=("halt", "last", "argmax"), help="read-out rule (default: the run's)")
    p.add_argument("--examples", type=int, default=64, help="test cases per row (default 64)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--by-cell", type=int, metavar="CELL",
                   help="also split each row's error by the value memory cell CELL holds on input (ListK: 1, k): "
                        "where a program stops generalizing")
    p.add_argument("--member", type=int, metavar="SEED", action=_OneMember,
                   help="RUN is a population: evaluate its member with this seed, from the population's checkpoint "
                        "(RUN/members/sSEED is written only once the population has finished)")
    p.add_argument("--skip-via", action="store_true",
                   help="run `via` gates on the built-in kernels of their integer definitions: import nothing from "
                        "beside the run's spec (see docs/security.md)")


def _run_eval(args: argparse.Namespace) -> int:
    from nramdsl.training.evaluate import (check_request, default_complexities, format_by_cell, format_table,
                                           generalization)
    from nramdsl.training.loop import load_run
    from nramdsl.training.rundir import RunDir
    from nramdsl.training.setup import find_task

    if args.big and not args.discretize:
        args.command_parser.error("--big runs the discretized model on the integer machine: add --discretize")
    if not RunDir(args.run).has_checkpoint():
        raise NramError(f"'{args.run}' is not a run directory (no checkpoint.pt)")
    model, config = load_run(args.run, args.member, skip_via=args.skip_via)
    task = find_task(config["task"])
    c = config["complexity"]
    readout = args.readout or config["train"].get("readout", "halt")
    complexities = args.complexity or default_complexities(c)
    check_request(task, model.spec, c, complexities, examples=args.examples, slack=args.slack, big=args.big or None,
                  memory=args.memory, timesteps=args.timesteps, by_cell=args.by_cell)
    print(f"evaluating {args.run}: machine '{model.spec.name}' on task '{task.name}', trained up to complexity {c}; "
          f"{len(complexities) + 1 + bool(args.big)} rows of {args.examples} test cases ({_threads_said(args)})",
          file=sys.stderr)
    report = generalization(model, task, model.spec, c, complexities=complexities, examples=args.examples,
                            slack=args.slack, readout=readout, discretize=args.discretize, big=args.big or None,
                            memory=args.memory, timesteps=args.timesteps, by_cell=args.by_cell,
                            progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps({"task": task.name, "train_complexity": c, "readout": readout,
                          "train": report.train_row.as_dict(), "rows": [r.as_dict() for r in report.rows]}, indent=2))
    else:
        print(format_table([report.train_row] + report.rows))
        if args.by_cell is not None:
            print(format_by_cell([report.train_row] + report.rows, args.by_cell))
    return 0


# ---- results


def _results_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=Path("results"), help="folder of TASK.json files (default results/)")


def _run_results(args: argparse.Namespace) -> int:
    from nramdsl.training.results_table import results_table

    if not args.results.is_dir():
        raise NramError(f"'{args.results}' is not a folder of results (run `nramdsl reproduce` first)")
    print(results_table(args.results), end="")
    return 0


# ---- explain, run, trace: programs you can read, write and run (nramdsl.programs)


def _explain_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="a run directory written by `nramdsl train`")
    p.add_argument("--check", action="store_true",
                   help="run the extracted program against the trained model, discretized, and report agreement")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--emit", choices=("nram",), help="write the program as a .nram machine with a table controller")
    p.add_argument("-o", "--output", metavar="FILE", type=Path, help="with --emit: write to FILE instead of stdout")
    p.add_argument("--examples", type=int, default=64, help="test cases at the training complexity (default 64)")
    p.add_argument("--big", type=int, default=1000, help="the large complexity also tested, 0 for none (default 1000)")
    p.add_argument("--big-examples", type=int, default=16, help="test cases at --big (default 16)")
    p.add_argument("--skip-via", action="store_true",
                   help="run `via` gates on their built-in kernels: import nothing from beside the run's spec")


def _run_explain(args: argparse.Namespace) -> int:
    from nramdsl.programs.explain import explain_run
    from nramdsl.programs.report import explanation_json, explanation_text

    if args.examples < 1 or args.big < 0 or args.big_examples < 1:
        raise NramError("--examples and --big-examples must be >= 1, --big >= 0")
    if args.output is not None and args.emit is None:
        raise NramError("-o goes with --emit nram")
    ex = explain_run(args.run, examples=args.examples, big=args.big or None, big_examples=args.big_examples,
                     check=args.check, skip_via=args.skip_via)
    if args.emit:
        return _emit_program(ex, args.output)
    print(json.dumps(explanation_json(ex), indent=2) if args.json else explanation_text(ex), end="\n" if args.json else "")
    return 0


def _emit_program(ex: Any, output: Path | None) -> int:
    from nramdsl.programs.emit import emit_nram
    from nramdsl.programs.explain import emit_context

    if ex.program is None:
        raise NramError(f"run '{ex.run}' has an LSTM controller: its circuit depends on its state, so it has no "
                        f"table to write; `nramdsl explain {ex.run}` shows the circuits it chooses")
    text = emit_nram(ex.program, ex.spec, ex.model.wiring, emit_context(ex, output))
    _write_text(text, output)
    return 0


def _write_text(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise NramError(f"cannot write '{output}': {exc.strerror or exc}") from None
    print(f"wrote {output}", file=sys.stderr)


def _run_arguments(p: argparse.ArgumentParser) -> None:
    _add_spec(p)
    p.add_argument("--task", help="the task (default: the machine's `task`)")
    p.add_argument("--complexity", type=int, required=True, help="instance size (the paper's complexity)")
    p.add_argument("--examples", type=int, default=16, help="test cases (default 16)")
    p.add_argument("--memory", type=int, help="memory size M (default: just large enough)")
    p.add_argument("--timesteps", type=int, help="step budget (default: the machine's, scaled with the complexity, x slack)")
    p.add_argument("--slack", type=float, default=2.0, help="multiplier on the scaled step budget (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the test cases (default 0)")
    p.add_argument("--fuzzy", action="store_true",
                   help="also run the compiled controller's fuzzy model and compare (costs O(M^2) per step)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from nramdsl.programs.execute import run_table
    from nramdsl.training.setup import find_task

    spec = _load(args)
    name = args.task or spec.task
    if not name:
        raise NramError(f"machine '{spec.name}' names no task: add `task NAME` to it or pass --task", spec.span)
    for value, what in ((args.memory, "--memory"), (args.timesteps, "--timesteps")):
        if value is not None and value < 1:
            raise NramError(f"{what} must be >= 1")
    row = run_table(spec, find_task(name), args.complexity, examples=args.examples, memory=args.memory,
                    timesteps=args.timesteps, slack=args.slack, fuzzy=args.fuzzy, seed=args.seed)
    if args.json:
        print(json.dumps({"machine": spec.name, "task": name, **row.as_dict()}, indent=2))
        return 0
    head = ["complexity", "M", "T", "cases", "error", "solved", "halt step"]
    body = [row.complexity, row.memory, row.timesteps, row.cases, f"{row.error:.1%}", f"{row.solved:.1%}",
            f"{row.mean_halt_step:.1f}"]
    if row.fuzzy_error is not None:
        head += ["fuzzy err", "fuzzy = integer"]
        body += [f"{row.fuzzy_error:.1%}", f"{row.fuzzy_match:.1%}"]
    print(f"machine '{spec.name}' ({spec.controller.kind} controller) on task {name}, run on the integer machine")
    print(tabulate([body], headers=head, tablefmt="simple", colalign=("right",) * len(head), disable_numparse=True))
    return 0


def _trace_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="a run directory written by `nramdsl train`")
    p.add_argument("--complexity", type=int, help="instance size (default: the training complexity)")
    p.add_argument("--example", type=int, default=0, help="which test case (default 0)")
    p.add_argument("--discretize", action="store_true", help="trace the discretized model on the integer machine")
    p.add_argument("--timesteps", type=int, help="step budget (default: the training budget, scaled)")
    p.add_argument("--all-steps", action="store_true", help="show the fuzzy run's steps after the read-out too")
    p.add_argument("--plot", metavar="FILE.png", type=Path,
                   help="also draw memory, attention and halting as one figure (needs nramdsl[plot])")
    p.add_argument("--skip-via", action="store_true",
                   help="run `via` gates on their built-in kernels: import nothing from beside the run's spec")


def _run_trace(args: argparse.Namespace) -> int:
    from nramdsl.programs.trace import trace_run, trace_text

    if args.plot is not None:
        from nramdsl.programs.plot import require_matplotlib

        require_matplotlib()  # before the run, so a missing extra is said at once
    case = trace_run(args.run, complexity=args.complexity, example=args.example, discretize=args.discretize,
                     timesteps=args.timesteps, skip_via=args.skip_via)
    print(trace_text(case, all_steps=args.all_steps), end="")
    if args.plot is not None:
        from nramdsl.programs.plot import plot_trace

        plot_trace(case, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _curves_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="a run directory written by `nramdsl train` (a population's too)")
    p.add_argument("--plot", metavar="FILE.png", type=Path,
                   help="also draw each member's training error and curriculum level (needs nramdsl[plot])")
    p.add_argument("--window", metavar="N", type=_positive,
                   help="also the population per N steps: mean and lowest training error, mean level")


def _run_curves(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from nramdsl.programs.curves import curves_table, plot_curves, read_curves, window_table

    if args.plot is not None:
        from nramdsl.programs.plot import require_matplotlib

        require_matplotlib()
    curves = read_curves(args.run)
    print(tabulate(curves_table(curves), headers=["seed", "last step", "level", "best error", "last error", "PBT copies"],
                   tablefmt="simple", disable_numparse=True))
    if args.window is not None:
        print()
        print(tabulate(window_table(curves, args.window), headers=["steps", "mean error", "lowest error", "mean level",
                                                                  "members"], tablefmt="simple", disable_numparse=True))
    if args.plot is not None:
        plot_curves(curves, args.plot, f"{args.run.name}: {len(curves)} member(s)")
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


SUBCOMMANDS: list[Subcommand] = [
    Subcommand("check", "parse and validate a spec (all machines and gate sets)", _check_arguments, _run_check),
    Subcommand("compile", "resolve one machine and emit its circuit", _compile_arguments, _run_compile),
    Subcommand("train", "train a machine on its task and print the generalization table", _train_arguments, _run_train),
    Subcommand("eval", "evaluate a trained run at larger sizes, optionally discretized", _eval_arguments, _run_eval),
    Subcommand("reproduce", "train several seeds and write results/TASK.json", _reproduce_arguments, _run_reproduce),
    Subcommand("results", "print results/*.json as a table beside the paper's Table 1", _results_arguments, _run_results),
    Subcommand("explain", "a trained run's discrete program: its table, or an LSTM's circuits", _explain_arguments,
               _run_explain),
    Subcommand("run", "run a machine with a table controller on its task on the integer machine", _run_arguments,
               _run_run),
    Subcommand("trace", "one test case of a trained run, step by step (and --plot)", _trace_arguments, _run_trace),
    Subcommand("curves", "a run's learning curves per member: error, level, PBT copies (and --plot)", _curves_arguments,
               _run_curves),
]
TRAINING_COMMANDS = ("train", "reproduce")  # their help lists every training setting


EXAMPLES = """examples:
  nramdsl check examples/copy.nram                 check a spec: every error, located, in one pass
  nramdsl compile examples/copy.nram               what the machine is: sizes, circuit, kernels
  nramdsl compile examples/copy.nram -o copy.pt2   a torch.export program of it
  nramdsl train examples/copy.nram --steps 500     train on its task; Ctrl-C saves, --resume goes on
  nramdsl eval runs/copy-copy-s0 --discretize      test a trained run at larger sizes
  nramdsl reproduce examples/copy.nram --seeds 8 --jobs 2
  nramdsl results                                   results/*.json beside the paper's Table 1

`nramdsl COMMAND --help` describes a command; `nramdsl train --help` lists every training setting.
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nramdsl")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nramdsl", description="Neural Random-Access Machines from a spec.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"nramdsl {_version()}")
    parser.add_argument("--threads", type=_positive, metavar="N",
                        help=f"CPU threads for torch (default: $OMP_NUM_THREADS, else {DEFAULT_THREADS}: the machine is "
                             "many small operations, which more threads slow down)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in SUBCOMMANDS:
        extra: dict[str, Any] = {}
        if cmd.name in TRAINING_COMMANDS:
            from nramdsl.training.config import describe_settings

            extra = {"epilog": "training settings (--option KEY=VALUE; also `train { KEY = VALUE }` in a machine):\n"
                               + describe_settings(), "formatter_class": argparse.RawDescriptionHelpFormatter}
        # no abbreviated options: a command a results file records is rewritten by its options' full names
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, allow_abbrev=False, **extra)
        cmd.add_arguments(p)
        p.set_defaults(command_run=cmd.run, command_parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the words after `nramdsl`, for results that record their command
    _use_threads(args)
    try:
        return args.command_run(args)
    except NramError as exc:
        print(exc.format(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the file system said no (a full disk, a folder we may not write): not a bug
        where = f": '{exc.filename}'" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
