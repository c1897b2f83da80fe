"""Where a WalkBST program stops: its error split by the path's length k (hops from the root).

`nramdsl eval --by-cell` splits errors by a cell's input value, which serves ListK (cell 1 is k) but not
WalkBST, whose path length is where the first NULL falls among the directions. So this reads k off each test
case and splits the fuzzy model's error, and its mean halting step, by it. A program that takes one hop a
step (examples/walkbst_by_hand.nram halts at k + 3) and loses some certainty on each hop shows an error
that climbs with k; one that never learnt deep paths shows a cliff.

    python benchmarks/walkbst_hops.py RUN --member 0 --member 1 --examples 512

RUN is a run directory (a population's, with --member SEED for each member to split). The test cases are the
training size's, at the training memory and step budget, drawn from a fixed seed, so every member (and any
run) is split on the same cases. One thread.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import torch

from nramdsl.errors import NramError
from nramdsl.training.evaluate import masked_error
from nramdsl.training.loop import load_run
from nramdsl.training.setup import find_task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from member_reports import Report, main  # noqa: E402


def hops(memory: torch.Tensor) -> torch.Tensor:
    """Per test case, k: the directions d_1..d_k sit in cells 2.. up to the first NULL (0)."""
    return (memory[:, 2:] == 0).to(torch.int8).argmax(dim=1)  # argmax: the first; the layout always has NULL


def split(run: Path, member: int | None, examples: int, seed: int) -> Report:
    model, config = load_run(run, member)
    if config["task"] != "walkbst":
        raise NramError(f"'{run}' was trained on task '{config['task']}', not walkbst")
    spec, complexity = model.spec, config["complexity"]
    batch = find_task("walkbst").generate(complexity, spec.memory, examples, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = model(batch.memory, timesteps=spec.timesteps)
    readout = config["train"].get("readout", "halt")
    errors = masked_error(out.readout(readout), batch.target, batch.mask)
    halts = out.halting_step().double() + 1  # counted from 1, as `nramdsl eval` and `nramdsl run` print it
    groups: dict[int, list[int]] = defaultdict(list)
    for i, k in enumerate(hops(batch.memory).tolist()):
        groups[k].append(i)
    return {"run": str(run), "member": member, "complexity": complexity, "cases": examples,
            "error": round(float(errors.mean()), 4),
            "by_hops": [{"k": k, "cases": len(ix), "error": round(float(errors[ix].mean()), 4),
                         "mean_halt_step": round(float(halts[ix].mean()), 2)} for k, ix in sorted(groups.items())]}


def summary(report: Report) -> list[str]:
    lines = [f"{report['run']} member {report['member']}: {report['error']:.1%} wrong at complexity {report['complexity']}"]
    for g in report["by_hops"]:  # type: ignore[attr-defined]
        lines.append(f"  k = {g['k']}: {g['cases']:4d} cases, {g['error']:6.1%} wrong, halts at step "
                     f"{g['mean_halt_step']:.1f} on average")
    return lines


if __name__ == "__main__":
    sys.exit(main(__doc__.splitlines()[0], split, summary))
