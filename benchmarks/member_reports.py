"""The command line that the per-member analyses share (walkbst_hops.py, output_sources.py): a run
directory, `--member SEED` repeatable, the number of test cases and their seed; one JSON line per member on
stdout, a readable summary on stderr, and an NramError as its one located line (exit 1)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from nramdsl.errors import NramError

Report = dict[str, object]


def main(description: str, analyse: Callable[[Path, int | None, int, int], Report],
         summary: Callable[[Report], list[str]], argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("run", type=Path)
    ap.add_argument("--member", type=int, action="append", help="a population's member (repeatable)")
    ap.add_argument("--examples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=99, help="the test cases' seed")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        for member in args.member or [None]:
            report = analyse(args.run, member, args.examples, args.seed)
            print(json.dumps(report))
            for line in summary(report):
                print(f"# {line}", file=sys.stderr)
    except NramError as exc:
        print(exc.format(), file=sys.stderr)
        return 1
    return 0
