"""The task interface shared by the ten paper tasks and by user-defined tasks.

A task turns a complexity (the paper's difficulty parameter: the length of the array, of the list, the
size of the tree) into a random instance laid out in memory: an initial memory, the expected final memory
and the mask of cells that count for the loss and the error (paper App. A: "the loss and the error count
only the cells that should be written").

Conventions common to every built-in task (paper App. A):
- The memory has M cells and every cell holds a value in [0, M), so every value can be used as a pointer.
- NULL = 0 ends arrays and marks a missing next node or child; cells the layout does not use hold 0
  (ListSearch alone fills them with random "trash").
- Array elements are drawn from [1, M): nonzero so that NULL can terminate, and so that a model that
  leaves an output cell untouched (0) never gets it right by chance.

A subclass implements `min_memory`, `_instance` (the random layout) and `solve` (the expected final
memory, computed from the layout as a program would); `generate` and `max_complexity` come from here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TaskBatch:
    """A batch of instances; row b is one example of complexity `complexity[b]`."""

    memory: torch.Tensor  # int64 [B, M], the initial memory (every cell a value in [0, M))
    target: torch.Tensor  # int64 [B, M], the expected final memory (equal to memory outside the mask)
    mask: torch.Tensor  # bool [B, M], the cells that should hold the output
    complexity: torch.Tensor  # int64 [B]


@dataclass(frozen=True)
class Instance:
    """One example before batching: its initial memory and the cells that hold the output."""

    memory: list[int]
    output_cells: list[int]


class Task(ABC):
    """A task: a random-instance generator with its memory layout and its expected output.

    Subclasses set the class attributes `name`, `description` and `train_complexity` and implement
    `min_memory`, `_instance` and `solve`.
    """

    name: str
    description: str
    train_complexity: int  # the paper's Table 1 train complexity
    # Other distributions of instances that training may draw from (`train { sampler = "NAME" }`), where the
    # paper leaves the distribution open. Evaluation, probes and every bar keep the task's own, so results
    # trained either way are measured on the same cases.
    samplers: tuple[str, ...] = ()

    def with_sampler(self, name: str) -> Task:
        """This task drawing its instances the `name` way (one of `samplers`); a ValueError otherwise.
        A task that offers samplers overrides this method."""
        offered = f"samplers: {', '.join(self.samplers)}" if self.samplers else "it draws only its own instances"
        raise ValueError(f"task '{self.name}' has no sampler '{name}' ({offered})")

    @abstractmethod
    def min_memory(self, complexity: int) -> int:
        """The smallest M that holds every instance of `complexity` (cells, pointers and values)."""

    @abstractmethod
    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        """One random instance; called only when `min_memory(complexity) <= M`."""

    @abstractmethod
    def solve(self, memory: list[int], M: int) -> list[int]:
        """The expected final memory for an initial `memory`, decoded from the layout alone."""

    def max_complexity(self, M: int) -> int:
        """The largest complexity that fits in M cells, 0 when not even complexity 1 fits.

        The search stops at M: it assumes an instance of complexity c needs at least c cells, true of
        every built-in task; a task where that is false overrides this method.
        """
        c = 0
        while c < M and self.min_memory(c + 1) <= M:
            c += 1
        return c

    def generate(
        self, complexity: torch.Tensor | int, M: int, batch: int, generator: torch.Generator
    ) -> TaskBatch:
        """A batch of `batch` random instances in memories of M cells.

        `complexity` is one int for the whole batch or an int64 tensor [batch] (the curriculum draws one
        difficulty per example). Every random draw comes from `generator`, so the same generator state
        gives the same batch. Raises ValueError when a complexity is < 1 or does not fit in M.
        """
        sizes = self._complexities(complexity, batch)
        for c in sorted(set(sizes)):
            self._check_fits(c, M)
        memories: list[list[int]] = []
        targets: list[list[int]] = []
        masks: list[list[bool]] = []
        for c in sizes:
            instance = self._instance(c, M, generator)
            if len(instance.memory) != M:  # a user task's slip, caught here rather than as a torch error
                raise ValueError(
                    f"task '{self.name}' built a memory of {len(instance.memory)} cells, expected M = {M}"
                )
            mask = [False] * M
            for cell in instance.output_cells:
                mask[cell] = True
            memories.append(instance.memory)
            targets.append(self.solve(list(instance.memory), M))
            masks.append(mask)
        return TaskBatch(
            memory=torch.tensor(memories, dtype=torch.int64),
            target=torch.tensor(targets, dtype=torch.int64),
            mask=torch.tensor(masks, dtype=torch.bool),
            complexity=torch.tensor(sizes, dtype=torch.int64),
        )

    def _complexities(self, complexity: torch.Tensor | int, batch: int) -> list[int]:
        if batch < 1:
            raise ValueError(f"task '{self.name}': batch must be >= 1, got {batch}")
        if isinstance(complexity, torch.Tensor):
            if complexity.dim() == 0:
                return [int(complexity)] * batch
            if complexity.shape != (batch,):
                raise ValueError(
                    f"task '{self.name}': complexity tensor has shape {tuple(complexity.shape)}, "
                    f"expected ({batch},)"
                )
            return [int(c) for c in complexity.tolist()]
        return [int(complexity)] * batch

    def _check_fits(self, complexity: int, M: int) -> None:
        if complexity < 1:
            raise ValueError(f"task '{self.name}': complexity must be >= 1, got {complexity}")
        need = self.min_memory(complexity)
        if need > M:
            raise ValueError(
                f"task '{self.name}': complexity {complexity} needs M >= {need}, got M = {M} "
                f"(the largest complexity that fits is {self.max_complexity(M)})"
            )

    def __repr__(self) -> str:
        return f"<Task {self.name}: {self.description}>"


# Random helpers. They draw only from the generator they are given, never from the global RNG.


def randint(generator: torch.Generator, low: int, high: int) -> int:
    """A uniform integer in [low, high)."""
    return int(torch.randint(low, high, (1,), generator=generator).item())


def randints(generator: torch.Generator, low: int, high: int, n: int) -> list[int]:
    """n independent uniform integers in [low, high)."""
    return torch.randint(low, high, (n,), generator=generator).tolist()


def permutation(generator: torch.Generator, n: int) -> list[int]:
    """A uniform random permutation of 0..n-1."""
    return torch.randperm(n, generator=generator).tolist()


def place_blocks(
    generator: torch.Generator, start: int, stop: int, count: int, width: int
) -> list[int]:
    """Start addresses of `count` disjoint blocks of `width` cells inside [start, stop).

    Placements are uniform over all arrangements, and the addresses come back in random order (so a
    list's order is unrelated to its nodes' addresses). Blocks of width w in F cells correspond one to
    one to `count` distinct positions among F - count*(w-1): sort the positions, shift the j-th by
    j*(w-1).
    """
    slots = (stop - start) - count * (width - 1)
    assert slots >= count, "caller checked min_memory"
    chosen = sorted(permutation(generator, slots)[:count])
    starts = [start + c + j * (width - 1) for j, c in enumerate(chosen)]
    return [starts[i] for i in permutation(generator, count)]
