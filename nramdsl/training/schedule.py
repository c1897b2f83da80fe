"""The phase schedule: which phase a run is in, and the sizes of the batch it trains on next.

Phase 1 learns the task at the training size under the curriculum (App. B). Once the training error has
been 0 for `stretch.after` consecutive batches at the top level, phase 2 (stretch) trains with slack × T
steps in just-fitting memory, sharpening on (`nramdsl.training.config.StretchSettings` says why).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from nramdsl.training.config import TrainConfig
from nramdsl.training.curriculum import Curriculum
from nramdsl.training.setup import Job
from nramdsl.training.state import Progress


@dataclass(frozen=True)
class Phase:
    stretched: bool
    sharpen: bool  # the entropy penalties replace the entropy bonus


def advance(progress: Progress, cfg: TrainConfig) -> Progress:
    """The progress after the phase change due at this step (a changed copy; the input is not touched)."""
    if cfg.stretch.after and progress.stretched_at is None and progress.zero_streak >= cfg.stretch.after:
        return dataclasses.replace(progress, stretched_at=progress.step, zero_streak=0)
    return progress


def phase_of(progress: Progress, cfg: TrainConfig) -> Phase:
    stretched = progress.stretched_at is not None
    return Phase(stretched, stretched and cfg.stretch.sharpen > 0)


def stretched_timesteps(job: Job) -> int:
    T = job.spec.timesteps
    return max(T, math.ceil(job.config.stretch.slack * T))


def largest_trained(job: Job, phase: Phase) -> int:
    """The largest complexity the phase trains on."""
    if phase.stretched:
        return max(job.complexity, math.ceil(job.config.stretch.complexity * job.complexity))
    return job.complexity


@dataclass(frozen=True)
class BatchSize:
    complexities: torch.Tensor  # int64 [batch], one per example
    memory: int
    timesteps: int


def draw_batch_size(job: Job, phase: Phase, curriculum: Curriculum, gen: torch.Generator) -> BatchSize:
    """Each example's complexity, the memory and the step budget of the next batch (draws from `gen`)."""
    cfg, M = job.config, job.spec.memory
    timesteps = stretched_timesteps(job) if phase.stretched else job.spec.timesteps
    if phase.stretched and cfg.stretch.complexity > 1:
        complexities = torch.randint(1, largest_trained(job, phase) + 1, (cfg.batch,), generator=gen)
        timesteps = max(timesteps, math.ceil(timesteps * int(complexities.max()) / job.complexity))
    else:
        complexities = curriculum.sample(cfg.batch, gen)
    memory = M
    if phase.stretched:
        # the smallest memory that holds the batch, so a loop that does not halt wraps around and destroys
        # its output within the step budget: the pressure that teaches halting
        memory = job.task.min_memory(int(complexities.max()))
        if cfg.stretch.memory == "range" and memory < M:
            memory = int(torch.randint(memory, M + 1, (1,), generator=gen))
    return BatchSize(complexities, memory, timesteps)
