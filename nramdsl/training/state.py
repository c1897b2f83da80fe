"""A training run's whole state, typed: what a checkpoint holds and `--resume` restores bit for bit.

`Progress` is the run's counters; `TrainState` adds the tensors and generators around them. Everything
random comes from the two generators, seeded from the run's seed, so restoring them restores the future.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import torch

from nramdsl.errors import NramError

from nramdsl.machine.fuzzy import NRAM
from nramdsl.training.config import TrainConfig
from nramdsl.training.curriculum import Curriculum


# The Python types a counter of each annotated type may hold in a checkpoint.
_KINDS: dict[Any, tuple[type, ...]] = {int: (int,), float: (int, float), Optional[int]: (int, type(None)),
                                       Optional[float]: (int, float, type(None)), Optional[str]: (str, type(None))}


@dataclass
class Progress:
    step: int = 0  # updates done, skipped ones included
    skipped: int = 0  # updates skipped for a non-finite loss or gradient
    rollbacks: int = 0
    rollbacks_in_a_row: int = 0  # rollbacks since the last update that left the weights finite
    consecutive_skips: int = 0
    zero_streak: int = 0  # consecutive error-free batches at the top curriculum level
    probe_error: float | None = None  # the last probe's error (`stop.probe_every`)
    probe_zero: int = 0  # consecutive error-free probes
    solved_at: int | None = None  # the first step whose batch was error-free at the top level
    stretched_at: int | None = None  # the step the stretch phase began
    gave_up_at: int | None = None  # the step a give-up rule ended the run
    stopped: str | None = None  # the stop rule that ended the run early (`nramdsl.training.stopping`)
    wall: float = 0.0  # training seconds, summed over resumes

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Progress:
        """Counters a checkpoint does not know keep their defaults; ones this version does not know are dropped.
        A counter of the wrong type is a ValueError (a checkpoint is untrusted input)."""
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            if f.name in state:
                value, kinds = state[f.name], _KINDS[hints[f.name]]
                if isinstance(value, bool) or not isinstance(value, kinds):
                    raise ValueError(f"counter '{f.name}' is {value!r}")
                out[f.name] = value
        return cls(**out)


@dataclass
class TrainState:
    model: NRAM
    optimizer: torch.optim.Optimizer
    curriculum: Curriculum
    data_gen: torch.Generator  # examples and their sizes
    noise_gen: torch.Generator  # gradient noise
    progress: Progress = field(default_factory=Progress)

    @classmethod
    def fresh(cls, model: NRAM, cfg: TrainConfig, levels: int, device: torch.device) -> TrainState:
        """Step 0 of a run: Adam on the model, the generators seeded from `cfg.seed`, the curriculum at its
        first level (at its top without a curriculum)."""
        curriculum = Curriculum.up_to(levels, threshold=cfg.curriculum.threshold, patience=cfg.curriculum.patience)
        if not cfg.curriculum.enabled:
            curriculum.level = len(curriculum.levels) - 1
        return cls(
            model,
            torch.optim.Adam(list(model.parameters()), lr=cfg.lr),
            curriculum,
            torch.Generator().manual_seed(cfg.seed * 1_000_003 + 1),
            torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + 2),
        )

    def state_dict(self, cfg: TrainConfig) -> dict[str, Any]:
        """A deep copy (a model's state_dict holds references to its live tensors)."""
        return copy.deepcopy({
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "curriculum": self.curriculum.state_dict(),
            "data_gen": self.data_gen.get_state(),
            "noise_gen": self.noise_gen.get_state(),
            "counters": self.progress.state_dict(),
            "config": cfg.settings(),
        })

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint's state; one that does not fit this machine and these settings (another
        machine's weights, a hand-edited counter) is an `NramError`, and nothing is half restored."""
        try:
            progress = Progress.from_state_dict(state["counters"])
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.curriculum.load_state_dict(state["curriculum"])
            self.data_gen.set_state(state["data_gen"])
            self.noise_gen.set_state(state["noise_gen"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            first = (str(exc).strip().splitlines() or [""])[-1].strip()[:200]
            raise NramError(f"the checkpoint does not fit this machine and its settings ({first})") from None
        self.progress = progress


def load_weights(model: torch.nn.Module, state: dict[str, Any], path: Any) -> None:
    """A checkpoint's weights into `model`; weights of another machine are one `NramError`."""
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:
        lines = str(exc).splitlines()  # torch: a header line, then one line per mismatched tensor
        first = lines[1].strip() if len(lines) > 1 else str(exc)
        raise NramError(f"'{path}' was trained on a different machine ({first})") from None
