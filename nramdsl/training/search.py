"""Reproducing Table 1: train several seeds of one machine and score each against the paper's bars.

Bars, per seed (each implies the one before it only where noted):
  train        error 0 at the training complexity, memory and step budget;
  generalize   error 0 at every complexity of `default_complexities` up to 50 (the paper's "perfect"),
               with M just large enough and twice the scaled step budget, read out where the model halts;
  discrete     the discretized model (integer machine) writes exactly the fuzzy model's outputs on all
               those test cases (the paper's "perfect" discretization);
  discrete_1000  the discretized model has error 0 at complexity 1,000 (past the paper, which stopped at
               50 for lack of memory; the integer machine makes it cheap).

Success is a matter of seeds (the paper: about 11 % converge), so `run_seeds` is built for a search:
seeds run in parallel processes, and each finished seed leaves `result.json` in its run directory,
keyed by its settings and a fingerprint of the machine, so a later, larger search reuses it. A larger
step budget reuses too: a run that stopped on its own (gave up, or stopped on its probe) before its old
budget is what a run with the larger budget would be, and a run that used its whole budget is resumed
from its checkpoint (resume is exact, so this equals a fresh run with the larger budget).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from nramdsl.lang.frontend import load_ref
from nramdsl.lang.spec import MachineSpec, SpecRef
from nramdsl.lang.tabulate import tabulate
from nramdsl.training.config import TrainConfig
from nramdsl.training.evaluate import BIG, generalization
from nramdsl.training.loop import train
from nramdsl.training.rundir import RunDir
from nramdsl.training.setup import plan


def run_seed(spec: MachineSpec, cfg: TrainConfig, run: RunDir | None, origin: SpecRef | None,
             progress: bool = False, resume: bool = False) -> dict[str, Any]:
    """Train one seed and score it against the four bars: its row of the results."""
    job = plan(spec, cfg)
    result = train(spec, cfg, run.path if run else None, resume=resume, progress=progress, origin=origin)
    wall = result.wall  # training time, summed over resumes
    report = generalization(result.model, job.task, spec, job.complexity, readout=cfg.readout)
    big = [r for r in report.rows if r.complexity == BIG]
    return {
        "seed": cfg.seed,
        "steps": result.steps,
        "wall_s": round(wall, 1),
        "steps_per_s": round(result.steps / max(wall, 1e-9), 2),
        "solved_at_step": result.solved_at,
        "gave_up_at_step": result.gave_up_at,
        "skipped": result.skipped,
        "bars": {
            "train": report.train_row.error == 0,
            "generalize": report.perfect(),
            "discrete": report.discrete_perfect(),
            "discrete_1000": bool(big) and big[0].discrete_error == 0,
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


def _seed_key(spec: MachineSpec, cfg: TrainConfig) -> dict[str, Any]:
    return {"config": cfg.settings(), "machine": machine_fingerprint(spec)}


@dataclass(frozen=True)
class Saved:
    """What a seed's run directory holds for these settings: a row to reuse as it is, or a run to resume."""

    row: dict[str, Any] | None = None
    extend: bool = False  # resume the run: only the step budget grew, past a run that used all of its own


def saved_seed(spec: MachineSpec, cfg: TrainConfig, run: RunDir) -> Saved:
    """The saved result of a seed trained earlier on this machine with the same settings, up to `steps`."""
    saved = run.read_result()
    if saved is None:
        return Saved()
    key = saved.get("key") or {}
    if key.get("machine") != machine_fingerprint(spec):
        return Saved()
    # A setting the saved run did not know had its default then: a new option whose default keeps the old
    # behaviour does not make finished seeds stale.
    defaults, now, then = TrainConfig().settings(), cfg.settings(), key.get("config") or {}
    if any(then.get(k, defaults.get(k)) != now.get(k, defaults.get(k)) for k in (set(now) | set(then)) - {"steps"}):
        return Saved()
    row, budget = saved["row"], then.get("steps", defaults["steps"])
    if budget == cfg.steps or row["steps"] < budget and row["steps"] <= cfg.steps:
        return Saved(row=row)  # the same budget, or a run that stopped by itself within both budgets
    if row["steps"] == budget < cfg.steps and run.has_checkpoint():
        return Saved(extend=True)
    return Saved()


def _train_seed(spec: MachineSpec, cfg: TrainConfig, run: RunDir, origin: SpecRef | None,
                progress: bool = False, resume: bool = False) -> dict[str, Any]:
    run.clear_result()  # the run directory is about to be rewritten
    row = run_seed(spec, cfg, run, origin, progress=progress, resume=resume)
    run.write_result({"key": _seed_key(spec, cfg), "row": row})
    return row


def _seed_job(origin: SpecRef, cfg: TrainConfig, run: RunDir, threads: int, resume: bool) -> dict[str, Any]:
    """One seed in a worker process: the machine is loaded again from its file (specs hold compiled gates)."""
    torch.set_num_threads(threads)
    return _train_seed(load_ref(origin), cfg, run, origin, resume=resume)


def run_seeds(spec: MachineSpec, cfg: TrainConfig, seeds: list[int], runs: Path, origin: SpecRef, *,
              jobs: int = 1, reuse: bool = True, progress: bool = False,
              report: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """Train and score every seed (in `jobs` processes, one share of the cores each) and return the rows in
    seed order. A seed whose run directory holds a result for the same machine and settings is not
    trained again (unless `reuse` is off), so adding seeds costs only the new ones; with a larger step
    budget, only the runs that used all of the old one train on, from their checkpoints."""
    rows: dict[int, dict[str, Any]] = {}
    todo: list[tuple[int, TrainConfig, RunDir, bool]] = []
    for seed in seeds:
        run_cfg = cfg.replace(seed=seed)
        run = RunDir.default(runs, spec.name, cfg.task, seed)
        saved = saved_seed(spec, run_cfg, run) if reuse else Saved()
        if saved.row is not None:
            report(f"seed {seed}: reusing {run.path}: {saved.row['bars']}")
            rows[seed] = saved.row
        else:
            if saved.extend:
                report(f"seed {seed}: resuming {run.path} to {run_cfg.steps} steps")
            todo.append((seed, run_cfg, run, saved.extend))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // max(jobs, 1))
    if jobs <= 1:
        for seed, run_cfg, run, resume in todo:
            report(f"seed {seed}: training {run_cfg.steps} steps")
            rows[seed] = _train_seed(spec, run_cfg, run, origin, progress, resume)
            report(f"seed {seed}: {rows[seed]['bars']} ({rows[seed]['wall_s']} s)")
    elif todo:
        report(f"training seeds {', '.join(str(t[0]) for t in todo)}, {jobs} at a time, {threads} thread(s) each")
        # spawn, not fork: a forked child would inherit the parent's torch thread pools
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_seed_job, origin, run_cfg, run, threads, resume): seed
                       for seed, run_cfg, run, resume in todo}
            for future, seed in futures.items():
                rows[seed] = future.result()
                report(f"seed {seed}: {rows[seed]['bars']} ({rows[seed]['wall_s']} s)")
    return [rows[seed] for seed in seeds]


def summarize(task: str, spec: MachineSpec, cfg: TrainConfig, seeds: list[dict[str, Any]], command: str) -> dict[str, Any]:
    bars = ["train", "generalize", "discrete", "discrete_1000"]
    return {
        "task": task,
        "machine": spec.name,
        "command": command,
        "registers": spec.registers,
        "memory": spec.memory,
        "timesteps": spec.timesteps,
        "controller": f"{spec.controller.kind}(hidden = {spec.controller.hidden})",
        "config": {k: v for k, v in cfg.settings().items() if k != "seed"},
        "seeds_tried": len(seeds),
        "reached": {b: sum(1 for s in seeds if s["bars"][b]) for b in bars},
        "best_train_error": min((s["train_error"] for s in seeds if s["train_error"] is not None), default=None),
        "mean_steps_per_s": round(sum(s["steps_per_s"] for s in seeds) / max(len(seeds), 1), 2),
        "seeds": seeds,
    }
