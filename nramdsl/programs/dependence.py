"""What an LSTM controller's choice of circuit depends on, as far as test cases show it.

Each hypothesis is a key computed from one observed step — the zero-pattern the controller saw, the step
number, the previous circuit, or the previous circuit together with the zero-pattern. It holds when no two
observed steps with the same key chose different circuits. A finding that holds is described (the
table it amounts to, or the repeating sequence of circuits by step, as Swap's two alternating circuits);
one that fails names a key that chose two circuits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable

from nramdsl.lang.table import cube_of_mask, pattern_text
from nramdsl.machine.extract import START, Observed, letters


@dataclass(frozen=True)
class Finding:
    hypothesis: str  # "the zero-pattern", "the step", …
    holds: bool
    detail: str


def _pattern(mask: int, registers: int) -> str:
    return pattern_text(cube_of_mask(mask, registers))


def _prev(c: int) -> str:
    return "start" if c == START else letters(c)


def _table(cases: list[list[Observed]], key: Callable[[int, Observed], Hashable]) -> tuple[dict, Hashable | None]:
    """key -> circuits chosen under it; and the first key under which two were chosen (None: a function)."""
    table: dict[Hashable, list[int]] = {}
    clash = None
    for steps in cases:
        prev = START
        for o in steps:
            k = key(prev, o)
            chosen = table.setdefault(k, [])
            if o.circuit not in chosen:
                chosen.append(o.circuit)
                if len(chosen) > 1 and clash is None:
                    clash = k
            prev = o.circuit
    return table, clash


def _period(s: list[int]) -> int:
    """The smallest k with s[t] == s[t - k] for every t >= k (KMP's border: O(len(s)))."""
    border = [0] * len(s)
    for i in range(1, len(s)):
        b = border[i - 1]
        while b and s[i] != s[b]:
            b = border[b - 1]
        border[i] = b + (s[i] == s[b])
    return len(s) - border[-1] if s else 0


def describe_sequence(seq: list[int], max_prefix: int = 64) -> str:
    """The circuits by step as the shortest prefix + repeating cycle that fits, e.g. `A, then B C repeating
    (B on even steps, C on odd steps)`."""
    n = len(seq)
    p, k = min(((p, _period(seq[p:])) for p in range(min(n, max_prefix))), key=lambda pk: (pk[0] + pk[1], pk[0]))
    names = [letters(c) for c in seq]
    if k > 1 and p + k == n:  # the cycle is never seen to repeat
        return "by step: " + " ".join(names)
    cycle = " ".join(names[p : p + k])
    if k == 1:
        tail = f"{cycle} from step {p + 1} on" if p else f"{cycle} at every step"
    else:
        tail = f"{cycle} repeating"
        if k == 2:
            odd = (p + 1) % 2  # step t (1-based) = p + 1 + j: names[p] on steps of p + 1's parity
            tail += f" ({names[p]} on {'odd' if odd else 'even'} steps, {names[p + 1]} on {'even' if odd else 'odd'} steps)"
    return (f"{' '.join(names[:p])}, then " if p else "") + tail


def dependence(cases: list[list[Observed]], registers: int) -> list[Finding]:
    out: list[Finding] = []
    used = {o.circuit for steps in cases for o in steps}
    if len(used) == 1:
        return [Finding("nothing", True, f"one circuit, {letters(used.pop())}, at every step")]

    table, clash = _table(cases, lambda prev, o: o.mask)
    detail = ("; ".join(f"{_pattern(m, registers)} -> {letters(c[0])}" for m, c in sorted(table.items()))
              if clash is None else f"{_pattern(clash, registers)} chose {' and '.join(letters(c) for c in table[clash])}")
    out.append(Finding("the zero-pattern", clash is None, detail))

    table, clash = _table(cases, lambda prev, o: o.step)
    detail = (describe_sequence([table[t][0] for t in sorted(table)]) if clash is None
              else f"step {clash + 1} chose {' and '.join(letters(c) for c in table[clash])}")
    out.append(Finding("the step", clash is None, detail))

    table, clash = _table(cases, lambda prev, o: prev)
    detail = (", ".join(f"{_prev(p)} -> {letters(c[0])}" for p, c in sorted(table.items())) if clash is None
              else f"after {_prev(clash)} came {' and '.join(letters(c) for c in table[clash])}")
    out.append(Finding("the previous circuit", clash is None, detail))

    table, clash = _table(cases, lambda prev, o: (prev, o.mask))
    detail = (f"{len(table)} (previous circuit, zero-pattern) pairs seen, each with one circuit" if clash is None
              else f"after {_prev(clash[0])} with {_pattern(clash[1], registers)} came "
                   f"{' and '.join(letters(c) for c in table[clash])}: the LSTM's state holds more")
    out.append(Finding("the previous circuit and the zero-pattern", clash is None, detail))
    return out
