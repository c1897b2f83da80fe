"""Scoring a finished population, side by side in one process: every member in full (`score_in_full`, as
`reproduce` scored before commit 631ee29) against `score_members` (a member off the train bar scored to three
times the training size only). Both score the same trained members; the members passing every bar must be
the same, and the script fails if they are not. One thread; run it on a quiet machine.

    python benchmarks/bench_scoring.py runs/copy-copy-p64-s0 --repeats 2

One JSON line per repeat (the two orders alternate, so drift favours neither), then the ratio of the sums.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from nramdsl.errors import NramError
from nramdsl.training.config import TrainConfig
from nramdsl.training.loop import MEMBERS, TrainResult, load_run
from nramdsl.training.results_table import passes
from nramdsl.training.setup import Job, plan
from nramdsl.training.unit import score_in_full, score_members


def members(run: Path) -> tuple[Job, list[TrainResult]]:
    """The population's finished members (RUN/members/sSEED), as results `score_members` takes."""
    folders = sorted((run / MEMBERS).glob("s[0-9]*"), key=lambda p: int(p.name[1:]))
    if not folders:
        raise NramError(f"'{run}' has no {MEMBERS}/sSEED folders: not a finished population run")
    results, config = [], {}
    for folder in folders:
        model, config = load_run(folder)
        results.append(TrainResult(model, 0, 0.0, 0, 0, 0, 0.0, None, seed=int(folder.name[1:])))
    cfg = TrainConfig.from_settings(config["train"], where="config.json")
    return plan(results[0].model.spec, cfg), results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished population run directory")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        job, results = members(args.run)
    except NramError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ways = {"full": lambda: score_in_full(results, job), "score_members": lambda: score_members(results, job)}
    total = dict.fromkeys(ways, 0.0)
    for repeat in range(args.repeats):
        seconds, passing = {}, {}
        for name in (list(ways) if repeat % 2 == 0 else list(reversed(ways))):
            t0 = time.perf_counter()
            rows = ways[name]()
            seconds[name] = time.perf_counter() - t0
            passing[name] = [r["seed"] for r in rows if passes(r)]
            total[name] += seconds[name]
        if passing["full"] != passing["score_members"]:
            print(f"error: the passing members differ: {passing}", file=sys.stderr)
            return 1
        at_train = sum(r["bars"]["train"] for r in rows)
        print(json.dumps({"run": str(args.run), "members": len(results), "at_train_bar": at_train,
                          "passing": passing["full"], **{f"{k}_s": round(v, 2) for k, v in seconds.items()}}))
    print(json.dumps({"full_over_score_members": round(total["full"] / max(total["score_members"], 1e-9), 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
