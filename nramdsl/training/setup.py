"""A machine and its settings -> one training job: the settings in force, the task, the training complexity.

Every caller that trains or evaluates (the CLI, the Python API, a seed search's workers, `load_run`)
goes through here, so the task is looked up and the complexity computed in one place.
"""

from __future__ import annotations

import difflib
import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping

from nramdsl import limits
from nramdsl.errors import ErrorList, NramError, Span
from nramdsl.lang.spec import MachineSpec
from nramdsl.tasks import Task, available_tasks, get_task
from nramdsl.training.config import TrainConfig, coerce_settings


@dataclass(frozen=True)
class Job:
    spec: MachineSpec
    config: TrainConfig
    task: Task  # what evaluation, probes and the bars measure
    complexity: int  # the largest training complexity (the curriculum's top level)

    @functools.cached_property
    def draws(self) -> Task:
        """The task whose instances training draws: `task`, or `task` with the configured sampler."""
        return self.task.with_sampler(self.config.sampler) if self.config.sampler else self.task


def find_task(name: str, span: Span | None = None) -> Task:
    try:
        return get_task(name)
    except ValueError:
        close = difflib.get_close_matches(name, available_tasks(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise NramError(f"unknown task '{name}'{hint}; available tasks: {', '.join(available_tasks())}", span) from None


def training_complexity(task: Task, cfg: TrainConfig, M: int, spec: MachineSpec | None = None) -> int:
    """`cfg.complexity`, or the paper's training complexity capped by what fits in M cells. Errors point at
    the machine's memory (or its `complexity` entry) when `spec` says where they are written."""
    where = spec.where if spec is not None else {}
    fits = task.max_complexity(M)
    if fits < 1:
        raise NramError(f"task '{task.name}' does not fit in M = {M} cells (needs {task.min_memory(1)})",
                        where.get("memory"))
    want = cfg.complexity or task.train_complexity
    if want > fits:
        if cfg.complexity:
            raise NramError(
                f"complexity {want} of task '{task.name}' needs M >= {task.min_memory(want)}, the machine has M = {M}",
                where.get("train.complexity", where.get("memory")),
            )
        want = fits
    return want


def preset(spec: MachineSpec) -> dict[str, Any]:
    """The machine's `train { … }` block checked: each problem at its entry."""
    spans = {key.removeprefix("train."): span for key, span in spec.where.items() if key.startswith("train.")}
    return coerce_settings(spec.train, spec.span, spans=spans)


def configure(spec: MachineSpec, options: Mapping[str, Any] | None = None, where: str = "--option") -> TrainConfig:
    """The machine's `train { … }` preset with `options` (already typed, or strings from the command line)
    on top, and the machine's `task` when neither names one."""
    settings = preset(spec)
    settings.update(coerce_settings(options or {}, None, where))
    settings.setdefault("task", spec.task or "")
    return TrainConfig.from_settings(settings)


def plan(spec: MachineSpec, cfg: TrainConfig) -> Job:
    """The job of training `spec` under `cfg`; a clear error when it names no task or its task does not fit."""
    name = cfg.task or spec.task
    if not name:
        raise NramError(f"machine '{spec.name}' names no task: add `task NAME` to it or pass --task", spec.span)
    written = "task" if name == spec.task else "train.task" if name == spec.train.get("task") else ""
    task = find_task(name, spec.where.get(written))
    if cfg.task != task.name:
        cfg = cfg.replace(task=task.name)
    if cfg.sampler:  # refused here, where the entry is known, rather than at the first batch
        try:
            task.with_sampler(cfg.sampler)
        except ValueError as exc:
            raise NramError(str(exc), spec.where.get("train.sampler")) from None
    _check_device(cfg.device)
    check_size(spec, cfg)
    return Job(spec, cfg, task, training_complexity(task, cfg, spec.memory, spec))


def check_size(spec: MachineSpec, cfg: TrainConfig, members: int = 1) -> None:
    """What one step of `members` runs keeps for backpropagation, within `limits.TRAIN_CELLS`, before anything
    is allocated (a population's members share one batch)."""
    T = math.ceil(spec.timesteps * max(1.0, cfg.stretch.slack if cfg.stretch.after else 1.0))
    cells = members * cfg.batch * T * spec.memory * spec.memory
    span = spec.where.get("memory")  # none when M comes from an override (--set M=…): say so instead
    origin = "" if span is not None else f"override memory={spec.memory}: "
    who = f"a population of {members}, " if members > 1 else ""
    limits.TRAIN_CELLS.check(cells, span, None, f"{origin}{who}batch {cfg.batch}, T = {T}, M = {spec.memory}: ")


def check_training(spec: MachineSpec) -> list[NramError]:
    """Everything `train` will read from the machine, checked as `nramdsl check` does it: the train block's
    keys and values, the task's name, and that the task fits the machine's memory; each error at the text
    it is about, all of them in one pass. A machine without a task is checked as far as it goes."""
    errors: list[NramError] = []
    settings: dict[str, Any] | None = None
    try:
        settings = preset(spec)
    except NramError as exc:
        errors.extend(exc.errors if isinstance(exc, ErrorList) else [exc])
    name = (settings or {}).get("task") or spec.task
    if name:
        written = "task" if name == spec.task else "train.task"
        try:
            find_task(name, spec.where.get(written))
        except NramError as exc:
            errors.append(exc)
    if name and not errors:  # the task fits the machine, at the complexity the block asks for
        try:
            plan(spec, configure(spec))
        except NramError as exc:
            errors.extend(exc.errors if isinstance(exc, ErrorList) else [exc])
    return errors


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NramError(f"device '{device}' is not available here (no CUDA device); use device = cpu")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise NramError(f"device '{device}' does not exist ({torch.cuda.device_count()} CUDA devices)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise NramError("device 'mps' is not available here; use device = cpu")
