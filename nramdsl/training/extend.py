"""`reproduce --extend`: add a run's seeds to the search a results file already holds.

A search of many populations outlasts a session, and its run directories (gigabytes of checkpoints) are
rarely kept; its `results/TASK.json` is, and each member's row in it is everything the summary needs. So
a search can grow from its results file alone: `reproduce --first-seed 48 --seeds 48 --extend` trains
seeds 48-95 and writes the summary of the file's seeds and these together, with the one command that
trains them all. That command is honest because a unit (one seed, or a population of K seeds) depends on
nothing but its machine, its settings and its seeds: the merged rows are the rows the whole search
trains, which tests/test_search.py checks.

The file is untrusted (it may come from anywhere): it is read as bounded JSON, and it must be the same
search — the same machine (by fingerprint), settings and population size, with seeds that join this run's
without a gap and fall into the same populations. Anything else is one error line that says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from nramdsl.errors import NramError
from nramdsl.lang.spec import MachineSpec
from nramdsl.training.config import TrainConfig, settings_differ
from nramdsl.training.rundir import read_json
from nramdsl.training.search import recorded_machine
from nramdsl.training.unit import BARS, machine_fingerprint

Refusal = Callable[[str], NramError]  # why -> the one error line naming the file

# what the summary and the results table read from each row, and the types they need
_NUMBER = (int, float)
_ROW_TYPES: dict[str, tuple[type, ...]] = {"seed": (int,), "steps": (int,), "wall_s": _NUMBER,
                                           "steps_per_s": _NUMBER, "bars": (dict,), "table": (list,),
                                           "train_error": (*_NUMBER, type(None)),
                                           "solved_at_step": (int, type(None))}


def earlier_rows(path: Path, spec: MachineSpec, cfg: TrainConfig, population: int,
                 seeds: Sequence[int]) -> list[dict[str, Any]]:
    """The rows of `path`'s search that this run (`seeds`, in units of `population`) does not train again,
    after checking that the file is the same search and that its seeds and these join into one."""
    if not path.is_file():
        raise NramError(f"--extend adds seeds to an earlier search, but '{path}' does not exist")
    found = read_json(path, "results file")

    def bad(why: str) -> NramError:
        return NramError(f"'{path}': cannot extend it: {why}")

    if not isinstance(found, dict) or not isinstance(found.get("seeds"), list) or not found["seeds"]:
        raise bad("it is not a results file nramdsl reproduce wrote (no member rows)")
    if found.get("machine") != spec.name or found.get("task") != cfg.task:
        raise bad(f"it holds machine {found.get('machine')!r} on task {found.get('task')!r}, "
                  f"not {spec.name!r} on {cfg.task!r}")
    _same_machine(found, spec, bad)
    if found.get("population") != population:
        raise bad(f"its search trained populations of {found.get('population')}, not {population} "
                  f"(give --population {found.get('population')})")
    then = found.get("config")
    differ = settings_differ(then, cfg.settings(), frozenset({"seed"})) if isinstance(then, dict) else ["config"]
    if differ:
        raise bad("its search had other settings: " + ", ".join(differ))
    for i, row in enumerate(found["seeds"]):
        _check_row(row, i, bad)
    old = sorted(row["seed"] for row in found["seeds"])
    if old != list(range(old[0], old[-1] + 1)):  # sorted, so a repeat is a mismatch too
        raise bad("its seeds are not one range without gaps or repeats")
    _check_join(old, list(seeds), population, bad)
    new = set(seeds)
    return [row for row in found["seeds"] if row["seed"] not in new]


def _same_machine(found: dict[str, Any], spec: MachineSpec, bad: Refusal) -> None:
    fingerprint = found.get("fingerprint")
    if fingerprint is not None:
        if fingerprint != machine_fingerprint(spec):
            raise bad("its machine was another (sizes, circuit, controller or a gate's table differ)")
        return
    # a file written before results carried the fingerprint: the sizes and controller it does record
    shape = recorded_machine(spec)
    other = [k for k, v in shape.items() if found.get(k) != v]
    if other:
        raise bad("its machine was another: " + ", ".join(f"{k} {found.get(k)!r}, not {shape[k]!r}" for k in other))


def _check_row(row: Any, i: int, bad: Refusal) -> None:
    if not isinstance(row, dict):
        raise bad(f"member row {i} is not an object")
    for key, types in _ROW_TYPES.items():
        value = row.get(key)
        if isinstance(value, bool) or not isinstance(value, types):
            raise bad(f"member row {i} has no valid {key!r}")
    bars = row["bars"]
    if set(bars) != set(BARS) or not all(v is None or isinstance(v, bool) for v in bars.values()):
        raise bad(f"member row {i} has no valid 'bars' (wants {', '.join(BARS)}, each true, false or null)")


def _check_join(old: list[int], seeds: list[int], population: int, bad: Refusal) -> None:
    """The file's seeds and this run's must be one range, cut into the populations the whole search trains:
    its units start at the range's first seed, every `population` seeds, so each unit of either search
    must be one of them (a unit of the file that this run covers is replaced, not mixed)."""
    lo, hi = min(old[0], seeds[0]), max(old[-1], seeds[-1])
    if seeds[0] > old[-1] + 1 or seeds[-1] < old[0] - 1:
        raise bad(f"its seeds {old[0]}-{old[-1]} and this run's {seeds[0]}-{seeds[-1]} leave a gap")
    new = set(seeds)
    mixed = any(len({s in new for s in range(start, min(start + population, hi + 1))}) > 1
                for start in range(lo, hi + 1, population))
    if mixed or (old[0] - lo) % population:  # the second: the file's own units started off the edges
        raise bad(f"populations of {population} from seed {lo} would mix its members with this run's "
                  f"(start and end this run on a population's edge: seed {lo} plus a multiple of {population})")


def whole_command(argv: Sequence[str], first: int, count: int) -> list[str]:
    """`argv` with its seed range replaced by the merged search's: the one command that trains it all.
    Reproduce's parser takes no abbreviations, so these are the only spellings of the options."""
    out: list[str] = []
    at: int | None = None
    words = iter(argv)
    for word in words:
        name = word.split("=", 1)[0]
        if name in ("--seeds", "--first-seed", "--extend"):
            at = len(out) if at is None else at
            if name != "--extend" and "=" not in word:
                next(words, None)  # its value
            continue
        out.append(word)
    seeds = ["--seeds", str(count)] + (["--first-seed", str(first)] if first else [])
    at = len(out) if at is None else at
    return out[:at] + seeds + out[at:]
