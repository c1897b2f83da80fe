"""One member of a population: a run in every respect but its weights' storage (a row of the stacked
controller and of the optimizer, `nramdsl.training.population`).

A member has its own seed, settings (which population-based training may change), curriculum, example and
noise generators, counters and lineage. Its state is what a checkpoint holds for it; a snapshot adds its
weights and optimizer rows, for a rollback or for another member to copy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch

from nramdsl.training.config import TrainConfig
from nramdsl.training.curriculum import Curriculum
from nramdsl.training.setup import Job
from nramdsl.training.state import Progress


@dataclass
class Member:
    index: int  # its row in the stacked weights
    seed: int
    job: Job  # the machine, the task, and this member's own settings (`job.config`)
    curriculum: Curriculum
    data_gen: torch.Generator  # examples and their sizes
    noise_gen: torch.Generator  # gradient noise
    progress: Progress = field(default_factory=Progress)
    lineage: list[dict[str, Any]] = field(default_factory=list)  # population-based training: copies and changes
    train_error: float = float("nan")  # the last batch's
    errors: list[float] = field(default_factory=list)  # batch errors since the last PBT round (its ranking)

    @property
    def cfg(self) -> TrainConfig:
        return self.job.config

    @classmethod
    def fresh(cls, index: int, job: Job, device: torch.device) -> Member:
        """Step 0: the generators seeded from the member's seed, the curriculum at its first level (at its
        top without a curriculum), as a single run with that seed starts."""
        cfg = job.config
        curriculum = Curriculum.up_to(job.complexity, threshold=cfg.curriculum.threshold,
                                      patience=cfg.curriculum.patience)
        if not cfg.curriculum.enabled:
            curriculum.level = len(curriculum.levels) - 1
        return cls(index, cfg.seed, job, curriculum, torch.Generator().manual_seed(cfg.seed * 1_000_003 + 1),
                   torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + 2))

    def with_settings(self, values: dict[str, Any]) -> None:
        """Change some of this member's settings (population-based training)."""
        self.job = Job(self.job.spec, self.cfg.set(values), self.job.task, self.job.complexity)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the weights: plain data and generator states (ByteTensors)."""
        return copy.deepcopy({
            "seed": self.seed,
            "settings": self.cfg.settings(),
            "curriculum": self.curriculum.state_dict(),
            "data_gen": self.data_gen.get_state(),
            "noise_gen": self.noise_gen.get_state(),
            "counters": self.progress.state_dict(),
            "lineage": self.lineage,
            "errors": self.errors,
        })

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything but the settings, which the population decides (a resume may change them)."""
        self.curriculum.load_state_dict(state["curriculum"])
        self.data_gen.set_state(state["data_gen"])
        self.noise_gen.set_state(state["noise_gen"])
        self.progress = Progress.from_state_dict(state["counters"])
        self.lineage = list(state.get("lineage", []))
        self.errors = list(state.get("errors", []))
