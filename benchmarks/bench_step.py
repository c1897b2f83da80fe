"""One seed's training step: nramdsl's compiled machine against a plain hand-written PyTorch NRAM.

Same 14 gates, same M, B and T, one process, one thread, the two measured in turn (A B A B ...) so a
drifting machine affects both alike. A step is forward over T timesteps, the loss, backward and Adam;
nramdsl's is the step `nramdsl train` takes (a population of one: the stacked controller, per-member
Adam) with its training aids (per-coordinate gradient clamp, renormalisation, entropy). Prints one JSON
line per configuration:

    python benchmarks/bench_step.py                      # M = 16, 64, 128; eager and compiled
    python benchmarks/bench_step.py --memory 16 --no-compile

Timings are CPU seconds of this process (time.process_time), which a second busy process on the other core
disturbs far less than wall time; quote them from a quiet machine all the same.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_nram import PlainNRAM  # noqa: E402

from nramdsl.lang.frontend import load_machine  # noqa: E402
from nramdsl.machine.fuzzy import NRAM, ModelOptions  # noqa: E402
from nramdsl.machine.stacked import StackedController  # noqa: E402
from nramdsl.training.adam import MemberAdam  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def measure(M: int, B: int, T: int, repeats: int, compiled: bool) -> dict:
    spec = load_machine(ROOT / "examples" / "paper.nram", overrides={"M": M, "T": T})
    torch.manual_seed(0)
    ours = NRAM(spec, ModelOptions(grad_clamp=10.0))
    ours.compile_steps = compiled
    stacked = StackedController([ours.controller])  # what training runs: a population of one
    plain = PlainNRAM()
    opt_ours, opt_plain = MemberAdam(list(stacked.parameters()), 1), torch.optim.Adam(plain.parameters(), 1e-3)
    everyone = torch.ones(1, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    memory = torch.randint(0, M, (B, M), generator=g)
    target = torch.randint(0, M, (B, M), generator=g)
    mask = torch.rand(B, M, generator=g) < 0.5

    def step_ours() -> None:
        out = ours.run(stacked.select(torch.arange(1)), memory, target, mask, dtype=torch.float32, timesteps=T)
        objective = out.loss - 0.01 * out.entropy
        opt_ours.zero_grad()
        objective.backward()
        opt_ours.step([1e-3], everyone)

    def step_plain() -> None:
        loss = plain(memory, target, mask, T)
        opt_plain.zero_grad()
        loss.backward()
        opt_plain.step()

    t0 = time.perf_counter()
    step_ours()  # warm-up (and, compiled, the compilation)
    warmup = time.perf_counter() - t0
    step_plain()
    a, b = [], []
    for _ in range(repeats):
        c = time.process_time()
        step_ours()
        a.append(time.process_time() - c)
        c = time.process_time()
        step_plain()
        b.append(time.process_time() - c)
    ours_ms, plain_ms = statistics.median(a) / T * 1000, statistics.median(b) / T * 1000
    return {"M": M, "B": B, "T": T, "compiled": compiled, "threads": torch.get_num_threads(),
            "nramdsl_ms_per_timestep": round(ours_ms, 3), "plain_ms_per_timestep": round(plain_ms, 3),
            "speedup_over_plain": round(plain_ms / ours_ms, 2), "first_step_s": round(warmup, 1),
            "repeats": repeats, "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--timesteps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for M in args.memory:
        for compiled in ([False] if args.no_compile else [False, True]):
            print(json.dumps(measure(M, args.batch, args.timesteps, args.repeats, compiled)), flush=True)


if __name__ == "__main__":
    main()
