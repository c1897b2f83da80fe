"""Seed-steps per second: populations of K members against one seed per process, two processes at once
(what `nramdsl reproduce --jobs 2` does on a 2-core machine).

A seed-step is one training step of one seed; a population of K takes K per step. Every run uses the
machine's preset with the curriculum at its top level and no early stop, so each step has the same size,
and one thread per process (see docs/benchmarks.md: more threads than cores is far slower under load).
Prints one JSON line per configuration:

    python benchmarks/bench_population.py --spec examples/copy.nram --population 1 8 32 128
    python benchmarks/bench_population.py --spec examples/swap.nram --population 64 --compile

`--device cuda` trains each population on the GPU (the GPU sweep of `benchmarks/gpu_check.sh`).
`--baseline` adds the two-processes-of-one-seed figure (seeds 0 and 1 side by side, `--baseline-steps`).
`--parallel 2` runs two populations of K at once, one per core (what `reproduce --population K --jobs 2`
does), and reports their seed-steps per second together.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from nramdsl.errors import NramError
from nramdsl.lang.frontend import load_machine
from nramdsl.training.loop import train, train_population
from nramdsl.training.setup import configure

FIXED = {"curriculum": False, "stop.probe_every": 0, "stretch.after": 0, "stop.give_up_after": 0,
         "stop.solve_within": 0, "log_every": 10**9, "checkpoint_every": 10**9}


def _config(spec_path: str, steps: int, compile_steps: bool, device: str = "cpu"):  # type: ignore[no-untyped-def]
    spec = load_machine(spec_path)
    return spec, configure(spec, {**FIXED, "steps": steps, "compile": compile_steps, "device": device})


def population(spec_path: str, K: int, steps: int, compile_steps: bool, device: str = "cpu") -> dict:
    torch.set_num_threads(1)
    spec, cfg = _config(spec_path, steps, compile_steps, device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    t0 = time.perf_counter()
    train_population(spec, cfg.replace(steps=1), list(range(K)), None)  # warm-up (and compilation)
    sync()
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = train_population(spec, cfg, list(range(K)), None)
    sync()
    wall = time.perf_counter() - t0
    seed_steps = sum(r.steps for r in results)
    return {"spec": Path(spec_path).name, "what": "population", "device": device, "K": K, "compiled": compile_steps,
            "steps": steps, "seed_steps": seed_steps, "wall_s": round(wall, 2),
            "seed_steps_per_s": round(seed_steps / wall, 1), "warmup_s": round(warmup, 1)}


def parallel(spec_path: str, K: int, steps: int, compile_steps: bool) -> dict:
    """Two populations of K at once, each in its own process (`reproduce --population K --jobs 2`)."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        # one step each first: warm-up (and compilation) outside the clock
        list(pool.map(_train_population_steps, [spec_path] * 2, [K, K], [0, K], [1, 1], [compile_steps] * 2))
        t0 = time.perf_counter()
        seed_steps = sum(pool.map(_train_population_steps, [spec_path] * 2, [K, K], [0, K], [steps, steps],
                                  [compile_steps] * 2))
        wall = time.perf_counter() - t0
    return {"spec": Path(spec_path).name, "what": "two populations at once, one per process", "K": K,
            "compiled": compile_steps, "steps": steps, "seed_steps": seed_steps, "wall_s": round(wall, 2),
            "seed_steps_per_s": round(seed_steps / wall, 1)}


def _train_population_steps(spec_path: str, K: int, base: int, steps: int, compile_steps: bool) -> int:
    torch.set_num_threads(1)
    spec, cfg = _config(spec_path, steps, compile_steps)
    return sum(r.steps for r in train_population(spec, cfg, list(range(base, base + K)), None))


def _one_seed(spec_path: str, seed: int, steps: int) -> int:
    torch.set_num_threads(1)
    spec, cfg = _config(spec_path, steps, False)
    return train(spec, cfg.replace(seed=seed), None).steps


def baseline(spec_path: str, steps: int) -> dict:
    """Two seeds, each in its own process, at the same time: `reproduce --jobs 2`."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_one_seed, [spec_path] * 2, [0, 1], [2, 2]))  # warm-up: start both workers
        t0 = time.perf_counter()
        seed_steps = sum(pool.map(_one_seed, [spec_path] * 2, [0, 1], [steps, steps]))
        wall = time.perf_counter() - t0
    return {"spec": Path(spec_path).name, "what": "jobs 2, one seed per process", "K": 1, "compiled": False,
            "steps": steps, "seed_steps": seed_steps, "wall_s": round(wall, 2),
            "seed_steps_per_s": round(seed_steps / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="examples/copy.nram")
    parser.add_argument("--population", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--steps", type=int, default=10, help="steps per population run")
    parser.add_argument("--compile", action="store_true", help="also with the compiled circuit step")
    parser.add_argument("--baseline", action="store_true", help="also two processes of one seed each")
    parser.add_argument("--baseline-steps", type=int, default=60)
    parser.add_argument("--parallel", type=int, default=1, choices=[1, 2],
                        help="2: two populations at once, one per process")
    parser.add_argument("--device", default="cpu", help="where the population trains, e.g. cuda (one population "
                        "per K; --parallel and --baseline are CPU comparisons)")
    args = parser.parse_args()
    if args.device != "cpu" and (args.parallel == 2 or args.baseline):
        parser.error("--device is for one population per K; --parallel and --baseline compare CPU processes")
    if args.baseline:
        print(json.dumps(baseline(args.spec, args.baseline_steps)), flush=True)
    for K in args.population:
        for compiled in ([False, True] if args.compile else [False]):
            row = (parallel(args.spec, K, args.steps, compiled) if args.parallel == 2
                   else population(args.spec, K, args.steps, compiled, args.device))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    try:
        main()
    except NramError as exc:  # e.g. --device cuda on a machine without one
        sys.exit(exc.format())
