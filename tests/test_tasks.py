"""The ten task generators against independent plain-Python oracles.

Each oracle reads one initial memory the way a program would (follow the pointers, walk the list, walk the
tree), checks the layout's structure on the way, and returns {output cell: expected value}. The generator's
target must agree on exactly those cells and equal the memory everywhere else.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch

from nramdsl.tasks import (
    Instance,
    Task,
    TaskBatch,
    available_tasks,
    get_task,
    register_task,
    unregister_task,
)

PAPER_TASKS = {  # name -> Table 1 train complexity
    "access": 20,
    "increment": 15,
    "copy": 15,
    "reverse": 15,
    "swap": 20,
    "permutation": 6,
    "listk": 10,
    "listsearch": 6,
    "merge": 10,
    "walkbst": 10,
}

# The smallest memory of each documented layout, restated here from the module docstrings.
MIN_MEMORY: dict[str, Callable[[int], int]] = {
    "access": lambda n: n + 2,
    "increment": lambda n: max(n + 1, 3),
    "copy": lambda n: 2 * n + 1,
    "reverse": lambda n: 2 * n + 1,
    "swap": lambda n: n + 3,
    "permutation": lambda n: 2 * n + 1,
    "listk": lambda n: 2 * n + 3,
    "listsearch": lambda n: 2 * n + 3,
    "merge": lambda n: 2 * n + 5,
    "walkbst": lambda n: 4 * n + 2,
}

Oracle = Callable[[list[int], int, int], dict[int, int]]


def zeros_outside(mem: list[int], used: set[int]) -> None:
    assert all(v == 0 for i, v in enumerate(mem) if i not in used), "unused cells must be NULL"


def oracle_access(mem: list[int], M: int, n: int) -> dict[int, int]:
    k = mem[0]
    assert 0 <= k < n
    array = []
    i = 1
    while mem[i] != 0:
        array.append(mem[i])
        i += 1
    assert len(array) == n
    zeros_outside(mem, set(range(n + 1)))
    return {0: array[k]}


def oracle_increment(mem: list[int], M: int, n: int) -> dict[int, int]:
    out = {}
    i = 0
    while i < M and mem[i] != 0:
        assert 1 <= mem[i] < M - 1, "increment elements leave room for +1"
        out[i] = mem[i] + 1
        i += 1
    assert i == n
    zeros_outside(mem, set(range(n)))
    return out


def copy_source(mem: list[int], n: int) -> list[int]:
    p = mem[0]
    assert p == n + 1, "p points one past A[n-1]"
    source = mem[1:p]
    assert all(v != 0 for v in source)
    zeros_outside(mem, set(range(p)))
    return source


def oracle_copy(mem: list[int], M: int, n: int) -> dict[int, int]:
    source = copy_source(mem, n)
    return {mem[0] + i: v for i, v in enumerate(source)}


def oracle_reverse(mem: list[int], M: int, n: int) -> dict[int, int]:
    source = copy_source(mem, n)
    return {mem[0] + i: v for i, v in enumerate(reversed(source))}


def oracle_swap(mem: list[int], M: int, n: int) -> dict[int, int]:
    p, q = mem[0], mem[1]
    end = 2
    while mem[end] != 0:
        end += 1
    assert end - 2 == n
    assert 2 <= p <= q < end and (p < q or n == 1)
    zeros_outside(mem, set(range(end)))
    out = {i: mem[i] for i in range(2, end)}
    out[p], out[q] = mem[q], mem[p]
    return out


def oracle_permutation(mem: list[int], M: int, n: int) -> dict[int, int]:
    a = mem[0]
    assert a == n + 1
    perm = mem[1:a]
    assert sorted(perm) == list(range(n)), "P is a permutation of 0..n-1"
    array = mem[a : a + n]
    assert all(v != 0 for v in array)
    zeros_outside(mem, set(range(2 * n + 1)))
    return {1 + i: array[perm[i]] for i in range(n)}


def walk_list(mem: list[int], M: int, n: int) -> list[int]:
    """The node addresses from the head, checking the list is acyclic, disjoint and n long."""
    nodes, seen_cells = [], set()
    node = mem[0]
    while node != 0:
        assert 3 <= node and node + 1 < M, "nodes live after the header"
        assert node not in seen_cells and node + 1 not in seen_cells, "nodes are disjoint, no cycle"
        seen_cells.update((node, node + 1))
        nodes.append(node)
        node = mem[node]
    assert len(nodes) == n
    assert all(1 <= mem[a + 1] < M for a in nodes)
    return nodes


def oracle_listk(mem: list[int], M: int, n: int) -> dict[int, int]:
    nodes = walk_list(mem, M, n)
    k = mem[1]
    assert 0 <= k < len(nodes), "the list has more than k nodes"
    assert mem[2] == 0
    zeros_outside(mem, {0, 1, *nodes, *(a + 1 for a in nodes)})
    return {2: mem[nodes[k] + 1]}


def oracle_listsearch(mem: list[int], M: int, n: int) -> dict[int, int]:
    nodes = walk_list(mem, M, n)
    v = mem[1]
    assert mem[2] == 0
    hits = [a for a in nodes if mem[a + 1] == v]
    assert hits, "v occurs in the list"
    return {2: hits[0]}


def oracle_merge(mem: list[int], M: int, n: int) -> dict[int, int]:
    guard = M - 1
    a, b, o = mem[0], mem[1], mem[2]
    assert a == 3

    def read(start: int) -> tuple[list[int], int]:
        values, i = [], start
        while mem[i] != guard:
            values.append(mem[i])
            i += 1
        return values, i

    first, end_first = read(a)
    second, end_second = read(b)
    assert b == end_first + 1 and o == end_second + 1, "b after the first G, o after the second"
    assert len(first) + len(second) == n
    for values in (first, second):
        assert values == sorted(values) and all(1 <= v < guard for v in values)
    zeros_outside(mem, set(range(o)))
    merged, i, j = [], 0, 0
    while i < len(first) or j < len(second):
        if j == len(second) or (i < len(first) and first[i] <= second[j]):
            merged.append(first[i])
            i += 1
        else:
            merged.append(second[j])
            j += 1
    return {o + t: v for t, v in enumerate(merged)}


def oracle_walkbst(mem: list[int], M: int, n: int) -> dict[int, int]:
    root = mem[0]
    directions = []
    cell = 2
    while mem[cell] != 0:
        assert mem[cell] in (1, 2)
        directions.append(mem[cell])
        cell += 1
    nodes_from = cell + 1
    used = set(range(nodes_from))

    def check(node: int, low: int, high: int) -> int:
        """The subtree size, checking the BST property with keys strictly inside (low, high)."""
        if node == 0:
            return 0
        assert nodes_from <= node and node + 2 < M
        assert not used & {node, node + 1, node + 2}, "nodes are disjoint and form a tree"
        used.update((node, node + 1, node + 2))
        key = mem[node]
        assert low < key < high and key >= 1
        return 1 + check(mem[node + 1], low, key) + check(mem[node + 2], key, high)

    assert check(root, 0, M) == n
    zeros_outside(mem, used)
    node = root
    for d in directions:
        node = mem[node + 1] if d == 1 else mem[node + 2]
        assert node != 0, "the path follows existing children"
    return {1: mem[node]}


ORACLES: dict[str, Oracle] = {
    "access": oracle_access,
    "increment": oracle_increment,
    "copy": oracle_copy,
    "reverse": oracle_reverse,
    "swap": oracle_swap,
    "permutation": oracle_permutation,
    "listk": oracle_listk,
    "listsearch": oracle_listsearch,
    "merge": oracle_merge,
    "walkbst": oracle_walkbst,
}


def check_batch(task: Task, batch: TaskBatch, M: int, size: int) -> None:
    assert batch.memory.dtype == torch.int64 and batch.target.dtype == torch.int64
    assert batch.mask.dtype == torch.bool and batch.complexity.dtype == torch.int64
    assert batch.memory.shape == batch.target.shape == batch.mask.shape == (size, M)
    assert batch.complexity.shape == (size,)
    for tensor in (batch.memory, batch.target):
        assert int(tensor.min()) >= 0 and int(tensor.max()) < M
    for b in range(size):
        mem = batch.memory[b].tolist()
        target = batch.target[b].tolist()
        mask = batch.mask[b].tolist()
        n = int(batch.complexity[b])
        expected = ORACLES[task.name](mem, M, n)
        assert {i for i, m in enumerate(mask) if m} == set(expected), f"{task.name}: mask cells"
        for i in range(M):
            assert target[i] == expected.get(i, mem[i]), f"{task.name}: cell {i} of {mem}"
        assert task.solve(mem, M) == target


def memory_sizes(name: str) -> list[int]:
    smallest = MIN_MEMORY[name](1)
    return sorted({smallest, smallest + 1, 16, 24, 37})


@pytest.mark.parametrize("name", list(PAPER_TASKS))
def test_registry_and_metadata(name: str) -> None:
    task = get_task(name)
    assert task.name == name
    assert task.train_complexity == PAPER_TASKS[name]
    assert task.description and "\n" not in task.description
    for n in range(1, 30):
        assert task.min_memory(n) == MIN_MEMORY[name](n)


def test_available_tasks_in_paper_order() -> None:
    assert available_tasks()[:10] == list(PAPER_TASKS)


@pytest.mark.parametrize("name", list(PAPER_TASKS))
def test_oracle_per_example_complexity(name: str) -> None:
    task = get_task(name)
    generator = torch.Generator().manual_seed(1234)
    for M in memory_sizes(name):
        top = task.max_complexity(M)
        assert top >= 1
        complexities = torch.arange(1, top + 1).repeat(3)
        batch = task.generate(complexities, M, len(complexities), generator)
        assert torch.equal(batch.complexity, complexities)
        check_batch(task, batch, M, len(complexities))


@pytest.mark.parametrize("name", list(PAPER_TASKS))
def test_oracle_int_complexity(name: str) -> None:
    task = get_task(name)
    generator = torch.Generator().manual_seed(99)
    for M in memory_sizes(name):
        for n in {1, task.max_complexity(M)}:
            batch = task.generate(n, M, 16, generator)
            assert batch.complexity.tolist() == [n] * 16
            sizes = [len(ORACLES[name](m, M, n)) for m in batch.memory.tolist()]
            assert batch.mask.sum(dim=1).tolist() == sizes
            check_batch(task, batch, M, 16)


@pytest.mark.parametrize("name", list(PAPER_TASKS))
def test_mask_size(name: str) -> None:
    M = 40
    n = 5
    expected = {"access": 1, "listk": 1, "listsearch": 1, "walkbst": 1}.get(name, n)
    batch = get_task(name).generate(n, M, 8, torch.Generator().manual_seed(3))
    assert batch.mask.sum(dim=1).tolist() == [expected] * 8


@pytest.mark.parametrize("name", list(PAPER_TASKS))
def test_determinism_and_seeds(name: str) -> None:
    task = get_task(name)
    M = 30
    complexities = torch.tensor([1, 2, 3, 4, 5, 6, 5, 4])

    def make(seed: int) -> TaskBatch:
        return task.generate(complexities, M, 8, torch.Generator().manual_seed(seed))

    first, again, other = make(7), make(7), make(8)
    for field in ("memory", "target", "mask", "complexity"):
        assert torch.equal(getattr(first, field), getattr(again, field))
    assert not torch.equal(first.memory, other.memory)


@pytest.mark.parametrize("name", list(PAPER_TASKS))
def test_fits_exactly_when_min_memory_allows(name: str) -> None:
    task = get_task(name)
    generator = torch.Generator().manual_seed(5)
    for M in memory_sizes(name):
        top = task.max_complexity(M)
        assert task.min_memory(top) <= M < task.min_memory(top + 1)
        for n in range(1, top + 3):
            if task.min_memory(n) <= M:
                task.generate(n, M, 2, generator)
            else:
                with pytest.raises(ValueError, match="needs M >="):
                    task.generate(n, M, 2, generator)
        with pytest.raises(ValueError):
            task.generate(torch.tensor([1, top + 1]), M, 2, generator)
    with pytest.raises(ValueError, match=">= 1"):
        task.generate(0, 40, 2, generator)
    with pytest.raises(ValueError, match="shape"):
        task.generate(torch.tensor([1, 2, 3]), 40, 2, generator)
    assert task.max_complexity(task.min_memory(1) - 1) == 0


def test_layout_variety() -> None:
    """Edge cases the documented layouts promise do occur: empty merge halves, paths of length 0 and
    deeper, and the first ListSearch hit not always at the head."""
    generator = torch.Generator().manual_seed(11)
    merge = get_task("merge").generate(4, 20, 200, generator).memory
    first_lengths = {int(row[1]) - 4 for row in merge}
    assert first_lengths == {0, 1, 2, 3, 4}
    walk = get_task("walkbst").generate(6, 30, 200, generator).memory
    path_lengths = {int((row[2:] != 0).int().argmin()) for row in walk}
    assert 0 in path_lengths and max(path_lengths) >= 3
    search = get_task("listsearch").generate(5, 20, 100, generator)
    assert (search.target[:, 2] != search.memory[:, 0]).any()


def test_unknown_task_lists_names() -> None:
    with pytest.raises(ValueError, match="unknown task 'nope'.*access.*walkbst"):
        get_task("nope")


class Double(Task):
    name = "test-double"
    description = "x, NULL; write 2x mod M into cell 1"
    train_complexity = 1

    def min_memory(self, complexity: int) -> int:
        return 2

    def max_complexity(self, M: int) -> int:
        return 1 if M >= 2 else 0

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        x = int(torch.randint(1, M, (1,), generator=generator))
        return Instance([x] + [0] * (M - 1), [1])

    def solve(self, memory: list[int], M: int) -> list[int]:
        return [memory[0], 2 * memory[0] % M, *memory[2:]]


def test_user_task_registration() -> None:
    register_task(Double())
    try:
        assert "test-double" in available_tasks()
        batch = get_task("test-double").generate(1, 8, 4, torch.Generator().manual_seed(0))
        assert torch.equal(batch.target[:, 1], 2 * batch.memory[:, 0] % 8)
        assert batch.mask.sum().item() == 4
        with pytest.raises(ValueError, match="already registered"):
            register_task(Double())
        register_task(Double(), replace=True)
        with pytest.raises(TypeError):
            register_task("double")  # type: ignore[arg-type]
    finally:
        unregister_task("test-double")
    assert "test-double" not in available_tasks()


def test_wrong_memory_size_is_reported() -> None:
    class Short(Double):
        name = "test-short"

        def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
            return Instance([1], [0])

    with pytest.raises(ValueError, match="memory of 1 cells, expected M = 8"):
        Short().generate(1, 8, 2, torch.Generator().manual_seed(0))


def test_docstring_examples() -> None:
    import doctest

    import nramdsl.tasks

    result = doctest.testmod(nramdsl.tasks)
    assert result.attempted > 0 and result.failed == 0


def _path_end(row: list[int]) -> int:
    """The node a WalkBST layout's path leads to."""
    node, cell = row[0], 2
    while row[cell] != 0:
        node = row[node + row[cell]]
        cell += 1
    return node


def _ends_at_leaf(row: list[int]) -> bool:
    end = _path_end(row)
    return row[end + 1] == 0 and row[end + 2] == 0


def _hops(row: list[int]) -> int:
    """k, the path's length: the directions run from cell 2 to the first NULL."""
    return int((torch.tensor(row[2:]) != 0).int().argmin())


def test_walkbst_leaf_sampler_ends_every_path_at_a_leaf_and_keeps_the_layout() -> None:
    walk = get_task("walkbst")
    leaf = walk.with_sampler("leaf")
    assert leaf.name == "walkbst" and walk.samplers == ("leaf", "mixed")
    n, M = 8, 40
    batch = leaf.generate(n, M, 300, torch.Generator().manual_seed(5))
    check_batch(leaf, batch, M, 300)  # the same layout, oracle and mask as the task's own instances
    rows = batch.memory.tolist()
    assert all(map(_ends_at_leaf, rows))
    own = walk.generate(n, M, 300, torch.Generator().manual_seed(5)).memory.tolist()
    inner = sum(1 for row in own if not _ends_at_leaf(row))
    assert inner > 50  # the task's own paths end at inner nodes too, so the check above can fail
    assert sum(map(_hops, rows)) > sum(map(_hops, own))


def test_walkbst_mixed_sampler_ends_paths_at_leaves_and_at_inner_nodes_and_keeps_the_root() -> None:
    """Half the paths by a coin end at a leaf: deeper than the task's own on average, yet the root's key
    (k = 0), which leaf paths never ask of a tree of 8, is still asked."""
    walk = get_task("walkbst")
    mixed, leaf = walk.with_sampler("mixed"), walk.with_sampler("leaf")
    n, M, count = 8, 40, 600
    rows = {name: task.generate(n, M, count, torch.Generator().manual_seed(7)) for name, task in
            (("mixed", mixed), ("leaf", leaf), ("own", walk))}
    check_batch(mixed, rows["mixed"], M, count)
    memory = {name: batch.memory.tolist() for name, batch in rows.items()}
    leaves = sum(map(_ends_at_leaf, memory["mixed"]))
    assert count * 0.5 < leaves < count  # all the leaf-coin paths, and some of the node-coin ones
    assert all(map(_ends_at_leaf, memory["leaf"]))
    roots = {name: sum(1 for row in task_rows if _hops(row) == 0) for name, task_rows in memory.items()}
    assert roots["leaf"] == 0 and roots["mixed"] > 10
    depth = {name: sum(map(_hops, task_rows)) for name, task_rows in memory.items()}
    assert depth["own"] < depth["mixed"] < depth["leaf"]


def test_a_sampler_a_task_does_not_offer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="task 'walkbst' has no sampler 'deep' \\(samplers: leaf, mixed\\)"):
        get_task("walkbst").with_sampler("deep")
    with pytest.raises(ValueError, match="task 'copy' has no sampler 'leaf' \\(it draws only its own instances\\)"):
        get_task("copy").with_sampler("leaf")
