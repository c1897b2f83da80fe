"""`nramdsl train`, `nramdsl eval` and `nramdsl reproduce`: subcommands registered in `nramdsl.cli`."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from nramdsl.checkpoint import write_json
from nramdsl.cli_args import Subcommand, add_set_option
from nramdsl.errors import NramError
from nramdsl.evaluate import default_complexities, format_table
from nramdsl.experiment import generalization, run_seeds, summarize
from nramdsl.ir import MachineSpec
from nramdsl.loader import load_file
from nramdsl.results_table import results_table
from nramdsl.semantics import resolve_machine
from nramdsl.tasks import available_tasks, get_task
from nramdsl.train import load_run, load_spec, train, training_complexity
from nramdsl.train_config import CHOICES, TrainConfig, coerce_settings


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _machine_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="an .nram file")
    p.add_argument("--machine", help="which machine (default: the first in SPEC)")
    p.add_argument("--task", help=f"the task (default: the machine's `task`); one of {', '.join(available_tasks())}")
    add_set_option(p)
    p.add_argument("--steps", type=int, help="optimizer updates (default: the machine's train block, else 2000)")
    p.add_argument("--option", dest="options", metavar="KEY=VALUE", type=_option, action="append", default=[],
                   help="any training setting, e.g. --option lr=0.01 --option noise_eta=0.3; repeatable")


def _resolve(args: argparse.Namespace) -> tuple[MachineSpec, TrainConfig, dict[str, Any]]:
    spec = resolve_machine(load_file(args.spec), args.machine, dict(args.overrides))
    settings = coerce_settings(spec.train, spec.span)  # the machine's preset
    settings.update(coerce_settings(dict(args.options), None, "--option"))
    if args.steps is not None:
        settings["steps"] = args.steps
    if getattr(args, "seed", None) is not None:
        settings["seed"] = args.seed
    settings["task"] = args.task or settings.get("task") or spec.task or ""
    if not settings["task"]:
        raise NramError(f"machine '{spec.name}' names no task: add `task NAME` to it or pass --task", spec.span)
    get_task_checked(settings["task"])
    cfg = TrainConfig(**settings)
    info = {"path": str(Path(args.spec).resolve()), "machine": spec.name, "overrides": dict(args.overrides)}
    return spec, cfg, info


def get_task_checked(name: str) -> None:
    try:
        get_task(name)
    except (KeyError, ValueError) as exc:
        raise NramError(str(exc.args[0] if exc.args else exc)) from None


# ---- train


def _train_arguments(p: argparse.ArgumentParser) -> None:
    _machine_arguments(p)
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--out", type=Path, help="run directory (default runs/MACHINE-TASK-sSEED)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-eval", action="store_true", help="skip the generalization table at the end")
    p.add_argument("--examples", type=int, default=64, help="test cases per row of the final table")


def _run_train(args: argparse.Namespace) -> int:
    spec, cfg, info = _resolve(args)
    out = args.out or Path("runs") / f"{spec.name}-{cfg.task}-s{cfg.seed}"
    if args.resume and not (out / "checkpoint.pt").exists():
        raise NramError(f"nothing to resume: {out / 'checkpoint.pt'} does not exist")
    print(f"training machine '{spec.name}' on task '{cfg.task}' for {cfg.steps} steps -> {out}", file=sys.stderr)
    result = train(spec, cfg, out, resume=args.resume, progress=sys.stderr.isatty(), spec_info=info)
    print(f"done: {result.steps} steps in {result.wall:.1f} s ({result.steps / max(result.wall, 1e-9):.1f} steps/s), "
          f"train error {result.train_error:.1%} at difficulty {result.level}, {result.skipped} updates skipped")
    if result.gave_up_at is not None:
        why = (f"the training task was not solved within {cfg.solve_within} steps (solve_within)"
               if result.stopped == "unsolved" else
               f"the curriculum level had not risen for {cfg.give_up_after} steps (give_up_after)")
        print(f"gave up at step {result.gave_up_at}: {why}; most seeds stall like this, so try another --seed")
    if not args.no_eval:
        task = get_task(cfg.task)
        c = training_complexity(task, cfg, spec.memory)
        report = generalization(result.model, task, spec, c, examples=args.examples, readout=cfg.readout)  # type: ignore[arg-type]
        print(f"\ngeneralization (trained up to complexity {c}; M just fits, T = 2 x scaled; "
              f"read out at the halting step; the last row runs the integer machine only)")
        print(format_table([report.train_row] + report.rows))
    return 0


# ---- eval


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="a run directory written by `nramdsl train`")
    p.add_argument("--complexity", type=int, action="append", help="complexity to test (repeatable); "
                   "default: training complexity, twice it, 20 and 50")
    p.add_argument("--memory", type=int, help="memory size M for every row (default: just large enough)")
    p.add_argument("--timesteps", type=int, help="step budget T for every row (default: 2 x scaled)")
    p.add_argument("--slack", type=float, default=2.0, help="multiplier on the scaled step budget (default 2)")
    p.add_argument("--discretize", action="store_true", help="also run the discretized model on the integer machine")
    p.add_argument("--big", type=int, default=0, help="with --discretize, also run the integer machine alone at this complexity")
    p.add_argument("--readout", choices=CHOICES["readout"], help="read-out rule (default: the run's)")
    p.add_argument("--examples", type=int, default=64, help="test cases per row")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_eval(args: argparse.Namespace) -> int:
    if not (args.run / "checkpoint.pt").exists():
        raise NramError(f"'{args.run}' is not a run directory (no checkpoint.pt)")
    model, config = load_run(args.run)
    spec = load_spec(config["spec"])
    task = get_task(config["task"])
    c = config["complexity"]
    readout = args.readout or config["train"]["readout"]
    for value, what in ((args.memory, "--memory"), (args.timesteps, "--timesteps")):
        if value is not None and value < 1:
            raise NramError(f"{what} must be >= 1")
    report = generalization(model, task, spec, c, complexities=args.complexity or default_complexities(c),
                            examples=args.examples, slack=args.slack, readout=readout, discretize=args.discretize,
                            big=args.big or None, memory=args.memory, timesteps=args.timesteps)
    if args.json:
        print(json.dumps({"task": task.name, "train_complexity": c, "readout": readout,
                          "train": report.train_row.as_dict(), "rows": [r.as_dict() for r in report.rows]}, indent=2))
    else:
        print(format_table([report.train_row] + report.rows))
    return 0


# ---- reproduce


def _reproduce_arguments(p: argparse.ArgumentParser) -> None:
    _machine_arguments(p)
    p.add_argument("--seeds", type=int, default=3, help="how many seeds (0 .. N-1) to train")
    p.add_argument("--jobs", type=int, default=1, help="seeds trained at once, each in its own process (default 1)")
    p.add_argument("--fresh", action="store_true",
                   help="retrain every seed (default: reuse a seed already trained with the same machine and settings)")
    p.add_argument("--results", type=Path, default=Path("results"), help="folder for TASK.json (default results/)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="folder for the run directories")


def _run_reproduce(args: argparse.Namespace) -> int:
    spec, cfg, info = _resolve(args)
    if args.seeds < 1 or args.jobs < 1:
        raise NramError("--seeds and --jobs must be >= 1")
    seeds = run_seeds(spec, cfg, list(range(args.seeds)), args.runs, info, jobs=args.jobs, reuse=not args.fresh,
                      progress=sys.stderr.isatty(),
                      report=lambda line: print(f"[{cfg.task}] {line}", file=sys.stderr, flush=True))
    command = "nramdsl " + " ".join(shlex.quote(a) for a in args.argv)
    summary = summarize(cfg.task, spec, cfg, seeds, command)
    path = args.results / f"{cfg.task}.json"
    write_json(path, summary)
    print(json.dumps({k: summary[k] for k in ("task", "seeds_tried", "reached", "mean_steps_per_s")}))
    print(f"wrote {path}", file=sys.stderr)
    return 0


# ---- results


def _results_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=Path("results"), help="folder of TASK.json files (default results/)")


def _run_results(args: argparse.Namespace) -> int:
    if not args.results.is_dir():
        raise NramError(f"'{args.results}' is not a folder of results (run `nramdsl reproduce` first)")
    print(results_table(args.results), end="")
    return 0


COMMANDS = [
    Subcommand("train", "train a machine on its task and print the generalization table", _train_arguments, _run_train),
    Subcommand("eval", "evaluate a trained run at larger sizes, optionally discretized", _eval_arguments, _run_eval),
    Subcommand("reproduce", "train several seeds and write results/TASK.json", _reproduce_arguments, _run_reproduce),
    Subcommand("results", "print results/*.json as a table beside the paper's Table 1", _results_arguments, _run_results),
]
