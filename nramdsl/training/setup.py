"""A machine and its settings -> one training job: the settings in force, the task, the training complexity.

Every caller that trains or evaluates (the CLI, the Python API, a seed search's workers, `load_run`)
goes through here, so the task is looked up and the complexity computed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from nramdsl.errors import NramError, Span
from nramdsl.lang.spec import MachineSpec
from nramdsl.tasks import Task, available_tasks, get_task
from nramdsl.training.config import TrainConfig, coerce_settings


@dataclass(frozen=True)
class Job:
    spec: MachineSpec
    config: TrainConfig
    task: Task
    complexity: int  # the largest training complexity (the curriculum's top level)


def find_task(name: str, span: Span | None = None) -> Task:
    try:
        return get_task(name)
    except ValueError:
        raise NramError(f"unknown task '{name}'; available tasks: {', '.join(available_tasks())}", span) from None


def training_complexity(task: Task, cfg: TrainConfig, M: int) -> int:
    """`cfg.complexity`, or the paper's training complexity capped by what fits in M cells."""
    fits = task.max_complexity(M)
    if fits < 1:
        raise NramError(f"task '{task.name}' does not fit in M = {M} cells (needs {task.min_memory(1)})")
    want = cfg.complexity or task.train_complexity
    if want > fits:
        if cfg.complexity:
            raise NramError(
                f"complexity {want} of task '{task.name}' needs M >= {task.min_memory(want)}, the machine has M = {M}"
            )
        want = fits
    return want


def configure(spec: MachineSpec, options: Mapping[str, Any] | None = None, where: str = "--option") -> TrainConfig:
    """The machine's `train { … }` preset with `options` (already typed, or strings from the command line)
    on top, and the machine's `task` when neither names one."""
    settings = coerce_settings(spec.train, spec.span)
    settings.update(coerce_settings(options or {}, None, where))
    settings.setdefault("task", spec.task or "")
    return TrainConfig.from_settings(settings)


def plan(spec: MachineSpec, cfg: TrainConfig) -> Job:
    """The job of training `spec` under `cfg`; a clear error when it names no task or its task does not fit."""
    name = cfg.task or spec.task
    if not name:
        raise NramError(f"machine '{spec.name}' names no task: add `task NAME` to it or pass --task", spec.span)
    task = find_task(name)
    if cfg.task != task.name:
        cfg = cfg.replace(task=task.name)
    return Job(spec, cfg, task, training_complexity(task, cfg, spec.memory))
