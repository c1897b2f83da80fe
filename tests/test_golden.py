"""Golden runs: short training runs whose metrics are recorded in tests/golden/, so a change that alters the
numbers of training (an op reordered, a random draw added or moved, a default changed) cannot pass silently.

The runs are float64 so that the comparison can be tight on any CPU (floats to 1e-9 relative; counters,
levels and errors exactly). To record them again after an intended change:
`python tests/test_golden.py` (and say in the commit why the numbers moved).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from nramdsl.lang.frontend import load_machine
from nramdsl.training.loop import train
from nramdsl.training.setup import configure

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"

RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    # the paper's Access machine with its preset and gradient noise: the first 40 steps
    "access": ("examples/access.nram", {"steps": 40, "dtype": "float64", "log_every": 4, "noise.eta": 0.3}),
    # a small machine that rises in the curriculum and probes at twice its size
    "tiny": ("tests/specs/tiny.nram", {"steps": 80, "batch": 8, "dtype": "float64", "log_every": 4, "complexity": 2,
                                       "stretch.after": 3, "stop.probe_every": 8, "noise.eta": 0.3, "lr": 0.02}),
}


def run(name: str) -> list[dict[str, Any]]:
    path, options = RUNS[name]
    spec = load_machine(ROOT / path)
    rows: list[dict[str, Any]] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(spec, configure(spec, options), None, on_log=rows.append)
    finally:
        torch.set_num_threads(threads)
    for row in rows:
        row.pop("wall")
    return rows


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("name", sorted(RUNS))
def test_training_matches_its_golden_run(name: str) -> None:
    expected = [json.loads(line) for line in (GOLDEN / f"{name}.jsonl").read_text().splitlines()]
    got = run(name)
    assert [r["step"] for r in got] == [r["step"] for r in expected]
    for want, row in zip(expected, got):
        diff = {k: (want[k], row.get(k)) for k in want if not same(want[k], row.get(k))}
        assert not diff and set(row) == set(want), f"step {want['step']}: {diff or set(row) ^ set(want)}"


if __name__ == "__main__":  # record the golden runs again
    for name in sys.argv[1:] or sorted(RUNS):
        (GOLDEN / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in run(name)))
        print(f"recorded {GOLDEN / name}.jsonl")
