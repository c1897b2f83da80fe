"""The array tasks: Access, Increment, Copy, Reverse, Swap, Permutation and Merge (paper App. A).

Layouts, with n = the complexity = len(A) (Merge: len(A) + len(B)); cells not listed hold 0 (NULL);
array elements are drawn from [1, M) unless said otherwise:

Access       k, A[0..n-1], NULL.            k in [0, n) indexes A (A[k] is cell 1+k).
             Output: cell 0 <- A[k].  Mask: cell 0.  min M = n + 2.
Increment    A[0..n-1], NULL.               Elements in [1, M-1), so A[i]+1 < M and stays nonzero.
             Output: A[i]+1 in place (a solver given A[i] = M-1 wraps to 0, as the INC gate does).
             Mask: the n cells of A.  min M = max(n + 1, 3).
Copy         p, A[0..n-1], then n free cells.  p = n + 1 points one past A[n-1] (the paper's layout has
             no NULL: p itself says where A ends, n = p - 1).
             Output: A[0..n-1] at cells p..p+n-1.  Mask: those n cells.  min M = 2n + 1.
Reverse      as Copy.  Output: A[n-1], ..., A[0] at cells p..p+n-1.  Mask: those n cells.  min M = 2n + 1.
Swap         p, q, A[0..n-1], NULL.  p and q are absolute addresses of two elements of A (the paper:
             "pointers point to elements"), p < q when n >= 2 (the paper writes A[p] before A[q]);
             n = 1 gives p = q = 2, a swap with itself.
             Output: A with the elements at p and q exchanged.  Mask: all n cells of A, not only the two
             that change: a model that writes anything else into the array is wrong too, and the error
             must say so.  min M = n + 3.
Permutation  a, P[0..n-1], A[0..n-1].  a = n + 1 points to A[0] (so n = a - 1); P is a uniform random
             permutation of 0..n-1 (App. A's indexing; indices into A, so P holds a 0 and is not
             NULL-terminated).  Output: cell 1+i <- A[P[i]], overwriting P.  Mask: the n cells of P.
             min M = 2n + 1.
Merge        a, b, o, A[0..nA-1], G, B[0..nB-1], G, then n free cells.  G = M - 1 is the guardian;
             elements are drawn from [1, M-1) and sorted (non-decreasing; repeats allowed), so G is
             larger than all of them.  nA is uniform in [0, n] (one list may be empty; complexity 1
             needs that).  a = 3, b = 4 + nA, o = 5 + n (the cell after the second G).
             Output: the n merged sorted elements at o..o+n-1.  Mask: those n cells.  min M = 2n + 5.
"""

from __future__ import annotations

import torch

from nramdsl.tasks.base import Instance, Task, permutation, randint, randints


class Access(Task):
    name = "access"
    description = "k, A[0..n-1], NULL; write A[k] into cell 0"
    train_complexity = 20

    def min_memory(self, complexity: int) -> int:
        return complexity + 2

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        n = complexity
        k = randint(generator, 0, n)
        array = randints(generator, 1, M, n)
        memory = [k, *array] + [0] * (M - n - 1)
        return Instance(memory, [0])

    def solve(self, memory: list[int], M: int) -> list[int]:
        out = list(memory)
        out[0] = memory[1 + memory[0]]
        return out


class Increment(Task):
    name = "increment"
    description = "A[0..n-1], NULL; add 1 to every element in place"
    train_complexity = 15

    def min_memory(self, complexity: int) -> int:
        # M >= 3 so that the element range [1, M-1) is not empty.
        return max(complexity + 1, 3)

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        n = complexity
        memory = randints(generator, 1, M - 1, n) + [0] * (M - n)
        return Instance(memory, list(range(n)))

    def solve(self, memory: list[int], M: int) -> list[int]:
        out = list(memory)
        i = 0
        while i < M and memory[i] != 0:
            out[i] = (memory[i] + 1) % M
            i += 1
        return out


class Copy(Task):
    name = "copy"
    description = "p, A[0..n-1] with p = n+1 one past A; write A[0..n-1] at p..p+n-1"
    train_complexity = 15

    def min_memory(self, complexity: int) -> int:
        return 2 * complexity + 1

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        n = complexity
        p = n + 1
        memory = [p, *randints(generator, 1, M, n)] + [0] * (M - n - 1)
        return Instance(memory, list(range(p, p + n)))

    def solve(self, memory: list[int], M: int) -> list[int]:
        out = list(memory)
        p = memory[0]
        out[p : 2 * p - 1] = memory[1:p]
        return out


class Reverse(Task):
    name = "reverse"
    description = "p, A[0..n-1] with p = n+1 one past A; write A[n-1], ..., A[0] at p..p+n-1"
    train_complexity = 15

    def min_memory(self, complexity: int) -> int:
        return 2 * complexity + 1

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        n = complexity
        p = n + 1
        memory = [p, *randints(generator, 1, M, n)] + [0] * (M - n - 1)
        return Instance(memory, list(range(p, p + n)))

    def solve(self, memory: list[int], M: int) -> list[int]:
        out = list(memory)
        p = memory[0]
        out[p : 2 * p - 1] = memory[p - 1 : 0 : -1]
        return out


class Swap(Task):
    name = "swap"
    description = "p, q, A[0..n-1], NULL with p < q addresses of elements; exchange them"
    train_complexity = 20

    def min_memory(self, complexity: int) -> int:
        return complexity + 3

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        n = complexity
        if n == 1:
            p = q = 2
        else:
            p, q = sorted(2 + i for i in permutation(generator, n)[:2])
        memory = [p, q, *randints(generator, 1, M, n)] + [0] * (M - n - 2)
        return Instance(memory, list(range(2, 2 + n)))

    def solve(self, memory: list[int], M: int) -> list[int]:
        out = list(memory)
        p, q = memory[0], memory[1]
        out[p], out[q] = memory[q], memory[p]
        return out


class Permutation(Task):
    name = "permutation"
    description = "a, P[0..n-1], A[0..n-1] with a = n+1 pointing to A; write A[P[i]] over P[i]"
    train_complexity = 6

    def min_memory(self, complexity: int) -> int:
        return 2 * complexity + 1

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        n = complexity
        a = n + 1
        perm = permutation(generator, n)
        memory = [a, *perm, *randints(generator, 1, M, n)] + [0] * (M - 2 * n - 1)
        return Instance(memory, list(range(1, a)))

    def solve(self, memory: list[int], M: int) -> list[int]:
        out = list(memory)
        a = memory[0]
        for i in range(1, a):
            out[i] = memory[a + memory[i]]
        return out


class Merge(Task):
    name = "merge"
    description = "a, b, o, A sorted, G, B sorted, G (G = M-1); write A and B merged, sorted, from cell o on"
    train_complexity = 10

    def min_memory(self, complexity: int) -> int:
        return 2 * complexity + 5

    def _instance(self, complexity: int, M: int, generator: torch.Generator) -> Instance:
        n = complexity
        guard = M - 1
        n_a = randint(generator, 0, n + 1)
        first = sorted(randints(generator, 1, M - 1, n_a))
        second = sorted(randints(generator, 1, M - 1, n - n_a))
        a, b, o = 3, 4 + n_a, 5 + n
        memory = [a, b, o, *first, guard, *second, guard] + [0] * (M - o)
        return Instance(memory, list(range(o, o + n)))

    def solve(self, memory: list[int], M: int) -> list[int]:
        out = list(memory)
        guard = M - 1
        a, b, o = memory[0], memory[1], memory[2]
        first = memory[a : memory.index(guard, a)]
        second = memory[b : memory.index(guard, b)]
        merged = sorted(first + second)
        out[o : o + len(merged)] = merged
        return out
