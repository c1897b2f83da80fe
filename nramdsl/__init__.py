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
    # front end (nramdsl.lang)
    "load_file": "nramdsl.lang.frontend",
    "load_text": "nramdsl.lang.frontend",
    "load_machine": "nramdsl.lang.frontend",
    "machine_from_text": "nramdsl.lang.frontend",
    "load_ref": "nramdsl.lang.frontend",
    "resolve_machine": "nramdsl.lang.frontend",
    "check_program": "nramdsl.lang.frontend",
    "Gate": "nramdsl.lang.spec",
    "MachineSpec": "nramdsl.lang.spec",
    "ControllerSpec": "nramdsl.lang.spec",
    "SpecRef": "nramdsl.lang.spec",
    "tabulate": "nramdsl.lang.tabulate",
    # the circuit graph, the IR (nramdsl.circuit)
    "build_graph": "nramdsl.circuit.graph",
    "Wiring": "nramdsl.circuit.wiring",
    # kernels and machines (nramdsl.kernels, nramdsl.machine)
    "make_kernel": "nramdsl.kernels.lift",
    "select_kernel": "nramdsl.kernels.select",
    "NRAM": "nramdsl.machine.fuzzy",
    "NRAMOutput": "nramdsl.machine.fuzzy",
    "ModelOptions": "nramdsl.machine.options",
    "ReferenceMachine": "nramdsl.machine.integer",
    "run_discrete": "nramdsl.machine.discrete",
    "export_program": "nramdsl.machine.export",
    "save_program": "nramdsl.machine.export",
    # discrete programs: tables, extraction, running them (nramdsl.machine, nramdsl.programs)
    "Program": "nramdsl.machine.program",
    "Circuit": "nramdsl.machine.program",
    "extract_table": "nramdsl.machine.extract",
    "run_program": "nramdsl.machine.discrete",
    "explain_run": "nramdsl.programs.explain",
    "trace_run": "nramdsl.programs.trace",
    # tasks and training
    "Task": "nramdsl.tasks",
    "TaskBatch": "nramdsl.tasks",
    "register_task": "nramdsl.tasks",
    "get_task": "nramdsl.tasks",
    "available_tasks": "nramdsl.tasks",
    "Curriculum": "nramdsl.training.curriculum",
    "TrainConfig": "nramdsl.training.config",
    "train": "nramdsl.training.loop",
    "train_population": "nramdsl.training.loop",
    "load_run": "nramdsl.training.loop",
}

__all__ = ["compile", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from nramdsl.machine.fuzzy import NRAM


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
    from nramdsl.lang.frontend import load_machine
    from nramdsl.machine.fuzzy import NRAM, ModelOptions

    return NRAM(load_machine(spec, machine, overrides), ModelOptions(**options))


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nramdsl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
