"""A run's counters, typed: the part of its state that is not tensors or generators (a `Member` holds
those, `nramdsl.training.member`), saved in every checkpoint as "counters"."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import asdict, dataclass
from typing import Any, Optional

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
