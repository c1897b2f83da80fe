"""Time to the first member that passes every bar: a population with PBT, a population of independent seeds,
and one seed per process, two processes at once (what `nramdsl reproduce --jobs 2` does).

A member is a candidate once it stops on its probes (two error-free probes at twice the training size, the
preset's rule); it is scored at once against the four bars (`nramdsl.training.unit`), and the first that
passes ends the measurement. Reports wall seconds and seed-steps (training steps summed over every seed or
member trained so far) to that moment. One thread per process. One JSON line per mode:

    python benchmarks/bench_first_pass.py --spec examples/copy.nram --population 32 --modes pbt population seeds

`--base-seed S` starts every mode at seed S (a population's members are S … S+K-1; `seeds` trains S, S+1, …).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

import torch

from nramdsl.cli import option_arg
from nramdsl.errors import NramError
from nramdsl.lang.frontend import load_machine
from nramdsl.training.evaluate import generalization
from nramdsl.training.loop import Driver
from nramdsl.training.population import Population
from nramdsl.training.results_table import passes
from nramdsl.training.unit import member_row
from nramdsl.training.setup import Job, configure, plan


def _passes(job: Job, model: Any, result: Any) -> bool:
    report = generalization(model, job.task, job.spec, job.complexity, readout=job.config.readout)
    return passes(member_row(result, report))


def population(spec_path: str, K: int, base: int, options: dict[str, Any], budget_s: float) -> dict[str, Any]:
    torch.set_num_threads(1)
    spec = load_machine(spec_path)
    job = plan(spec, configure(spec, options))
    driver = Driver(Population(job, list(range(base, base + K))), None, None)
    scored: set[int] = set()
    t0 = time.perf_counter()
    while driver.population.alive() and time.perf_counter() - t0 < budget_s:
        driver.step()
        for m in driver.population.members:
            if m.progress.stopped == "probe" and m.index not in scored:
                scored.add(m.index)
                result = driver.result(m)
                if _passes(m.job, result.model, result):
                    seed_steps = sum(x.progress.step for x in driver.population.members)
                    return {"first_passing_seed": m.seed, "wall_s": round(time.perf_counter() - t0, 1),
                            "seed_steps": seed_steps, "members_scored": len(scored)}
    return {"first_passing_seed": None, "wall_s": round(time.perf_counter() - t0, 1),
            "seed_steps": sum(x.progress.step for x in driver.population.members), "members_scored": len(scored)}


def _one_seed(spec_path: str, seed: int, options: dict[str, Any]) -> tuple[int, int, bool]:
    from nramdsl.training.loop import train

    torch.set_num_threads(1)
    spec = load_machine(spec_path)
    cfg = configure(spec, {**options, "seed": seed})
    result = train(spec, cfg, None)
    return seed, result.steps, result.stopped == "probe" and _passes(plan(spec, cfg), result.model, result)


def seeds(spec_path: str, base: int, options: dict[str, Any], budget_s: float) -> dict[str, Any]:
    """Seeds base, base+1, … two at a time in two processes, until the first passes."""
    t0, next_seed, seed_steps = time.perf_counter(), base, 0
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        running = set()
        for _ in range(2):
            running.add(pool.submit(_one_seed, spec_path, next_seed, options))
            next_seed += 1
        while running and time.perf_counter() - t0 < budget_s:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                seed, steps, passed = future.result()
                seed_steps += steps
                if passed:
                    for f in running:
                        f.cancel()
                    return {"first_passing_seed": seed, "wall_s": round(time.perf_counter() - t0, 1),
                            "seed_steps": seed_steps, "seeds_finished": next_seed - base - len(running)}
                running.add(pool.submit(_one_seed, spec_path, next_seed, options))
                next_seed += 1
    return {"first_passing_seed": None, "wall_s": round(time.perf_counter() - t0, 1), "seed_steps": seed_steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="examples/copy.nram")
    parser.add_argument("--population", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=["pbt", "population", "seeds"], choices=["pbt", "population", "seeds"])
    parser.add_argument("--base-seed", type=int, default=0)
    parser.add_argument("--pbt-every", type=int, default=100)
    parser.add_argument("--budget", type=float, default=3600, help="seconds per mode before giving up")
    parser.add_argument("--option", type=option_arg, action="append", default=[], metavar="KEY=VALUE", help="a training setting")
    args = parser.parse_args(argv)
    options = dict(args.option)
    try:
        configure(load_machine(args.spec), options)  # a bad spec or setting: one located line, before any mode runs
        for mode in args.modes:
            if mode == "seeds":
                row = seeds(args.spec, args.base_seed, options, args.budget)
            else:
                extra = {"pbt.every": args.pbt_every, "stop.give_up_after": 0} if mode == "pbt" else {}
                row = population(args.spec, args.population, args.base_seed, {**options, **extra}, args.budget)
            print(json.dumps({"spec": args.spec, "mode": mode, "K": args.population if mode != "seeds" else 1,
                              "base_seed": args.base_seed, **row}), flush=True)
    except NramError as e:
        print(e.format(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
