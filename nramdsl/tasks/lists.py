"""The linked-list tasks: ListK and ListSearch (paper App. A).

A list node is two adjacent cells (next, value) at a random location; a pointer to a node is the address
of its `next` cell; the last node's next is NULL = 0 (cell 0 is the header, never a node, so 0 is never
a node address). The n nodes (n = the complexity = len(list)) are placed uniformly at random as disjoint
pairs of cells in [3, M) (not aligned to even addresses), in an order unrelated to the list order.
Node values are drawn from [1, M).

ListK       cell 0 = head, cell 1 = k, cell 2 = out (0 on input).  k is uniform in [0, n): the number of
            `next` hops from the head (k = 0 is the head's value).  Cells outside header and nodes: 0.
            Output: cell 2 <- the value of the node k hops from the head.  Mask: cell 2.
            min M = 2n + 3.
ListSearch  cell 0 = head, cell 1 = v, cell 2 = out (0 on input).  v is the value of a uniformly chosen
            node, so it always occurs (possibly several times).  Every cell outside header and nodes
            holds "trash", uniform in [0, M), so that a program cannot find the nodes by scanning for
            nonzero cells.  Output: cell 2 <- a pointer to the first node (in list order) whose value is
            v.  Mask: cell 2.  min M = 2n + 3.
"""

from __future__ import annotations

import torch

from nramdsl.tasks.base import Instance, Task, place_blocks, randint, randints

HEADER = 3  # head, k or v, out


def _build_list(
    memory: list[int], M: int, n: int, generator: torch.Generator
) -> tuple[list[int], list[int]]:
    """Place n random nodes into `memory`; return (node addresses in list order, their values)."""
    nodes = place_blocks(generator, HEADER, M, n, 2)
    values = randints(generator, 1, M, n)
    for i, (address, value) in enumerate(zip(nodes, values)):
        memory[address] = nodes[i + 1] if i + 1 < n else 0
        memory[address + 1] = value
    return nodes, values


class ListK(Task):
    name = "listk"
    description = (
        "head, k, out, nodes (next, value) at random places; write the value k hops from head into out"
    )
    train_complexity = 10

    def min_memory(self, complexity: int) -> int:
        return HEADER + 2 * complexity

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        memory = [0] * M
        nodes, _ = _build_list(memory, M, complexity, generator)
        memory[0] = nodes[0]
        memory[1] = randint(generator, 0, complexity)
        return Instance(memory, [2])

    def solve(self, memory: list[int], M: int) -> list[int]:
        out = list(memory)
        node = memory[0]
        for _ in range(memory[1]):
            node = memory[node]
        out[2] = memory[node + 1]
        return out


class ListSearch(Task):
    name = "listsearch"
    description = (
        "head, v, out, nodes (next, value) among trash; "
        "write a pointer to the first node with value v into out"
    )
    train_complexity = 6

    def min_memory(self, complexity: int) -> int:
        return HEADER + 2 * complexity

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        memory = [0] * M
        nodes, values = _build_list(memory, M, complexity, generator)
        used = {0, 1, 2, *nodes, *(a + 1 for a in nodes)}
        free = [cell for cell in range(M) if cell not in used]
        for cell, trash in zip(free, randints(generator, 0, M, len(free))):
            memory[cell] = trash
        memory[0] = nodes[0]
        memory[1] = values[randint(generator, 0, complexity)]
        return Instance(memory, [2])

    def solve(self, memory: list[int], M: int) -> list[int]:
        out = list(memory)
        node = memory[0]
        for _ in range(M):  # a list in M cells has fewer than M nodes; this bounds a cyclic input
            if node == 0:
                break
            if memory[node + 1] == memory[1]:
                out[2] = node
                return out
            node = memory[node]
        raise ValueError(f"listsearch: value {memory[1]} is not in the list")
