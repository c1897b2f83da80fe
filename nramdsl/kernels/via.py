"""Load a gate's hand-written batched kernel (`gate f(a, b) = ... via "module:function"`).

The function receives one tensor per gate argument, each `[..., M]` with rows on the simplex, and returns
the lifted output `[..., M]`. It must compute the Eq. 2 lift of the gate's own integer definition; that
is what `nramdsl check` verifies (see `nramdsl.kernels.properties`).

The module is imported with the folder of the spec that names it first on `sys.path`, so a kernel file can
sit next to its `.nram` file. `sys.path` is restored afterwards. Python caches imported modules by name
(`sys.modules`), so two specs in different folders should not use two different modules of the same name.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Callable

import torch

from nramdsl.errors import NramError
from nramdsl.lang.spec import Gate

ViaFunction = Callable[..., torch.Tensor]


def _import(module_name: str, source_dir: str | None):
    saved = list(sys.path)
    if source_dir is not None:
        sys.path.insert(0, source_dir)
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path[:] = saved


def load_via(gate: Gate) -> ViaFunction:
    """The callable named by `gate.via`; an NramError at `gate.via_span` when it cannot be loaded."""
    where = gate.via_span or gate.span
    if gate.via is None:
        raise ValueError(f"gate {gate.name!r} has no 'via' kernel")
    module_name, sep, attr = gate.via.partition(":")
    if not sep or not module_name or not attr:
        raise NramError(f"gate '{gate.name}': 'via' must be \"module:function\", got {gate.via!r}", where)
    try:
        module = _import(module_name, gate.source_dir)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            searched = f" (searched {gate.source_dir} first)" if gate.source_dir else ""
            raise NramError(f"gate '{gate.name}': no module named '{module_name}' for its 'via' kernel{searched}", where) from exc
        raise NramError(f"gate '{gate.name}': importing '{module_name}' failed: {exc}", where) from exc
    except Exception as exc:  # the user's module raised while importing: report it at the spec, not as a traceback
        raise NramError(f"gate '{gate.name}': importing '{module_name}' failed: {type(exc).__name__}: {exc}"
                        f"{kernel_location(gate, exc)}", where) from exc
    fn = module
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise NramError(f"gate '{gate.name}': module '{module_name}' has no attribute '{attr}' for its 'via' kernel", where)
        fn = getattr(fn, part)
    if not callable(fn):
        raise NramError(f"gate '{gate.name}': '{gate.via}' is not callable ({type(fn).__name__})", where)
    return fn  # type: ignore[return-value]


_PACKAGE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # nramdsl/


def kernel_location(gate: Gate, exc: BaseException) -> str:
    """` (at FILE:LINE, in FUNCTION)`: where in the user's kernel code `exc` was raised (the innermost frame
    in the kernel's module, or else in the spec's folder), so the report points into the kernel, not only
    at the spec's `via`. Empty when no frame is the user's."""
    if isinstance(exc, SyntaxError) and exc.filename:  # the module does not even parse
        return f" (at {exc.filename}:{exc.lineno})"
    module = sys.modules.get((gate.via or "").partition(":")[0])
    own = os.path.realpath(module.__file__) if module is not None and getattr(module, "__file__", None) else None
    folder = os.path.realpath(gate.source_dir) + os.sep if gate.source_dir else None
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.realpath(frame.filename)
        ours = path.startswith(_PACKAGE + os.sep)
        if path == own or (folder is not None and path.startswith(folder) and not ours):
            found = frame
    return f" (at {found.filename}:{found.lineno}, in {found.name})" if found else ""
