"""What `stop.generalize_within = N` would have saved, replayed exactly on searches already run.

A member of a search without PBT is its seed's own run (tested in tests/test_population.py), so giving it
up at step `solved_at + N` keeps the first `solved_at + N` steps of that run unchanged and drops the rest.
Its steps become min(steps, solved_at + N), and it still passes every bar if and only if it had already
stopped (its probes error-free) by then; a passing member that stopped later is counted as lost. No
training is rerun. Searches with PBT are refused: there members copy each other, so one member's early end
changes the others.

    python benchmarks/replay_stop_rule.py results/independent/copy-p64.json results/independent/reverse.json --within 200 400 600
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nramdsl.errors import NramError
from nramdsl.training.results_table import passes
from nramdsl.training.rundir import read_json


def replay(members: list[dict[str, Any]], within: int | None) -> dict[str, Any]:
    """Seed-steps and passing members had each member been given up `within` steps after solving (None: off)."""
    steps = passing = lost = 0
    for m in members:
        solved = m["solved_at_step"]
        cut = m["steps"] if solved is None or within is None else min(m["steps"], solved + within)
        steps += cut
        if passes(m):
            if cut < m["steps"]:
                lost += 1
            else:
                passing += 1
    return {"within": "off" if within is None else within, "seed_steps": steps, "passing": passing, "lost": lost,
            "seed_steps_per_passing": round(steps / passing) if passing else None}


def replay_file(path: Path, within: list[int]) -> list[dict[str, Any]]:
    """One results file (untrusted: read as `nramdsl results` reads it) replayed at each N, rule off first."""
    data = read_json(path, "results file")
    try:
        pbt = data.get("config", {}).get("pbt.every")
        if pbt:
            raise NramError(f"'{path}' is a PBT search (pbt.every = {pbt}) and cannot be replayed: its members "
                            f"copy each other")
        members = data["seeds"]
        rows = [replay(members, n) for n in [None, *within]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise NramError(f"'{path}' is not a results file nramdsl wrote ({type(exc).__name__}: {exc})") from None
    return [{"results": str(path), "members": len(members), **row} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="results/TASK.json files")
    parser.add_argument("--within", type=int, nargs="+", default=[200, 400, 600])
    args = parser.parse_args()
    for path in args.results:
        for row in replay_file(path, args.within):
            print(json.dumps(row))


if __name__ == "__main__":
    try:
        main()
    except NramError as exc:
        sys.exit(exc.format())
