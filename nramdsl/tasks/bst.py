"""The tree task: WalkBST (paper App. A).

Layout, with n = the complexity = size(tree):

    cell 0 = root, cell 1 = out (0 on input), cells 2..k+1 = d_1..d_k, cell k+2 = NULL, then the nodes.

Directions. The paper writes d_i in {0, 1} (0 = left, 1 = right), but NULL = 0 also ends the list, so a
path starting with "left" could not be told from an empty one. Here 1 = left, 2 = right, 0 ends the path.

Nodes are triples (v, l, r) at random disjoint places in [k+3, M); a pointer to a node is the address of
its v cell; l and r point to the children, NULL = 0 for none. Keys are n distinct values from [1, M)
inserted into an empty BST in random order (a random BST: every key of the left subtree < v < every key
of the right subtree). The path is the root-to-node path of a uniformly chosen node, so its length k is
random in [0, depth] and always follows existing children (k = 0 asks for the root's key). Cells the
layout does not use hold 0.

Sampler "leaf" (training only, `train { sampler = "leaf" }`): the path ends at a uniformly chosen leaf
instead, so deep paths are common. The paper says only "the element at the end of the path"; with the
uniform node, paths of 4 or more hops are about a quarter of the cases at tree size 10, and a program that
stops walking after about five hops reaches the top curriculum level (docs/results.md, WalkBST).
Sampler "mixed": each path ends at a uniformly chosen node or at a uniformly chosen leaf, by a fair coin,
so deep paths stay common and k = 0 (the root's key, which leaf paths ask only of a one-node tree) does not
become rare.

Output: cell 1 <- the key of the node at the end of the path.  Mask: cell 1.
min M = 4n + 2: the header, up to n-1 directions and NULL, and 3n node cells.
"""

from __future__ import annotations

from typing import Literal, cast

import torch

from nramdsl.tasks.base import Instance, Task, permutation, place_blocks, randint

LEFT, RIGHT = 1, 2
PathEnd = Literal["node", "leaf", "mixed"]


class WalkBST(Task):
    name = "walkbst"
    description = (
        "root, out, d_1..d_k (1 = left, 2 = right), NULL, nodes (v, l, r); "
        "write the key at the end of the path into out"
    )
    train_complexity = 10
    samplers = ("leaf", "mixed")

    def __init__(self, path: PathEnd = "node") -> None:
        self.path = path  # where the path ends: a uniformly chosen node, a uniformly chosen leaf, or either by a coin

    def with_sampler(self, name: str) -> WalkBST:
        if name not in self.samplers:
            return super().with_sampler(name)
        return WalkBST(path=cast(PathEnd, name))

    def min_memory(self, complexity: int) -> int:
        return 4 * complexity + 2

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        n = complexity
        keys = [1 + i for i in permutation(generator, M - 1)[:n]]  # distinct, in random insertion order
        # children[i] = [left, right] as indices into keys, -1 for none; keys[0] is the root.
        children = [[-1, -1] for _ in range(n)]
        paths: list[list[int]] = [[]]
        for i in range(1, n):
            node, path = 0, []
            while True:
                side = 0 if keys[i] < keys[node] else 1
                path.append(LEFT if side == 0 else RIGHT)
                if children[node][side] < 0:
                    children[node][side] = i
                    break
                node = children[node][side]
            paths.append(path)
        # The node sampler draws nothing more here, so the task's own instances stay as they always were.
        to_leaf = self.path == "leaf" or (self.path == "mixed" and randint(generator, 0, 2) == 1)
        ends = [i for i in range(n) if children[i] == [-1, -1]] if to_leaf else range(n)
        directions = paths[ends[randint(generator, 0, len(ends))]]
        nodes_start = 3 + len(directions)
        addresses = place_blocks(generator, nodes_start, M, n, 3)
        memory = [0] * M
        memory[0] = addresses[0]
        memory[2 : 2 + len(directions)] = directions
        for i, address in enumerate(addresses):
            left, right = children[i]
            memory[address] = keys[i]
            memory[address + 1] = addresses[left] if left >= 0 else 0
            memory[address + 2] = addresses[right] if right >= 0 else 0
        return Instance(memory, [1])

    def solve(self, memory: list[int], M: int) -> list[int]:
        out = list(memory)
        node = memory[0]
        cell = 2
        while memory[cell] != 0:
            node = memory[node + memory[cell]]  # LEFT = 1 and RIGHT = 2 are the offsets of l and r
            cell += 1
        out[1] = memory[node]
        return out
