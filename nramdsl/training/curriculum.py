"""The curriculum of the NRAM paper (App. B, the Zaremba & Sutskever 2014 schedule "without any
modifications").

There is a hand-defined sequence of difficulties `levels` (complexities, e.g. 1..max or a coarser
ladder) and a current level D. To draw one example's difficulty d:
- with probability 10 %: uniformly over all difficulties;
- with probability 25 %: uniformly from [1, D + e];
- with probability 65 %: d = D + e;
where e ~ Geometric(p = 1/2) on {0, 1, 2, ...} (P(e = k) = 2^-(k+1)) and D + e is clipped to the
last level. The support starts at 0 (the paper does not say): with support {1, 2, ...} the 65 % branch
would never train at D itself, and the level would rise on a D the model hardly sees.

All arithmetic is on positions in `levels`, so a coarse ladder works the same way: "D + e" is the
level e rungs above D and "[1, D + e]" is the rungs up to it. With levels = 1..max the two readings agree.

D rises by one level (never past the last) when the reported error is below `threshold` and at least
`patience` batches have passed since the last rise (or since step 0). The paper reports neither number:
threshold = 0.1 and patience = 20 are our defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

UNIFORM_ALL = 0.10  # probability of a difficulty uniform over all levels
UNIFORM_UP_TO = 0.25  # probability of a difficulty uniform over [1, D + e]
# the remaining 0.65: d = D + e


@dataclass
class Curriculum:
    levels: list[int]  # the hand-defined sequence of difficulties (complexities), increasing
    threshold: float = 0.1  # error below which D rises (paper: not reported; our choice)
    patience: int = 20  # minimum number of batches between rises (paper: "some number of batches")
    level: int = 0  # index of the current D in levels
    last_rise: int = 0  # the step of the last rise; 0 at the start of training

    def __post_init__(self) -> None:
        self.levels = [int(d) for d in self.levels]
        if not self.levels:
            raise ValueError("curriculum: levels is empty")
        if self.levels[0] < 1 or any(b <= a for a, b in zip(self.levels, self.levels[1:])):
            raise ValueError(f"curriculum: levels must be increasing and >= 1, got {self.levels}")
        if not 0 <= self.level < len(self.levels):
            raise ValueError(f"curriculum: level {self.level} is not an index of levels")
        if self.patience < 0:
            raise ValueError(f"curriculum: patience must be >= 0, got {self.patience}")

    @classmethod
    def up_to(cls, max_complexity: int, **kwargs: Any) -> Curriculum:
        """The curriculum over every complexity 1..max_complexity (e.g. `task.max_complexity(M)`)."""
        return cls(levels=list(range(1, max_complexity + 1)), **kwargs)

    @property
    def difficulty(self) -> int:
        """The current D."""
        return self.levels[self.level]

    @property
    def at_max(self) -> bool:
        return self.level == len(self.levels) - 1

    def sample(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """int64 [batch] difficulties, one per example, drawn as App. B says from `generator` only."""
        top = len(self.levels) - 1
        # Every stream is drawn for every example, whatever its branch, so the generator advances by
        # the same amount for any outcome.
        branch = torch.rand(batch, generator=generator, dtype=torch.float64)
        e = torch.empty(batch, dtype=torch.float64).geometric_(0.5, generator=generator).long() - 1
        uniform = torch.rand(batch, generator=generator, dtype=torch.float64)
        reach = (self.level + e).clamp(max=top)  # the index of D + e, clipped to the last level
        # floor(u * count) is uniform over 0..count-1; the clamp guards float rounding to count.
        up_to = torch.minimum((uniform * (reach + 1)).floor().long(), reach)
        anywhere = (uniform * (top + 1)).floor().long().clamp(max=top)
        index = torch.where(
            branch < UNIFORM_ALL,
            anywhere,
            torch.where(branch < UNIFORM_ALL + UNIFORM_UP_TO, up_to, reach),
        )
        return torch.tensor(self.levels, dtype=torch.int64)[index]

    def update(self, error: float, step: int) -> bool:
        """Report the error of the batch at `step`; returns True when D rose."""
        if error < self.threshold and not self.at_max and step - self.last_rise >= self.patience:
            self.level += 1
            self.last_rise = step
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {
            "levels": list(self.levels),
            "threshold": self.threshold,
            "patience": self.patience,
            "level": self.level,
            "last_rise": self.last_rise,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restored = Curriculum(**state)  # validates
        self.levels = restored.levels
        self.threshold = restored.threshold
        self.patience = restored.patience
        self.level = restored.level
        self.last_rise = restored.last_rise
