"""Every way a run ends before its step budget, as one table: the rule, the setting that switches it, and why.

A run checks the rules after each step, in table order. A resumed run that ended itself stays ended while
the rule that ended it is on, as an uninterrupted run would, so a larger budget changes nothing for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from nramdsl.training.config import TrainConfig
from nramdsl.training.curriculum import Curriculum
from nramdsl.training.state import Progress


@dataclass(frozen=True)
class StopRule:
    name: str  # recorded as `Progress.stopped`
    setting: str  # the key that switches it on (its value is truthy)
    gives_up: bool  # a failure: `gave_up_at` records the step
    fires: Callable[[Progress, TrainConfig, Curriculum], bool]
    why: Callable[[TrainConfig], str]
    advice: str = "most seeds stall like this, so try another --seed"  # what to do about a give-up


STOP_RULES: tuple[StopRule, ...] = (
    StopRule("probe", "stop.on_probe", False,
             lambda p, c, cur: c.stop.on_probe and p.probe_zero >= 2,
             lambda c: "two probes in a row at twice the training size were error-free (stop.on_probe)"),
    StopRule("stalled", "stop.give_up_after", True,
             lambda p, c, cur: bool(c.stop.give_up_after) and not cur.at_max
             and p.step - cur.last_rise >= c.stop.give_up_after,
             lambda c: f"the curriculum level had not risen for {c.stop.give_up_after} steps (stop.give_up_after)"),
    StopRule("unsolved", "stop.solve_within", True,
             lambda p, c, cur: bool(c.stop.solve_within) and p.solved_at is None and p.step >= c.stop.solve_within,
             lambda c: f"the training task was not solved within {c.stop.solve_within} steps (stop.solve_within)"),
    StopRule("ungeneralized", "stop.generalize_within", True,
             lambda p, c, cur: bool(c.stop.generalize_within) and p.solved_at is not None
             and p.step - p.solved_at >= c.stop.generalize_within,
             lambda c: f"the training task was solved, but the probes at twice the training size were not "
                       f"error-free within {c.stop.generalize_within} steps after (stop.generalize_within)",
             "this seed's program is exact only at the lengths it was trained on, so try another --seed"),
    StopRule("diverged", "max_rollbacks", True,
             lambda p, c, cur: bool(c.max_rollbacks) and p.rollbacks_in_a_row >= c.max_rollbacks,
             lambda c: f"updates kept failing (non-finite loss, gradients or weights) through {c.max_rollbacks} "
                       f"rollbacks in a row (max_rollbacks)",
             "the weights are the last finite ones; try a smaller lr"),
)  # fmt: skip
RULES = {rule.name: rule for rule in STOP_RULES}


def rule_that_fires(progress: Progress, cfg: TrainConfig, curriculum: Curriculum) -> StopRule | None:
    return next((rule for rule in STOP_RULES if rule.fires(progress, cfg, curriculum)), None)


def stays_ended(progress: Progress, cfg: TrainConfig) -> bool:
    """Whether a run that ended itself earlier is still ended under `cfg` (a checkpoint from before
    `stopped` was recorded marks a stalled run by `gave_up_at` alone)."""
    ended = progress.stopped or ("stalled" if progress.gave_up_at is not None else None)
    if ended is None:
        return False
    rule = RULES.get(ended)
    return rule is None or bool(cfg.get(rule.setting))
