"""The paper's ten tasks (Kurach et al. 2016, App. A) and a registry for user-defined ones.

    >>> import torch
    >>> from nramdsl.tasks import get_task
    >>> batch = get_task("copy").generate(5, M=16, batch=32, generator=torch.Generator().manual_seed(0))
    >>> batch.memory.shape, batch.mask[0].sum().item()
    (torch.Size([32, 16]), 5)

Each task's memory layout is documented in its module (`arrays`, `lists`, `bst`).

A user task subclasses `Task` and is registered by instance:

    >>> from nramdsl.tasks import Instance, Task, register_task, unregister_task
    >>> class Double(Task):
    ...     name = "double"
    ...     description = "x, NULL; write 2x mod M into cell 1"
    ...     train_complexity = 1
    ...     def min_memory(self, complexity): return 2
    ...     def _instance(self, complexity, M, generator):
    ...         x = int(torch.randint(1, M, (1,), generator=generator))
    ...         return Instance([x] + [0] * (M - 1), [1])
    ...     def solve(self, memory, M): return [memory[0], 2 * memory[0] % M] + memory[2:]
    >>> register_task(Double())
    >>> batch = get_task("double").generate(1, M=8, batch=2, generator=torch.Generator().manual_seed(0))
    >>> batch.mask.sum().item()
    2
    >>> unregister_task("double")
"""

from __future__ import annotations

from nramdsl.tasks.arrays import Access, Copy, Increment, Merge, Permutation, Reverse, Swap
from nramdsl.tasks.base import Instance, Task, TaskBatch
from nramdsl.tasks.bst import WalkBST
from nramdsl.tasks.lists import ListK, ListSearch

__all__ = [
    "Instance",
    "Task",
    "TaskBatch",
    "available_tasks",
    "get_task",
    "register_task",
    "unregister_task",
]

_REGISTRY: dict[str, Task] = {}


def register_task(task: Task, *, replace: bool = False) -> None:
    """Make `task` available by its name; an existing name is an error unless `replace`."""
    if not isinstance(task, Task):
        raise TypeError(f"register_task expects a Task instance, got {type(task).__name__}")
    if task.name in _REGISTRY and not replace:
        raise ValueError(f"a task named '{task.name}' is already registered (pass replace=True)")
    _REGISTRY[task.name] = task


def unregister_task(name: str) -> None:
    """Remove a registered task (a built-in one too)."""
    get_task(name)  # the same error as get_task for an unknown name
    del _REGISTRY[name]


def get_task(name: str) -> Task:
    """The task registered under `name`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown task '{name}'; available tasks: {', '.join(available_tasks())}"
        ) from None


def available_tasks() -> list[str]:
    """Registered task names, the paper's ten first in the paper's order, then user tasks."""
    return list(_REGISTRY)


for _task in (
    Access(),
    Increment(),
    Copy(),
    Reverse(),
    Swap(),
    Permutation(),
    ListK(),
    ListSearch(),
    Merge(),
    WalkBST(),
):
    register_task(_task)
