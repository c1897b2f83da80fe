"""Forward+backward time of each fast kernel class against the generic lift, as JSON lines on stdout.

    python benchmarks/bench_kernels.py                     # M in 8..256, B = 64, float32 (~30-60 s)
    python benchmarks/bench_kernels.py --M 16 128 --batch 32 --dtype float64 --threads 1

One line per (M, class): the kernel's description, milliseconds per forward+backward (best of 7 interleaved
loops) for the fast kernel and for the generic lift (index table + scatter-add) of the same gate, and the
speedup. Not a test. On a shared machine pass --threads 1: with 2 threads a descheduled OpenMP worker turns
microsecond ops into multiples of the scheduler's time slice.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from nramdsl.lang.spec import Gate
from nramdsl.kernels.lift import GateKernel, make_kernel


def _gate(name: str, params: tuple[str, ...], fn) -> Gate:  # type: ignore[no-untyped-def]
    return Gate(name, params, None, fn)


# (label, gate, fft mode): one gate per kernel class; add/sub appear with both methods
CASES = [
    ("shift", _gate("inc", ("a",), lambda M, a: (a + 1) % M), "auto"),
    ("unary-permutation", _gate("rev", ("a",), lambda M, a: M - 1 - a), "auto"),
    ("unary-map", _gate("half", ("a",), lambda M, a: a // 2), "auto"),
    ("add-fft", _gate("add", ("a", "b"), lambda M, a, b: (a + b) % M), "always"),
    ("add-direct", _gate("add", ("a", "b"), lambda M, a, b: (a + b) % M), "never"),
    ("sub-fft", _gate("sub", ("a", "b"), lambda M, a, b: (a - b) % M), "always"),
    ("sub-direct", _gate("sub", ("a", "b"), lambda M, a, b: (a - b) % M), "never"),
    ("lt", _gate("lt", ("a", "b"), lambda M, a, b: 1 * (a < b)), "auto"),
    ("eq", _gate("eq", ("a", "b"), lambda M, a, b: 1 * (a == b)), "auto"),
    ("min", _gate("min", ("a", "b"), lambda M, a, b: np.minimum(a, b)), "auto"),
    ("max", _gate("max", ("a", "b"), lambda M, a, b: np.maximum(a, b)), "auto"),
]


def time_fwd_bwd(kernels: list[GateKernel], args: list[torch.Tensor], min_time: float, rounds: int = 7) -> list[float]:
    """Milliseconds per forward+backward of each kernel: the best of `rounds` timed loops.

    The kernels' loops are interleaved and the minimum is kept, so that load from other processes (which
    only ever adds time) biases neither side of a comparison.
    """

    def once(kernel: GateKernel) -> None:
        for a in args:
            a.grad = None
        kernel(*args).square().sum().backward()  # a non-trivial upstream gradient

    loops = []
    for kernel in kernels:
        once(kernel)  # warm-up: index tensors, allocator, FFT plans
        t0 = time.perf_counter()
        once(kernel)
        loops.append(max(1, int(min_time / rounds / max(time.perf_counter() - t0, 1e-6))))
    best = [float("inf")] * len(kernels)
    for _ in range(rounds):
        for i, (kernel, n) in enumerate(zip(kernels, loops)):
            t0 = time.perf_counter()
            for _ in range(n):
                once(kernel)
            best[i] = min(best[i], (time.perf_counter() - t0) / n * 1e3)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--M", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--min-time", type=float, default=0.05, help="seconds of timed calls per measurement")
    p.add_argument("--threads", type=int, help="torch threads (1 gives stable numbers on a busy machine)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    g = torch.Generator().manual_seed(0)
    for M in args.M:
        for label, gate, fft in CASES:
            inputs = [torch.rand(args.batch, M, generator=g).to(dtype) for _ in gate.params]
            inputs = [(x / x.sum(-1, keepdim=True)).requires_grad_() for x in inputs]
            fast = make_kernel(gate, M, fft=fft)  # type: ignore[arg-type]
            generic = make_kernel(gate, M, generic=True)
            fast_ms, generic_ms = time_fwd_bwd([fast, generic], inputs, args.min_time)
            row = {
                "M": M, "batch": args.batch, "dtype": args.dtype, "threads": torch.get_num_threads(), "class": label,
                "kernel": fast.choice.describe(), "fast_ms": round(fast_ms, 4), "generic_ms": round(generic_ms, 4),
                "speedup": round(generic_ms / fast_ms, 2),
            }  # fmt: skip
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
