"""One unit of a seed search (one seed, or a population of K): trained, every member scored against the
four bars, and its rows left in `result.json`, keyed so that a later search can reuse them
(`nramdsl.training.search`). A unit runs in this process, in a worker process, or as a Ray task
(`nramdsl.training.cluster`); all three call `train_unit`.

Scoring (`score_members`): every member gets the rows up to three times the training complexity (the
results table's 2× and 3× columns); only the members at the train bar go on to 50 and to the integer
machine at 1,000. The rest cannot pass, and those two rows were most of the scoring time, spent on members
that never solved the training size. Their other three bars are `null` (not scored), the same whether the
member was trained alone or in a population; `nramdsl eval RUN --member SEED` scores one in full.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nramdsl.lang.spec import MachineSpec, SpecRef
from nramdsl.lang.tabulate import tabulate
from nramdsl.training.config import TrainConfig
from nramdsl.training.evaluate import BIG, GeneralizationReport, default_complexities, generalization_many
from nramdsl.training.loop import TrainResult, train_population
from nramdsl.training.rundir import RunDir
from nramdsl.training.setup import Job, plan

BARS = ("train", "generalize", "discrete", "discrete_1000")


@dataclass(frozen=True)
class Unit:
    """Seeds trained together (one, or a population) and their run directory."""

    seeds: tuple[int, ...]
    run: RunDir


def units(spec: MachineSpec, task: str, seeds: list[int], runs: Path, population: int) -> list[Unit]:
    out = []
    for i in range(0, len(seeds), population):
        chunk = tuple(seeds[i : i + population])
        run = (RunDir.default(runs, spec.name, task, chunk[0]) if len(chunk) == 1 and population == 1
               else RunDir.population_default(runs, spec.name, task, len(chunk), chunk[0]))
        out.append(Unit(chunk, run))
    return out


def member_row(result: TrainResult, report: GeneralizationReport, full: bool = True) -> dict[str, Any]:
    """One seed's row of the results: its training and its scores against the four bars (`full`: every row
    of `default_complexities` and the integer machine; else the bars past train are null, not scored)."""
    big = [r for r in report.rows if r.complexity == BIG]
    wall = result.wall  # training time, summed over resumes
    return {
        "seed": result.seed,
        "steps": result.steps,
        "wall_s": round(wall, 1),
        "steps_per_s": round(result.steps / max(wall, 1e-9), 2),
        "solved_at_step": result.solved_at,
        "gave_up_at_step": result.gave_up_at,
        "skipped": result.skipped,
        "bars": {
            "train": report.train_row.error == 0,
            "generalize": report.perfect() if full else None,
            "discrete": report.discrete_perfect() if full else None,
            "discrete_1000": (bool(big) and big[0].discrete_error == 0) if full else None,
        },
        "train_error": report.train_row.error,
        "table": [r.as_dict() for r in report.rows],
    }


def machine_fingerprint(spec: MachineSpec) -> str:
    """A hash of what a trained controller depends on: sizes, circuit, controller, halting, what `write`
    returns and every gate's table at M. Not file names or source positions: the same machine loaded
    through another path (a worker gets an absolute one) or with other comments hashes the same."""
    shape = {"registers": spec.registers, "memory": spec.memory, "timesteps": spec.timesteps,
             "circuit": list(spec.circuit), "controller": [spec.controller.kind, spec.controller.hidden],
             "halt": spec.halt, "write_returns": spec.write_returns}
    h = hashlib.sha256(json.dumps(shape, sort_keys=True).encode())
    for name in spec.circuit:
        gate = spec.gates[name]
        h.update(f"{name}:{gate.builtin}:{gate.arity};".encode())
        if not gate.builtin:
            h.update(tabulate(gate, spec.memory).tobytes())
    return h.hexdigest()


def unit_key(spec: MachineSpec, cfg: TrainConfig, unit: Unit) -> dict[str, Any]:
    settings = {k: v for k, v in cfg.settings().items() if k != "seed"}
    return {"config": settings, "machine": machine_fingerprint(spec), "seeds": list(unit.seeds)}


def train_unit(spec: MachineSpec, cfg: TrainConfig, unit: Unit, origin: SpecRef | None, progress: bool = False,
               resume: bool = False) -> list[dict[str, Any]]:
    """Train a unit, score every member (their fuzzy runs batched), and leave result.json behind."""
    # The run directory is about to be rewritten: its result becomes what is being trained (an atomic
    # replace), until the new result replaces that; a search killed part-way resumes this unit from its
    # last checkpoint instead of starting it again (`search.saved_unit`).
    # The folder is held from here to the result (`RunDir.lock`): no other search trains or scores in it.
    with unit.run.lock():
        unit.run.write_result({"key": unit_key(spec, cfg, unit), "training": True})
        job = plan(spec, cfg)
        results = train_population(spec, cfg, list(unit.seeds), unit.run.path, resume=resume, progress=progress,
                                   origin=origin)
        t0 = time.perf_counter()
        rows = score_members(results, job)
        for row in rows:
            row["eval_s"] = round((time.perf_counter() - t0) / len(rows), 1)
        unit.run.write_result({"key": unit_key(spec, cfg, unit), "rows": rows})
    return rows


def score_members(results: list[TrainResult], job: Job, examples: int = 64) -> list[dict[str, Any]]:
    """Each member's row, scored as the module docstring says. A member's rows are the first rows of its
    full table (`score_in_full`), on the same test cases: each row draws them from one fixed seed, whoever
    else is scored."""
    spec, complexity = job.spec, job.complexity
    near = [c for c in default_complexities(complexity) if c <= 3 * complexity]
    far = [c for c in default_complexities(complexity) if c > 3 * complexity]
    reports = generalization_many([r.model for r in results], job.task, spec, complexity, complexities=near, big=None,
                                  examples=examples, readout=job.config.readout)
    full = [k for k, rep in enumerate(reports) if rep.train_row.error == 0]
    rest = generalization_many([results[k].model for k in full], job.task, spec, complexity, complexities=far,
                               examples=examples, readout=job.config.readout) if full else []
    for k, extra in zip(full, rest):
        reports[k] = GeneralizationReport(reports[k].rows + extra.rows, reports[k].train_row)
    return [member_row(r, rep, full=k in full) for k, (r, rep) in enumerate(zip(results, reports))]


def score_in_full(results: list[TrainResult], job: Job, examples: int = 64) -> list[dict[str, Any]]:
    """Every member on every row, off the train bar or not: what `reproduce` did before `score_members`, kept
    as the reference that tests/test_search.py and benchmarks/bench_scoring.py hold `score_members` to."""
    reports = generalization_many([r.model for r in results], job.task, job.spec, job.complexity, examples=examples,
                                  readout=job.config.readout)
    return [member_row(r, rep) for r, rep in zip(results, reports)]
