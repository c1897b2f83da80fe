"""Benchmark (not a test): one training step of the paper's 14-gate machine, fast kernels vs generic lift.

    python benchmarks/bench_machine.py                      # M in 8..256, B = 64, R = 4, T = 10
    python benchmarks/bench_machine.py --sizes 16 32 --device cuda

Prints one JSON line per (M, kernels): forward+backward milliseconds per timestep (median of --repeats
after a warm-up) and the peak memory. Each configuration runs in a fresh subprocess so that the peak
resident set (CPU) or peak allocated bytes (CUDA) belongs to that configuration alone. The last line
fits time ∝ M^k over the sizes for each kernel mode.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(M: int, generic: bool, batch: int, timesteps: int, repeats: int, device: str) -> dict:
    import torch

    from nramdsl.lang.frontend import load_machine
    from nramdsl.machine.fuzzy import NRAM, ModelOptions

    spec = load_machine(ROOT / "examples" / "paper.nram", None, {"M": M, "T": timesteps})
    model = NRAM(spec, ModelOptions(generic_kernels=generic, grad_clamp=10.0)).to(device)
    g = torch.Generator().manual_seed(0)
    memory = torch.randint(0, M, (batch, M), generator=g).to(device)
    mask = (torch.rand(batch, M, generator=g) < 0.3).to(device)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        out = model(memory, memory, mask)
        model.zero_grad(set_to_none=True)
        (out.loss - 0.01 * out.entropy).backward()
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up: kernel tables, allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {
        "M": M,
        "kernels": "generic" if generic else "fast",
        "batch": batch,
        "timesteps": timesteps,
        "device": device,
        "ms_per_timestep": round(1000 * statistics.median(times) / timesteps, 3),
        "peak_mib": round(peak, 1),
        "rss_growth_mib": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1),
        "kernel_choices": sorted(set(model.describe_kernels(M))) if not generic else ["generic"],
    }


def fit_exponent(rows: list[dict]) -> float:
    """Least-squares slope of log(time) against log(M)."""
    xs = [math.log(r["M"]) for r in rows]
    ys = [math.log(r["ms_per_timestep"]) for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--timesteps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--one", nargs=2, metavar=("M", "KERNELS"), help=argparse.SUPPRESS)  # child process
    args = p.parse_args()
    if args.one:
        row = measure(int(args.one[0]), args.one[1] == "generic", args.batch, args.timesteps, args.repeats, args.device)
        print(json.dumps(row))
        return
    rows: dict[str, list[dict]] = {"fast": [], "generic": []}
    for M in args.sizes:
        for kernels in ("fast", "generic"):
            cmd = [sys.executable, __file__, "--one", str(M), kernels, "--batch", str(args.batch),
                   "--timesteps", str(args.timesteps), "--repeats", str(args.repeats), "--device", args.device]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            row = json.loads(out)
            rows[kernels].append(row)
            print(out, flush=True)
        fast, gen = rows["fast"][-1], rows["generic"][-1]
        print(json.dumps({"M": M, "generic_over_fast": round(gen["ms_per_timestep"] / fast["ms_per_timestep"], 2)}),
              flush=True)
    if len(args.sizes) >= 2:
        print(json.dumps({k: {"time_exponent_in_M": round(fit_exponent(v), 2)} for k, v in rows.items()}))


if __name__ == "__main__":
    main()
