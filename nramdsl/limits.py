"""Every limit on a size that drives memory or time, in one place (docs/limits.md explains each).

A limit is checked *before* the work it bounds, and passing it is an `NramError` that names the limit, the
value asked for and, where raising it makes sense, the environment variable that raises it:

    spec.nram:8:10: error: memory 1000000 is over the limit of 4096 (raise it with NRAMDSL_MAX_MEMORY=N)

Limits of resources (memory, time) can be raised; limits of correctness (64-bit integers, recursion
depth) cannot. The values are read from the environment on every use, so a test or a long-lived process
sees a change at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nramdsl.errors import InvalidValue, Span


@dataclass(frozen=True)
class Limit:
    what: str  # how a message names the limited quantity: "memory", "circuit length"
    default: int
    env: str | None = None  # the variable that raises it; None: a fixed, correctness limit

    @property
    def value(self) -> int:
        if self.env is None:
            return self.default
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidValue(f"{self.env}={raw!r} is not a whole number") from None
        if value < 1:
            raise InvalidValue(f"{self.env}={raw!r} must be at least 1")
        return value

    def how_to_raise(self) -> str:
        return f" (raise it with {self.env}=N)" if self.env else ""

    def error(self, got: int | str, span: Span | None = None, source: str | None = None,
              prefix: str = "") -> InvalidValue:
        """`memory 10,000 is over the limit of 4,096 (raise it with …)`, located at `span`."""
        shown = f"{got:,}" if isinstance(got, int) else got
        return InvalidValue(f"{prefix}{self.what} {shown} is over the limit of {self.value:,}{self.how_to_raise()}",
                            span, source)

    def check(self, got: int, span: Span | None = None, source: str | None = None, prefix: str = "") -> None:
        if got > self.value:
            raise self.error(got, span, source, prefix)


def _mib(n: int) -> int:
    return n << 20


# ---- spec files and their syntax (nramdsl.lang.load, nramdsl.lang.parse)
SOURCE_BYTES = Limit("spec file size (bytes)", 256 << 10, "NRAMDSL_MAX_SOURCE_BYTES")  # the examples: ~1 KiB
FILES = Limit("number of files a spec imports", 256, "NRAMDSL_MAX_FILES")
# The checker, the evaluator and the frozen syntax tree's hashing recurse on expressions.
EXPR_DEPTH = Limit("expression nesting depth", 100)
EXPR_NODES = Limit("expression size (operations)", 2000, "NRAMDSL_MAX_EXPR_NODES")
# Integer literals and every intermediate value of a gate's table are 64-bit (numpy wraps on overflow
# silently, so a table whose values could pass 2^63 is refused rather than computed wrong).
INT_BITS = 63

# ---- machines (nramdsl.lang.check)
MEMORY = Limit("memory", 4096, "NRAMDSL_MAX_MEMORY")  # M: the fuzzy memory is B x M x M per step
REGISTERS = Limit("registers", 64, "NRAMDSL_MAX_REGISTERS")
TIMESTEPS = Limit("timesteps", 10_000, "NRAMDSL_MAX_TIMESTEPS")
CIRCUIT = Limit("circuit length (gates, repeats expanded)", 512, "NRAMDSL_MAX_CIRCUIT")
HIDDEN = Limit("controller hidden size", 4096, "NRAMDSL_MAX_HIDDEN")

# ---- gate tables and the checks on them (nramdsl.lang.tabulate, nramdsl.kernels.properties)
TABLE_ENTRIES = Limit("table size (M^arity entries)", 1 << 22, "NRAMDSL_MAX_TABLE_ENTRIES")
TABLE_WORK = Limit("tabulation work (entries x operations)", 1 << 28, "NRAMDSL_MAX_TABLE_WORK")
# `nramdsl check`'s one-hot agreement runs every input combination through the kernel, M^arity rows of
# up to M^arity work each; above this it checks a fixed sample of rows instead, and says so.
EXHAUSTIVE_WORK = Limit("exhaustive check work (M^(2 x arity))", 1 << 26, "NRAMDSL_MAX_EXHAUSTIVE_WORK")
SAMPLED_ROWS = 2048  # one-hot combinations checked when the exhaustive check is over its limit

# ---- training and evaluation (nramdsl.training, nramdsl.cli)
BATCH = Limit("batch size", 4096, "NRAMDSL_MAX_BATCH")
COMPLEXITY = Limit("complexity", 10_000, "NRAMDSL_MAX_COMPLEXITY")
EXAMPLES = Limit("number of test cases", 100_000, "NRAMDSL_MAX_EXAMPLES")
# One evaluation batch of the fuzzy machine holds B x M x M memory values and B x T x M read-outs.
FUZZY_CELLS = Limit("fuzzy machine size (batch x M x max(M, T) values)", 1 << 27, "NRAMDSL_MAX_FUZZY_CELLS")
# Training keeps every step's B x M x M memory for backpropagation (T of them, slack x T once stretched).
TRAIN_CELLS = Limit("training size (batch x T x M x M values kept for backpropagation)", 1 << 27,
                    "NRAMDSL_MAX_TRAIN_CELLS")

# ---- files a run directory holds (nramdsl.training.rundir), read before they are trusted
CHECKPOINT_BYTES = Limit("checkpoint size (bytes)", 1 << 30, "NRAMDSL_MAX_CHECKPOINT_BYTES")
JSON_BYTES = Limit("JSON file size (bytes)", _mib(64), "NRAMDSL_MAX_JSON_BYTES")
METRICS_BYTES = Limit("metrics file size (bytes)", _mib(512), "NRAMDSL_MAX_METRICS_BYTES")

ALL: dict[str, Limit] = {name: value for name, value in globals().items() if isinstance(value, Limit)}
