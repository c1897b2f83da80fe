"""`results/TASK.json` files (written by `nramdsl reproduce`) as one Markdown table beside the paper's Table 1."""

from __future__ import annotations

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
          "Here: M, T, train complexity", "Seeds", "train", "generalize (≤ 50)", "discrete = fuzzy",
          "integer machine at 1,000", "Best train error", "Steps to every bar (seeds that got there)",
          "Gave up", "Median wall per seed (s)", "Steps/s")


def _row(task: str, result: dict[str, Any] | None) -> list[str]:
    paper = " / ".join(PAPER_TABLE1.get(task, ("–",) * 4))
    if result is None:
        return [task, paper, "not run"] + [""] * (len(HEADER) - 3)
    seeds = result["seeds"]
    n = result["seeds_tried"]
    complexity = seeds[0]["table"][0]["complexity"] if seeds else "?"
    best = result["best_train_error"]
    winners = [str(s["steps"]) for s in seeds if all(s["bars"].values())] or ["–"]
    gave_up = sum(1 for s in seeds if s.get("gave_up_at_step") is not None)
    wall = statistics.median(s["wall_s"] for s in seeds) if seeds else 0.0
    return [task, paper, f"{result['memory']}, {result['timesteps']}, {complexity}", str(n),
            *(f"{result['reached'][b]}/{n}" for b in BARS),
            "–" if best is None else f"{best:.1%}", ", ".join(winners), str(gave_up), f"{wall:.1f}",
            str(result["mean_steps_per_s"])]


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
