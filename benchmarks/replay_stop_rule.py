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
from pathlib import Path
from typing import Any

from nramdsl.training.results_table import passes


def replay(members: list[dict[str, Any]], within: int) -> dict[str, Any]:
    steps = passing = lost = 0
    for m in members:
        solved = m["solved_at_step"]
        cut = m["steps"] if solved is None else min(m["steps"], solved + within)
        steps += cut
        if passes(m):
            if cut < m["steps"]:
                lost += 1
            else:
                passing += 1
    return {"within": within, "seed_steps": steps, "passing": passing, "lost": lost,
            "seed_steps_per_passing": round(steps / passing) if passing else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="results/TASK.json files")
    parser.add_argument("--within", type=int, nargs="+", default=[200, 400, 600])
    args = parser.parse_args()
    for path in args.results:
        data = json.loads(path.read_text())
        if data.get("config", {}).get("pbt.every"):
            raise SystemExit(f"{path}: error: a PBT search (pbt.every = {data['config']['pbt.every']}) "
                             f"cannot be replayed: its members copy each other")
        members = data["seeds"]
        rows = [replay(members, 10**12)] + [replay(members, n) for n in args.within]
        rows[0]["within"] = "off"
        for row in rows:
            print(json.dumps({"results": str(path), "members": len(members), **row}))


if __name__ == "__main__":
    main()
