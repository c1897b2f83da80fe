"""Files -> `Program`: parse a file and, depth first, every file it imports.

`import "x.nram"` is resolved relative to the importing file's folder. Each file is parsed once however
often it is imported (keyed by its resolved path); an import cycle is an error at the `import` that
closes it. Files are listed dependencies first, so gate sets appear before the machines that use them.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from nramdsl import limits
from nramdsl.errors import LoadError, Span
from nramdsl.lang import syntax as ast
from nramdsl.lang.parse import parse


@dataclass(frozen=True)
class SourceFile:
    path: str  # as shown in messages: the path given, or joined from the importing file's folder
    text: str
    module: ast.Module

    @property
    def folder(self) -> str:
        """The folder imports and `via` kernels are resolved against."""
        return os.path.dirname(os.path.abspath(self.path)) if not self.path.startswith("<") else os.getcwd()


@dataclass(frozen=True)
class Program:
    """Every file reachable from the top file, dependencies first (`files[-1]` is the top file)."""

    files: tuple[SourceFile, ...]
    sources: Mapping[str, str] = field(default_factory=dict)  # path -> text, for error carets

    @property
    def top(self) -> SourceFile:
        return self.files[-1]

    def gatesets(self) -> Iterator[tuple[ast.GateSet, SourceFile]]:
        for f in self.files:
            for item in f.module.items:
                if isinstance(item, ast.GateSet):
                    yield item, f

    def machines(self) -> Iterator[tuple[ast.Machine, SourceFile]]:
        for f in self.files:
            for item in f.module.items:
                if isinstance(item, ast.Machine):
                    yield item, f


class _Loader:
    def __init__(self) -> None:
        self.done: dict[str, SourceFile] = {}  # resolved path -> file, in completion order
        self.active: list[str] = []  # resolved paths being loaded (the import chain), for cycles

    def load(self, path: str, text: str, key: str) -> None:
        if len(text) > limits.SOURCE_BYTES.value:  # text handed in (a run's config.json holds one)
            raise limits.SOURCE_BYTES.error(len(text), None, None, f"'{path}': ")
        module = parse(text, path)
        self.active.append(key)
        base = os.path.dirname(path) if not path.startswith("<") else ""
        for item in module.items:
            if isinstance(item, ast.Import):
                self._import(item, base, text)
        self.active.pop()
        self.done[key] = SourceFile(path, text, module)

    def _import(self, imp: ast.Import, base: str, importer_text: str) -> None:
        if "\0" in imp.path:
            raise LoadError("cannot import a path that holds a NUL character", imp.span, importer_text)
        path = os.path.normpath(os.path.join(base, imp.path))
        key = os.path.realpath(path)
        if key in self.active:
            chain = self.active[self.active.index(key) :] + [key]
            shown = " -> ".join(os.path.basename(k) for k in chain)
            raise LoadError(f"import cycle: {shown}", imp.span, importer_text)
        if key in self.done:
            return
        if len(self.done) + len(self.active) >= limits.FILES.value:
            raise limits.FILES.error(len(self.done) + len(self.active) + 1, imp.span, importer_text)
        self.load(path, read_source(path, f"cannot import '{imp.path}'", imp.span, importer_text), key)


def read_source(path: str, what: str, span: Span | None = None, importer_text: str | None = None) -> str:
    """A spec file's text, read only when it is a regular file under the size limit (a FIFO, a device or
    /dev/stdin would hang or never end), as UTF-8. Undecodable bytes are an error at their position.
    `what` begins every message ("cannot read 'x.nram'"); `span` locates it at the import that named it."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before we can see that it is one
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as exc:
        raise LoadError(f"{what}: {_reason(exc)}", span, importer_text) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, FIFO or socket)"
            raise LoadError(f"{what}: {kind}", span, importer_text)
        limit = limits.SOURCE_BYTES
        if info.st_size > limit.value:
            raise limit.error(info.st_size, span, importer_text, f"{what}: ")
        data = _read_at_most(fd, limit.value + 1)
    finally:
        os.close(fd)
    if len(data) > limits.SOURCE_BYTES.value:  # it grew while we looked
        raise limits.SOURCE_BYTES.error(f"over {len(data) - 1:,}", span, importer_text, f"{what}: ")
    return decode_source(data, path)


def _read_at_most(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def decode_source(data: bytes, path: str) -> str:
    """UTF-8 text (a leading byte-order mark dropped); an undecodable byte is an error at its line and column."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8", "replace").removeprefix("\ufeff")) + 1
        shown = data.decode("utf-8", "replace").removeprefix("\ufeff")
        raise LoadError(f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
                        Span(path, line, column, line, column + 1), shown) from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValueError):  # os.open on a path with a NUL byte
        return "the path holds a NUL character"
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _program(loader: _Loader) -> Program:
    files = tuple(loader.done.values())
    return Program(files, {f.path: f.text for f in files})


def load_text(text: str, filename: str = "<string>") -> Program:
    """Parse `text` as if read from `filename`; imports resolve relative to its folder (cwd for <string>)."""
    loader = _Loader()
    loader.load(filename, text, filename if filename.startswith("<") else os.path.realpath(filename))
    return _program(loader)


def load_file(path: str | os.PathLike[str]) -> Program:
    """Parse a file and its imports. Raises `LoadError` or `SyntaxError_` (both `NramError`)."""
    shown = os.fspath(path)
    text = read_source(shown, f"cannot read '{shown}'")
    loader = _Loader()
    loader.load(shown, text, os.path.realpath(shown))
    return _program(loader)

