"""`results/TASK.json` files (written by `nramdsl reproduce`) as one Markdown table beside the paper's Table 1."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from nramdsl.errors import NramError
from nramdsl.training.rundir import read_json

# Paper Table 1 [P §4.4]: training complexity, training error, generalization, discretization.
PAPER_TABLE1: dict[str, tuple[str, str, str, str]] = {
    "access": ("len(A) ≤ 20", "0", "perfect", "perfect"),
    "increment": ("len(A) ≤ 15", "0", "perfect", "perfect"),
    "copy": ("len(A) ≤ 15", "0", "perfect", "perfect"),
    "reverse": ("len(A) ≤ 15", "0", "perfect", "perfect"),
    "swap": ("len(A) ≤ 20", "0", "perfect", "perfect"),
    "permutation": ("len(A) ≤ 6", "0", "almost perfect", "perfect"),
    "listk": ("len(list) ≤ 10", "0", "strong", "hurts performance"),
    "listsearch": ("len(list) ≤ 6", "0", "weak", "hurts performance"),
    "merge": ("len(A)+len(B) ≤ 10", "1%", "weak", "hurts performance"),
    "walkbst": ("size(tree) ≤ 10", "0.3%", "strong", "hurts performance"),
}

BARS = ("train", "generalize", "discrete", "discrete_1000")
HEADER = ("Task", "Paper: train complexity / train error / generalization / discretization",
          "Here: M, T, train complexity", "Population", "Members", "train", "generalize (≤ 50)", "discrete = fuzzy",
          "integer machine at 1,000", "Every bar (independent members)", "Populations with a member at every bar",
          "Best member: error at train / 2× / 3× / 50", "Best member: discretized error at 2×",
          "Seed-steps per passing member", "Training s per passing member",
          "To the first passing member: seed-steps / training s", "To the first member at the train bar: seed-steps")


def passes(row: dict[str, Any]) -> bool:
    """A member's row (`member_row`) at every bar."""
    return all(row["bars"].values())


def population_groups(seeds: list[dict[str, Any]], population: int) -> list[list[dict[str, Any]]]:
    """The rows of each population, in seed order (a search trains its seeds in units of `population`)."""
    return [seeds[i : i + population] for i in range(0, len(seeds), population)]


def populations_passing(seeds: list[dict[str, Any]], population: int) -> dict[str, int]:
    groups = population_groups(seeds, population)
    return {"count": len(groups), "passing": sum(1 for g in groups if any(passes(s) for s in g))}


def first_passes(seeds: list[dict[str, Any]], population: int) -> list[dict[str, Any] | None]:
    """Per population, what it cost to reach its first member at every bar: that member's seed, the seed-steps
    trained by then and the training wall seconds by then (None where no member passed).

    A population's members step in lockstep, so when a member stops at step s every member has trained
    min(its own steps, s). Seeds trained one at a time (population 1) count as one sequence in seed order,
    as one `reproduce --jobs 1` trains them: the steps and wall seconds of every seed up to the first that passes."""
    if population <= 1:
        steps = wall = 0.0
        for s in seeds:
            steps, wall = steps + s["steps"], wall + s["wall_s"]
            if passes(s):
                return [{"seed": s["seed"], "seed_steps": int(steps), "wall_s": round(wall, 1)}]
        return [None]
    out: list[dict[str, Any] | None] = []
    for group in population_groups(seeds, population):
        passing = [s for s in group if passes(s)]
        if not passing:
            out.append(None)
            continue
        first = min(passing, key=lambda s: (s["steps"], s["wall_s"]))
        out.append({"seed": first["seed"], "seed_steps": sum(min(s["steps"], first["steps"]) for s in group),
                    "wall_s": first["wall_s"]})
    return out


def first_trained(seeds: list[dict[str, Any]], population: int) -> list[int | None]:
    """Per population, the seed-steps trained until its first member at the train bar (exact at the training
    size when scored) had its first error-free batch at the top level: the hard tasks' figure, where no member
    passes every bar. Counted as `first_passes` counts, at that member's `solved_at_step` instead of its end
    (a PBT copy carries the step at which the weights it copied solved); its end where that was not logged."""

    def solved(s: dict[str, Any]) -> int:
        return s["steps"] if s.get("solved_at_step") is None else min(s["solved_at_step"], s["steps"])

    if population <= 1:
        steps = 0
        for s in seeds:
            if s["bars"]["train"]:
                return [steps + solved(s)]
            steps += s["steps"]
        return [None]
    out: list[int | None] = []
    for group in population_groups(seeds, population):
        trained = [solved(s) for s in group if s["bars"]["train"]]
        out.append(sum(min(s["steps"], min(trained)) for s in group) if trained else None)
    return out


def _first_trained(seeds: list[dict[str, Any]], population: int) -> str:
    found = [f for f in first_trained(seeds, population) if f is not None]
    if not found:
        return "–"
    return f"{statistics.median(found):,.0f}" + (f" (median of {len(found)})" if len(found) > 1 else "")


def _first(seeds: list[dict[str, Any]], population: int) -> str:
    found = [f for f in first_passes(seeds, population) if f is not None]
    if not found:
        return "–"
    steps = statistics.median(f["seed_steps"] for f in found)
    wall = statistics.median(f["wall_s"] for f in found)
    return f"{steps:,.0f} / {wall:,.0f} s" + (f" (median of {len(found)})" if len(found) > 1 else "")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def best_member(seeds: list[dict[str, Any]], train_complexity: int) -> dict[str, Any] | None:
    """The member to show: one at every bar (the fewest steps), else the lowest training error and, among
    those (several members exact at the training size), the lowest error at twice it, the next bar."""
    passing = [s for s in seeds if passes(s)]
    if passing:
        return min(passing, key=lambda s: s["steps"])

    def at_twice(s: dict[str, Any]) -> float:
        error = _table_value(s, 2 * train_complexity, "error")
        return math.inf if error is None else error

    trained = [s for s in seeds if s["train_error"] is not None]
    return min(trained, key=lambda s: (s["train_error"], at_twice(s))) if trained else None


def _table_value(member: dict[str, Any], complexity: int, key: str) -> float | None:
    """A member's `key` in its generalization table's row at `complexity` (the last such row: the training
    complexity has two, the training budget's first); None without one."""
    rows = [r for r in member["table"] if r["complexity"] == complexity]
    return rows[-1][key] if rows else None


def _errors(best: dict[str, Any] | None, train_complexity: int) -> tuple[str, str]:
    if best is None:
        return "–", "–"

    def err(c: int, key: str = "error") -> str:
        return _pct(_table_value(best, c, key))

    fuzzy = " / ".join([_pct(best["train_error"]), err(2 * train_complexity), err(3 * train_complexity), err(50)])
    return fuzzy, err(2 * train_complexity, "discrete_error")


def _row(task: str, result: dict[str, Any] | None) -> list[str]:
    # a file named after its search (copy-p64.json) still sits beside its task's paper row
    paper = " / ".join(PAPER_TABLE1.get(result.get("task", task) if isinstance(result, dict) else task, ("–",) * 4))
    if result is None:
        return [task, paper, "not run"] + [""] * (len(HEADER) - 3)
    seeds = result["seeds"]
    n = result["seeds_tried"]
    complexity = seeds[0]["table"][0]["complexity"] if seeds else 0
    K = int(result.get("population", 1))
    every = sum(1 for s in seeds if passes(s))
    pops = result.get("populations") or populations_passing(seeds, K)
    compute = result.get("compute") or {}
    steps = compute.get("seed_steps", sum(s["steps"] for s in seeds))
    wall = compute.get("train_wall_s", sum(s["wall_s"] for s in seeds))
    fuzzy, discrete = _errors(best_member(seeds, complexity), complexity)
    return [task, paper, f"{result['memory']}, {result['timesteps']}, {complexity}", str(K), str(n),
            *(f"{result['reached'][b]}/{n}" for b in BARS),
            f"{every}/{n} ({every / max(n, 1):.1%}){_origins(result, every)}",
            f"{pops['passing']}/{pops['count']}", fuzzy, discrete,
            f"{round(steps / every):,}" if every else f"– ({steps:,} in all)",
            f"{wall / every:,.0f}" if every else f"– ({wall:,.0f} in all)", _first(seeds, K),
            _first_trained(seeds, K)]


def _origins(result: dict[str, Any], every: int) -> str:
    """How many initializations the passing members descend from, where PBT copies made it fewer."""
    origins = result.get("passing_origins")
    if type(origins) is not int or origins >= every:
        return ""
    return f"; {origins} initialization{'s' if origins != 1 else ''}"


def results_table(folder: Path) -> str:
    """The Markdown table (the paper's ten tasks first, then any other task found) and each row's command.
    A file that is not a results file `nramdsl reproduce` wrote is an `NramError` naming it."""
    paths = {p.stem: p for p in sorted(folder.glob("*.json"))}
    found = {task: read_json(path, "results file") for task, path in paths.items()}
    tasks = list(PAPER_TABLE1) + sorted(t for t in found if t not in PAPER_TABLE1)
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for t in tasks:
        try:
            lines.append("| " + " | ".join(_row(t, found.get(t))) + " |")
        except (KeyError, TypeError, IndexError, AttributeError, ValueError, statistics.StatisticsError) as exc:
            raise NramError(f"'{paths[t]}' is not a results file nramdsl wrote ({type(exc).__name__}: {exc})") from None
    commands = [f"- {t}: `{found[t]['command']}`" for t in tasks
                if t in found and isinstance(found[t], dict) and found[t].get("command")]
    return "\n".join(lines + ([""] + commands if commands else [])) + "\n"
