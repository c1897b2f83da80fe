"""Reproducing Table 1: train many seeds of one machine and score each against the paper's bars.

Bars, per seed (member):
  train        error 0 at the training complexity, memory and step budget;
  generalize   error 0 at every complexity of `default_complexities` up to 50 (the paper's "perfect"),
               with M just large enough and twice the scaled step budget, read out where the model halts;
  discrete     the discretized model (integer machine) writes exactly the fuzzy model's outputs on all
               those test cases (the paper's "perfect" discretization);
  discrete_1000  the discretized model has error 0 at complexity 1,000 (past the paper, which stopped at
               50 for lack of memory; the integer machine makes it cheap).

Success is a matter of seeds (the paper: about 11 % converge), so the search is built for volume. Seeds are
trained in *units*: one seed alone, or a population of K seeds as one batched model (`--population K`).
Units run one after another, in parallel processes (`--jobs`), or as tasks on a Ray cluster (`--ray`,
`nramdsl.training.cluster`). Each finished unit leaves `result.json` in its run directory, keyed by its
settings, seeds and a fingerprint of the machine, so a later, larger search reuses it. A larger step budget
reuses too: a unit whose members all stopped on their own before the old budget is what a unit with the
larger budget would be, and a unit with a member that used its whole budget is resumed from its checkpoint
(resume is exact, so this equals a fresh run with the larger budget). A unit stopped part-way (killed,
Ctrl-C) resumes from its last checkpoint under any budget that checkpoint does not lie past, smaller too:
a search can be finished early at what it has.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from nramdsl.errors import NramError
from nramdsl.lang.frontend import load_ref
from nramdsl.lang.spec import MachineSpec, SpecRef
from nramdsl.training.config import TrainConfig, settings_differ
from nramdsl.training.interrupt import stop_with_parent
from nramdsl.training.pbt import origins, read_copy
from nramdsl.training.results_table import first_passes, passes, population_groups, populations_passing
from nramdsl.training.rundir import check_checkpoint, load_checkpoint
from nramdsl.training.unit import BARS, Unit, machine_fingerprint, train_unit, units

@dataclass(frozen=True)
class Saved:
    """What a unit's run directory holds for these settings: rows to reuse as they are, or a run to resume."""

    rows: list[dict[str, Any]] | None = None
    # resume the unit: only the step budget grew, past a member that used all of its own; or it was
    # interrupted before it finished (killed, Ctrl-C, a lost worker)
    extend: bool = False


def saved_unit(spec: MachineSpec, cfg: TrainConfig, unit: Unit) -> Saved:
    """The saved result of a unit trained earlier on this machine with the same settings, up to `steps`.
    A result.json of another shape (hand-edited, from another tool) is no result: the unit trains again, as
    it does when the file is not JSON at all."""
    saved = unit.run.read_result()
    if saved is None:
        return Saved()
    fingerprint = machine_fingerprint(spec)
    try:
        return _saved(fingerprint, cfg, unit, saved)
    except (KeyError, TypeError, AttributeError):
        return Saved()


def _saved(fingerprint: str, cfg: TrainConfig, unit: Unit, saved: dict[str, Any]) -> Saved:
    key = saved.get("key") or {}
    rows = saved.get("rows") or ([saved["row"]] if "row" in saved else [])
    interrupted = saved.get("training") is True  # started with these settings, never finished
    seeds = key.get("seeds") if interrupted else [r["seed"] for r in rows]
    if key.get("machine") != fingerprint or seeds != list(unit.seeds):
        return Saved()
    then = key.get("config") or {}
    if settings_differ(then, cfg.settings(), frozenset({"steps", "seed"})):  # a new setting leaves units as they are
        return Saved()
    budget = then.get("steps", TrainConfig().steps)
    if interrupted:  # on from its last checkpoint, unless that lies past the budget asked for now
        return Saved(extend=unit.run.has_checkpoint() and (budget <= cfg.steps or _checkpoint_step(unit) <= cfg.steps))
    if budget == cfg.steps or all(r["steps"] < budget and r["steps"] <= cfg.steps for r in rows):
        return Saved(rows=rows)  # the same budget, or members that all stopped by themselves within both
    if budget < cfg.steps and unit.run.has_checkpoint():
        return Saved(extend=True)
    return Saved()


def _checkpoint_step(unit: Unit) -> float:
    """The step of an interrupted unit's checkpoint: a search stopped part-way can be finished with a smaller
    budget than it started with, from there. A checkpoint that cannot be read is no step (train afresh)."""
    try:
        return check_checkpoint(load_checkpoint(unit.run.checkpoint), unit.run.checkpoint).get("step", math.inf)
    except NramError:
        return math.inf


def _unit_job(origin: SpecRef, cfg: TrainConfig, unit: Unit, threads: int, resume: bool) -> list[dict[str, Any]]:
    """One unit in a worker process: the machine is loaded again from its file (specs hold compiled gates)."""
    torch.set_num_threads(threads)
    return train_unit(load_ref(origin), cfg, unit, origin, resume=resume)


def run_seeds(spec: MachineSpec, cfg: TrainConfig, seeds: list[int], runs: Path, origin: SpecRef, *,
              population: int = 1, jobs: int = 1, reuse: bool = True, progress: bool = False,
              ray: str | None = None, report: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """Train and score every seed, in units of `population` seeds, and return the rows in seed order. A unit
    whose run directory holds a result for the same machine and settings is not trained again (unless
    `reuse` is off), so adding seeds costs only the new ones."""
    rows: dict[int, dict[str, Any]] = {}
    todo: list[tuple[Unit, bool]] = []
    every_unit = units(spec, cfg.task, seeds, runs, population)
    for unit in every_unit:
        saved = saved_unit(spec, cfg, unit) if reuse else Saved()
        if saved.rows is not None:
            report(f"{_span(unit)}: reusing {unit.run.path}")
            rows.update((r["seed"], r) for r in saved.rows)
            continue
        if saved.extend:
            report(f"{_span(unit)}: resuming {unit.run.path} to {cfg.steps} steps")
        todo.append((unit, saved.extend))
    if ray is not None:
        from nramdsl.training.cluster import run_on_ray

        for unit_rows in run_on_ray(ray, origin, cfg, todo, report):
            rows.update((r["seed"], r) for r in unit_rows)
    else:
        for unit_rows in _run_local(spec, cfg, todo, origin, jobs, progress, report):
            rows.update((r["seed"], r) for r in unit_rows)
    for unit in every_unit:
        for seed, first in (weight_origins(unit) or {}).items():
            rows[seed] = {**rows[seed], "origin": first}
    return [rows[seed] for seed in seeds]


def weight_origins(unit: Unit) -> dict[int, int] | None:
    """Per member, the seed whose initialization its final weights descend from (`pbt.origins`), read
    from the PBT copies in the unit's metrics; None where they cannot be read (a Ray worker's run
    directory on another machine, a damaged file) or name other seeds."""
    try:
        copies = [c for c in map(read_copy, unit.run.read_metrics()) if c is not None]
    except (NramError, OSError, ValueError):
        return None
    return origins(list(unit.seeds), [(c.round, c.seed, c.copied) for c in copies])


def _run_local(spec: MachineSpec, cfg: TrainConfig, todo: list[tuple[Unit, bool]], origin: SpecRef, jobs: int,
               progress: bool, report: Callable[[str], None]) -> list[list[dict[str, Any]]]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // max(jobs, 1))
    done: list[list[dict[str, Any]]] = []
    if jobs <= 1:
        for unit, resume in todo:
            report(f"{_span(unit)}: training up to {cfg.steps} steps")
            done.append(train_unit(spec, cfg, unit, origin, progress, resume))
            report(f"{_span(unit)}: {_passed(done[-1])}")
        return done
    if todo:
        names = ", ".join(_span(u).removeprefix("seed ").removeprefix("seeds ") for u, _ in todo)
        report(f"training seeds {names}, {jobs} at a time, {threads} thread(s) each")
        # spawn, not fork: a forked child would inherit the parent's torch thread pools
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=stop_with_parent, initargs=(os.getpid(),)) as pool:
            futures = [(pool.submit(_unit_job, origin, cfg, unit, threads, resume), unit) for unit, resume in todo]
            for future, unit in futures:
                done.append(future.result())
                report(f"{_span(unit)}: {_passed(done[-1])}")
    return done


def _span(unit: Unit) -> str:
    return f"seed {unit.seeds[0]}" if len(unit.seeds) == 1 else f"seeds {unit.seeds[0]}-{unit.seeds[-1]}"


def _passed(rows: list[dict[str, Any]]) -> str:
    if len(rows) == 1:
        return f"{rows[0]['bars']} ({rows[0]['wall_s']} s)"
    every = sum(1 for r in rows if passes(r))
    return f"{every} of {len(rows)} members pass every bar"


def recorded_machine(spec: MachineSpec) -> dict[str, Any]:
    """The machine's sizes and controller as a summary records them (what `--extend` compares in a results
    file written before summaries carried the fingerprint)."""
    return {"registers": spec.registers, "memory": spec.memory, "timesteps": spec.timesteps,
            "controller": f"{spec.controller.kind}(hidden = {spec.controller.hidden})"}


def summarize(task: str, spec: MachineSpec, cfg: TrainConfig, seeds: list[dict[str, Any]], command: str,
              population: int = 1) -> dict[str, Any]:
    passing = [s for s in seeds if passes(s)]
    seed_steps = sum(s["steps"] for s in seeds)
    wall = sum(max(s["wall_s"] for s in g) for g in population_groups(seeds, population))  # a unit trains its members at once
    return {
        "task": task,
        "machine": spec.name,
        "fingerprint": machine_fingerprint(spec),  # what `reproduce --extend` checks before adding seeds to it
        "command": command,
        **recorded_machine(spec),
        "config": {k: v for k, v in cfg.settings().items() if k != "seed"},
        "population": population,
        "seeds_tried": len(seeds),
        "reached": {b: sum(1 for s in seeds if s["bars"][b]) for b in BARS},
        "populations": populations_passing(seeds, population),
        "compute": {"seed_steps": seed_steps, "train_wall_s": round(wall, 1),
                    "eval_wall_s": round(sum(s.get("eval_s", 0.0) for s in seeds), 1),
                    "seed_steps_per_passing": round(seed_steps / len(passing)) if passing else None,
                    "train_wall_s_per_passing": round(wall / len(passing), 1) if passing else None},
        # distinct initializations among the passing members: PBT copies of one solution count once
        "passing_origins": len({s["origin"] for s in passing}) if all("origin" in s for s in passing) else None,
        "first_pass": first_passes(seeds, population),
        "best_train_error": min((s["train_error"] for s in seeds if s["train_error"] is not None), default=None),
        "mean_steps_per_s": round(sum(s["steps_per_s"] for s in seeds) / max(len(seeds), 1), 2),
        "seeds": seeds,
    }
