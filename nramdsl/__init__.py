"""nramdsl: a declarative language and compiler for Neural Random-Access Machines.

The public API is exactly `__all__`. Names are imported on first use (PEP 562), so `nramdsl check`
does not pay for importing torch.

    import nramdsl
    model = nramdsl.compile("examples/copy.nram")          # a trainable torch.nn.Module
    out = model(memory, target, mask)                      # memory: int64 [B, M]
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # errors
    "NramError": "nramdsl.errors",
    "Span": "nramdsl.errors",
    # front end
    "load_file": "nramdsl.loader",
    "load_text": "nramdsl.loader",
    "load_machine": "nramdsl.loader",
    "resolve_machine": "nramdsl.semantics",
    "check_program": "nramdsl.semantics",
    "Gate": "nramdsl.ir",
    "MachineSpec": "nramdsl.ir",
    "ControllerSpec": "nramdsl.ir",
    "tabulate": "nramdsl.tabulate",
    "build_graph": "nramdsl.circuit_graph",
    # back end
    "NRAM": "nramdsl.model",
    "ModelOptions": "nramdsl.model",
    "NRAMOutput": "nramdsl.model",
    "make_kernel": "nramdsl.kernels",
    "ReferenceMachine": "nramdsl.reference",
    "run_discrete": "nramdsl.discretize",
    "export_program": "nramdsl.export",
    "save_program": "nramdsl.export",
    # tasks and training
    "Task": "nramdsl.tasks",
    "TaskBatch": "nramdsl.tasks",
    "register_task": "nramdsl.tasks",
    "get_task": "nramdsl.tasks",
    "available_tasks": "nramdsl.tasks",
    "Curriculum": "nramdsl.curriculum",
    "TrainConfig": "nramdsl.train_config",
    "train": "nramdsl.train",
    "load_run": "nramdsl.train",
}

__all__ = ["compile", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from nramdsl.model import NRAM


def compile(
    spec: str | Path,
    machine: str | None = None,
    overrides: dict[str, int] | None = None,
    **options: Any,
) -> "NRAM":
    """Load a .nram file and return the trainable module of one of its machines.

    `overrides` changes sizes ({"M": 32, "T": 40}); `options` are `ModelOptions` fields
    (e.g. `generic_kernels=True`, `loss="footnote4"`).
    """
    from nramdsl.loader import load_machine
    from nramdsl.model import NRAM, ModelOptions

    return NRAM(load_machine(spec, machine, overrides), ModelOptions(**options))


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nramdsl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
