"""Does gradient descent keep a solution it starts near? Training from a hand-written table, softened.

A table controller compiles to an MLP whose head puts logit `scale` on each choice of the program and 0 on
the others (nramdsl.machine.weights): at scale 30 the fuzzy run is the integer program; at scale 1 the
program's choice of, say, 17 candidates has probability e / (e + 16) ≈ 0.15 against 0.06 for uniform. Each
scale here is a start at that distance from an exact solution, in the feedforward controller's own weight
space, with its features (one hidden unit per zero-pattern) already right. Training from it with the
machine's preset tells the two explanations of a failed search apart: if gradient descent reaches and keeps
the solution from a soft start, the solution is an attractor and a search from random weights fails by not
getting near it (exploration); if it walks away even from close by, the objective itself leads elsewhere
(the landscape). Every member is scored against the four bars, as `nramdsl reproduce` does. One thread.

    python benchmarks/softened_tables.py examples/permutation_by_hand.nram examples/listsearch_by_hand.nram \
        --scales 1 2 3 4 --seeds 8 --steps 600 --option stop.give_up_after=0 \
        --json results/alternatives/softened-tables/curriculum.json

`--option KEY=VALUE` changes a training setting for every run (e.g. `--option entropy.coef=0`).
`--start-only` prints each scale's start error without training (where the fuzzy run stops being exact).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from nramdsl.cli import option_arg
from nramdsl.errors import NramError
from nramdsl.lang.frontend import load_machine
from nramdsl.lang.spec import MachineSpec
from nramdsl.machine.fuzzy import NRAM
from nramdsl.training.evaluate import evaluate, scaled_budget
from nramdsl.training.loop import train_population
from nramdsl.training.results_table import passes
from nramdsl.training.setup import Job, configure, plan
from nramdsl.training.unit import score_members


def softened(spec: MachineSpec, scale: int) -> MachineSpec:
    """The machine with its table compiled at logit margin `scale` (the spec's own scale replaced)."""
    table = spec.controller.table
    if table is None:
        raise NramError(f"machine '{spec.name}' has no table controller to soften", spec.span)
    controller = dataclasses.replace(spec.controller, table=dataclasses.replace(table, scale=scale))
    return dataclasses.replace(spec, controller=controller)


def softened_job(path: str, scale: int, options: dict[str, str]) -> Job:
    """The training job of the machine in `path` with its table softened to `scale`."""
    spec = softened(load_machine(path), scale)
    return plan(spec, configure(spec, options))


def start_error(job: Job, examples: int) -> float:
    """The fuzzy error of the untrained softened table at the training budget (where training starts)."""
    model = NRAM(job.spec, job.config.model).to(torch.float32)
    budget = scaled_budget(job.task, job.complexity, job.complexity, job.spec.memory, job.spec.timesteps, slack=1.0)
    return evaluate(model, job.task, budget, examples=examples, readout=job.config.readout).error


def run(path: str, scale: int, seeds: list[int], steps: int, options: dict[str, str]) -> dict[str, Any]:
    job = softened_job(path, scale, {**options, "steps": str(steps)})
    t0 = time.perf_counter()
    results = train_population(job.spec, job.config, seeds)
    wall = time.perf_counter() - t0
    rows = score_members(results, job)
    return {
        "spec": path,
        "machine": job.spec.name,
        "scale": scale,
        "start_error": round(start_error(job, 64), 4),
        "members": len(rows),
        "solved": sum(r["solved_at_step"] is not None for r in rows),
        "passing": sum(passes(r) for r in rows),
        "seed_steps": sum(r["steps"] for r in rows),
        "train_wall_s": round(wall, 1),
        "seeds": [{k: r[k] for k in ("seed", "steps", "solved_at_step", "train_error", "bars")} for r in rows],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+", help=".nram files whose first machine has a table controller")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--seeds", type=int, default=4, help="members per scale (seeds 0 .. N-1, one population)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--option", type=option_arg, action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", type=Path, help="write every run's record here")
    ap.add_argument("--start-only", action="store_true", help="only the untrained softened tables' errors")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    options = dict(args.option)
    records = []
    try:
        for path in args.specs:
            for scale in args.scales:
                if args.start_only:
                    job = softened_job(path, scale, options)
                    records.append({"spec": path, "machine": job.spec.name, "scale": scale,
                                    "start_error": round(start_error(job, 64), 4)})
                    print(f"{job.spec.name:<24} scale {scale:>2}: start error {records[-1]['start_error']:.1%}",
                          flush=True)
                    continue
                rec = run(path, scale, list(range(args.seeds)), args.steps, options)
                records.append(rec)
                print(f"{rec['machine']:<24} scale {scale:>2}: start error {rec['start_error']:.1%}, "
                      f"solved {rec['solved']}/{rec['members']}, every bar {rec['passing']}/{rec['members']}, "
                      f"{rec['seed_steps']} seed-steps, {rec['train_wall_s']} s", flush=True)
    except NramError as e:
        print(e.format(), file=sys.stderr)
        return 1
    if args.json:
        out = {"command": "python benchmarks/softened_tables.py " + " ".join(argv or sys.argv[1:]),
               "options": options, "steps": args.steps, "runs": records}
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
