"""Every error nramdsl reports about a user's input, and how it is printed.

All of them derive from `NramError`. The CLI prints them as a compiler does:

    spec.nram:7:18: error: gate 'add' leaves [0, M): add(9, 9) = 18 at M = 16
        gate add(a, b) = a + b
                         ^

and exits 1. Nothing else escapes to the user as a traceback for bad input.
"""

from __future__ import annotations

import unicodedata
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


def _hidden(c: str) -> bool:
    """Characters a terminal would act on or not show: controls, format characters (bidirectional
    overrides, zero-width ones), line and paragraph separators."""
    return c != "\t" and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def _width(c: str) -> int:
    """Columns a character takes on a terminal (wide East Asian characters take two)."""
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def shown_line(line: str) -> str:
    """A source line as it is quoted under an error: hidden characters become '?', one column each, so the
    caret stays under its character and nothing in a spec can drive the terminal."""
    return "".join("?" if _hidden(c) else c for c in line)


def escape(text: str) -> str:
    """A message with hidden characters written as escapes (a path or a string from the spec may hold any)."""
    return "".join(c.encode("unicode_escape").decode("ascii") if _hidden(c) and c != "\n" else c for c in text)


_SHOWN = 160  # the longest source line quoted in full


def _small_text_file(path: str, limit: int = 1 << 24) -> str | None:
    """A located file's text for the quoted line, when it is still a readable, modest regular file."""
    try:
        p = Path(path)
        if not p.is_file() or p.stat().st_size > limit:
            return None
        return p.read_bytes().decode("utf-8").removeprefix("\ufeff")  # as parsed: no newline translation
    except (OSError, UnicodeDecodeError, ValueError):
        return None


class NramError(Exception):
    """An error in a user's input, optionally located in a source file."""

    severity = "error"  # the word after the position: "error", or "note" for `Note`

    def __init__(self, message: str, span: Span | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.source = source  # the text of span.file, when known, for the caret line

    def format(self) -> str:
        if self.span is None:
            return f"{self.severity}: {escape(self.message)}"
        head = f"{escape(str(self.span))}: {self.severity}: {escape(self.message)}"
        text = self.source if self.source is not None else _small_text_file(self.span.file)
        if text is None:
            return head
        # Lines as the parser counts them: split at "\n" only (not at the other breaks `splitlines` knows,
        # such as U+2028 or a form feed), so the quoted line is the line the position names.
        lines = text.split("\n")
        if not 1 <= self.span.line <= len(lines):
            return head
        line = lines[self.span.line - 1].removesuffix("\r")
        start = min(self.span.column - 1, len(line))
        end = self.span.end_column - 1 if self.span.end_line == self.span.line else start + 1
        if len(line) > _SHOWN:  # a window around the caret, not a megabyte of one line
            cut = max(0, start - _SHOWN // 3)
            head_mark, tail_mark = ("…" if cut else ""), ("…" if cut + _SHOWN < len(line) else "")
            line = head_mark + line[cut : cut + _SHOWN] + tail_mark
            start, end = start - cut + len(head_mark), min(end - cut + len(head_mark), len(line))
        covered = line[start : max(end, start + 1)] or " "  # past the end of the line: one caret
        pad = "".join("\t" if c == "\t" else " " * _width(c) for c in line[:start])
        caret = "^" + "~" * (sum(_width(c) for c in covered) - 1)
        return f"{head}\n    {shown_line(line)}\n    {pad}{caret}"

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


class Note(NramError):
    """Not an error: something a user should know about a check that passed (it was sampled, not exhaustive).
    Printed like an error, with "note:", and never raised."""

    severity = "note"


class ErrorList(NramError):
    """Several errors found in one pass, sorted by position."""

    def __init__(self, errors: list[NramError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.span is None, e.span or Span("", 0, 0, 0, 0)))
        super().__init__(f"{len(self.errors)} errors", None)

    def format(self) -> str:
        return "\n".join(e.format() for e in self.errors)
