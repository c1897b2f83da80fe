"""Every error nramdsl reports about a user's input, and how it is printed.

All of them derive from `NramError`. The CLI prints them as a compiler does:

    spec.nram:7:18: error: gate 'add' leaves [0, M): add(9, 9) = 18 at M = 16
        gate add(a, b) = a + b
                         ^

and exits 1. Nothing else escapes to the user as a traceback for bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Span:
    """A source range; lines and columns are 1-based, the end is exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class NramError(Exception):
    """An error in a user's input, optionally located in a source file."""

    def __init__(self, message: str, span: Span | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.source = source  # the text of span.file, when known, for the caret line

    def format(self) -> str:
        if self.span is None:
            return f"error: {self.message}"
        head = f"{self.span}: error: {self.message}"
        text = self.source
        if text is None:
            try:
                text = Path(self.span.file).read_text(encoding="utf-8")
            except OSError:
                return head
        lines = text.splitlines()
        if not 1 <= self.span.line <= len(lines):
            return head
        line = lines[self.span.line - 1]
        width = 1
        if self.span.end_line == self.span.line:
            width = max(1, self.span.end_column - self.span.column)
        caret = " " * (self.span.column - 1) + "^" + "~" * (width - 1)
        return f"{head}\n    {line}\n    {caret}"

    def __str__(self) -> str:
        return self.format()


class SyntaxError_(NramError):
    """The text does not match the grammar."""


class SemanticError(NramError):
    """The text parses but means nothing (unknown name, wrong arity, bad size, ...)."""


class TotalityError(SemanticError):
    """A gate raises or leaves [0, M) for some input once M is bound."""


class LoadError(NramError):
    """A file cannot be read, or imports form a cycle."""


class UnknownName(SemanticError):
    """A name (gate, gate set, parameter, function, machine, setting value) that nothing defines."""


class DuplicateName(SemanticError):
    """A name defined twice where it must be unique, or a name two `use`d gate sets both define."""


class ReservedName(SemanticError):
    """A declaration that takes a keyword, a built-in gate's name or `M`."""


class ArityError(SemanticError):
    """A call with the wrong number of arguments."""


class InvalidValue(SemanticError):
    """A size out of range, a malformed `via`, an unknown controller kind, a repeated setting key, ..."""


class MissingSetting(SemanticError):
    """A machine lacks a required setting."""


class ErrorList(NramError):
    """Several errors found in one pass, sorted by position."""

    def __init__(self, errors: list[NramError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.span is None, e.span or Span("", 0, 0, 0, 0)))
        super().__init__(f"{len(self.errors)} errors", None)

    def format(self) -> str:
        return "\n".join(e.format() for e in self.errors)
