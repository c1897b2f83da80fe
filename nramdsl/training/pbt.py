"""Population-based training (Jaderberg et al. 2017): the bottom of a population copies the top, then explores.

Every `pbt.every` steps (`nramdsl.training.config.PBTSettings`), the members still training are ranked by
curriculum level (higher first), then by the error of their last probe at twice the training size, then by
their mean training error since the last round (lower first).
Each member of the bottom quantile copies a random member of the top quantile: its weights, its optimizer
state, its curriculum and its phase (exploit). It keeps its own seed, generators and step count, so it
explores a new example and noise stream from there. Then each of its `EXPLORED` settings is multiplied by
1 ± `perturb` (either with probability 1/2), or with probability `resample` drawn afresh from its range
(explore); noise.eta only with `pbt.noise` on, else every member keeps the η it was configured with.
Every copy is recorded in the copying member's lineage and as a row of the metrics (`Copy`, read back by
`read_copy` for learning curves and for the origins a search records), so a result can be traced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import torch

# The settings PBT explores, and the range each is drawn from on a resample (log-uniform between the
# bounds; noise.eta uniform over the gradient-noise paper's three values and 0).
EXPLORED: dict[str, tuple[float, float]] = {"lr": (1e-4, 1e-2), "entropy.coef": (1e-3, 1e-1), "noise.eta": (0.0, 1.0)}
NOISE_ETAS = (0.0, 0.01, 0.3, 1.0)


def rank(members: list[Any]) -> list[Any]:
    """Best first: curriculum level, then the last probe's error at twice the training size, then the mean
    training error since the last round (nan ranks last).

    The probe comes before the training error because a member solves its task only when its probes are
    error-free (`stop.on_probe`): ranked by training error alone, a member that is exact at the training
    size but wrong at twice it wins every round, and the population fills with such members (Copy, 32
    members, PBT every 100 steps, ranked without the probe: at step 970 the 27 members still training were
    all exact at the training size and 5-8 % wrong at twice it, 26 of them through copies). A member not
    yet probed ranks after every probed one of its level."""

    def key(m: Any) -> tuple[int, float, float]:
        err = sum(m.errors) / len(m.errors) if m.errors else math.inf
        probe = m.progress.probe_error
        return (-m.curriculum.level, math.inf if probe is None or probe != probe else probe,
                err if err == err else math.inf)

    return sorted(members, key=key)


def _draw(key: str, gen: torch.Generator) -> float:
    u = float(torch.rand((), generator=gen, dtype=torch.float64))
    if key == "noise.eta":
        return NOISE_ETAS[min(int(u * len(NOISE_ETAS)), len(NOISE_ETAS) - 1)]
    low, high = EXPLORED[key]
    return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def explored(noise: bool) -> tuple[str, ...]:
    """The keys a round explores: all of `EXPLORED`, or all but noise.eta when `pbt.noise` is off."""
    return tuple(key for key in EXPLORED if noise or key != "noise.eta")


def explore(settings: dict[str, float], resample: float, perturb: float, gen: torch.Generator) -> dict[str, float]:
    """New values for the given settings (keys of `EXPLORED`): each resampled, or multiplied by 1 + perturb
    or 1 - perturb."""
    out = {}
    for key, value in settings.items():
        if float(torch.rand((), generator=gen, dtype=torch.float64)) < resample:
            out[key] = _draw(key, gen)
        else:
            up = float(torch.rand((), generator=gen, dtype=torch.float64)) < 0.5
            out[key] = value * (1 + perturb if up else 1 - perturb)
    return out


@dataclass(frozen=True)
class Copy:
    """One exploit of a PBT round, as a row of metrics.jsonl records it."""

    round: int  # the population's step count at the round: the copies of one round share it
    step: int  # the loser's own step (a member's curve is drawn over its own steps)
    member: int  # the loser's index in the population
    seed: int  # the loser's seed
    copied: int  # the winner's seed

    def row(self, settings: dict[str, float]) -> dict[str, Any]:
        return {"step": self.step, "member": self.member, "seed": self.seed,
                "pbt": {"step": self.round, "copied": self.copied, "settings": settings}}


def read_copy(row: dict[str, Any]) -> Copy | None:
    """The copy a metrics row records; None for a row that is not one (no "pbt" key). The file is
    untrusted, so a "pbt" row whose fields are not integers raises ValueError: one reader may skip it
    (a learning curve is still worth drawing), another must give no figure rather than a wrong one."""
    event = row.get("pbt")
    if event is None:
        return None
    fields = ((event.get("step"), row.get("step"), row.get("member"), row.get("seed"), event.get("copied"))
              if isinstance(event, dict) else ())
    if len(fields) != 5 or not all(type(x) is int for x in fields):
        raise ValueError(f"a PBT copy row whose fields are not integers: {row!r:.200}")
    return Copy(*fields)


def origins(seeds: list[int], copies: Iterable[tuple[int, int, int]]) -> dict[int, int] | None:
    """Whose initialization each member's final weights descend from: its own seed, or, through the copies
    (step, loser's seed, winner's seed) of the metrics, the origin of the member it copied last. Members
    passing with one origin are one solution found once, so counting origins rather than members keeps a
    PBT search's success rate comparable with independent members'. The copies of one round read the
    origins from before it, so their order within the round does not matter. None when a copy names a seed
    outside `seeds` (metrics of another population)."""
    origin = {seed: seed for seed in seeds}
    rounds: dict[int, list[tuple[int, int]]] = {}
    for step, loser, winner in copies:
        if loser not in origin or winner not in origin:
            return None
        rounds.setdefault(step, []).append((loser, winner))
    for step in sorted(rounds):
        before = dict(origin)
        for loser, winner in rounds[step]:
            origin[loser] = before[winner]
    return origin


def pairs(members: list[Any], quantile: float, gen: torch.Generator) -> list[tuple[Any, Any]]:
    """(loser, winner) pairs of this round: each of the bottom quantile with a random one of the top."""
    ranked = rank(members)
    if len(ranked) < 2:
        return []
    n = max(1, int(len(ranked) * quantile))  # at least one pair: a small population still explores
    top, bottom = ranked[:n], ranked[-n:]
    picks = torch.randint(0, len(top), (len(bottom),), generator=gen).tolist()
    return [(loser, top[i]) for loser, i in zip(bottom, picks) if loser is not top[i]]
