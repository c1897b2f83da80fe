"""Benchmark (not a test): training throughput of an example machine per device and batch size.

    python benchmarks/bench_train.py                                   # copy.nram, CPU, batch 32
    python benchmarks/bench_train.py --spec examples/swap.nram --devices cpu cuda --batch 32 256 2048

One JSON line per (device, batch): optimizer steps per second and examples per second of the real training
loop (`nramdsl.training.loop.train`: the machine's preset, Adam, clipping, entropy terms), with the curriculum fixed
at the top level so every step has the same size, and no probes or checkpoints. A few steps run first as a
warm-up (CUDA context, kernel tables). The NRAM step is many small ops, so a GPU pays off through batch
size rather than per step: compare examples/s across batch sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from nramdsl.lang.frontend import load_machine
from nramdsl.training.loop import train
from nramdsl.training.setup import configure

ROOT = Path(__file__).resolve().parent.parent


def measure(spec_path: Path, device: str, batch: int, steps: int, dtype: str) -> dict:
    spec = load_machine(spec_path, None, None)
    cfg = configure(spec, {"batch": batch, "device": device, "dtype": dtype, "curriculum": False,
                           "stop.probe_every": 0, "stretch.after": 0, "stop.give_up_after": 0,
                           "stop.solve_within": 0, "log_every": 10**9, "checkpoint_every": 10**9})
    train(spec, dataclasses.replace(cfg, steps=3))  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = train(spec, dataclasses.replace(cfg, steps=steps))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return {
        "spec": spec_path.name,
        "task": cfg.task,
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(),
        "dtype": dtype,
        "batch": batch,
        "timesteps": spec.timesteps,
        "steps": result.steps,
        "steps_per_s": round(result.steps / wall, 2),
        "examples_per_s": round(result.steps * batch / wall, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", type=Path, default=ROOT / "examples" / "copy.nram")
    p.add_argument("--devices", nargs="+", default=["cpu"])
    p.add_argument("--batch", type=int, nargs="+", default=[32])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for device in args.devices:
        for batch in args.batch:
            print(json.dumps(measure(args.spec, device, batch, args.steps, args.dtype)), flush=True)


if __name__ == "__main__":
    main()
