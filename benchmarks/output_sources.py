"""What a stalled program writes: for each output cell, the input cell whose value its prediction copies.

A search that plateaus has usually found a program, only not the task's. This names it in the plainest
terms: for each cell the task scores (its mask), the input cell j whose value the prediction equals most
often and how often, the input cell whose pointer leads to it most often (memory[memory[j]]: one READ
through j) and how often, the value it writes most often (a constant?) and how often, and the error at that
cell; and how often every output cell holds one and the same value.
Permutation's plateau (72 % wrong at length 6), for one, writes a single cell's value over every P[i]:
it never follows P (docs/results.md, the hard tasks).

    python benchmarks/output_sources.py RUN --member 0 --examples 512

RUN is a run directory (a population's, with --member SEED for each member). The test cases are the
training size's, at the training memory and step budget, drawn from a fixed seed. Where the task's output
cells move from case to case (a variable-length output), the rows are by the output's rank among the
scored cells, not by address. One thread.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from nramdsl.training.loop import load_run
from nramdsl.training.setup import find_task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from member_reports import Report, main  # noqa: E402


def sources(run: Path, member: int | None, examples: int, seed: int) -> Report:
    model, config = load_run(run, member)
    spec, complexity = model.spec, config["complexity"]
    batch = find_task(config["task"]).generate(complexity, spec.memory, examples,
                                              torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = model(batch.memory, timesteps=spec.timesteps)
    pred = out.readout(config["train"].get("readout", "halt"))
    # The r-th scored cell of each case, r = 0 .. the fewest scored cells of any case - 1.
    ranks = batch.mask.cumsum(dim=1) - 1
    width = int(batch.mask.sum(dim=1).min())
    memory = batch.memory.long()
    # pointed[b, j] = the value of the cell that cell j points to (memory[memory[j]]): one READ through j.
    pointed = memory.gather(1, memory.remainder(spec.memory))
    rows, firsts = [], []
    for r in range(width):
        at = (batch.mask & (ranks == r)).to(torch.int64).argmax(dim=1)  # the address of that cell, per case
        guess = pred.gather(1, at[:, None])
        target = batch.target.gather(1, at[:, None])[:, 0]
        copies = (batch.memory == guess).double().mean(dim=0)  # per input cell: how often it holds the guess
        j = int(copies.argmax())
        follows = (pointed == guess).double().mean(dim=0)  # per input cell: how often what it points to is the guess
        f = int(follows.argmax())
        value = int(guess[:, 0].mode().values)  # the value written most often, whatever the input
        rows.append({"output": r, "address": int(at.mode().values), "error": round(float((guess[:, 0] != target)
                     .double().mean()), 4), "copies_cell": j, "copies_rate": round(float(copies[j]), 4),
                     "follows_cell": f, "follows_rate": round(float(follows[f]), 4),
                     "constant": value, "constant_rate": round(float((guess[:, 0] == value).double().mean()), 4)})
        firsts.append(guess[:, 0])
    outputs = torch.stack(firsts, dim=1)
    # With one output cell the question is empty (it always holds one value), so it is not asked.
    constant = round(float((outputs == outputs[:, :1]).all(dim=1).double().mean()), 4) if width > 1 else None
    return {"run": str(run), "member": member, "task": config["task"], "complexity": complexity,
            "cases": examples, "one_value_everywhere": constant, "outputs": rows}


def summary(report: Report) -> list[str]:
    constant = report["one_value_everywhere"]
    lines = [f"{report['run']} member {report['member']} ({report['task']}, complexity {report['complexity']})"
             + (f": one value in every output cell in {constant:.0%} of cases" if constant is not None else "")]
    for row in report["outputs"]:  # type: ignore[attr-defined]
        lines.append(f"  output {row['output']} (cell {row['address']}): {row['error']:6.1%} wrong; equals input "
                     f"cell {row['copies_cell']} in {row['copies_rate']:.0%}; the cell that cell {row['follows_cell']} points to "
                     f"in {row['follows_rate']:.0%}; is {row['constant']} in "
                     f"{row['constant_rate']:.0%}")
    return lines


if __name__ == "__main__":
    sys.exit(main(__doc__.splitlines()[0], sources, summary))
