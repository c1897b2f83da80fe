"""Files -> `Program`: parse a file and, depth first, every file it imports.

`import "x.nram"` is resolved relative to the importing file's folder. Each file is parsed once however
often it is imported (keyed by its resolved path); an import cycle is an error at the `import` that
closes it. Files are listed dependencies first, so gate sets appear before the machines that use them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from nramdsl.errors import LoadError
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
        module = parse(text, path)
        self.active.append(key)
        base = os.path.dirname(path) if not path.startswith("<") else ""
        for item in module.items:
            if isinstance(item, ast.Import):
                self._import(item, base, text)
        self.active.pop()
        self.done[key] = SourceFile(path, text, module)

    def _import(self, imp: ast.Import, base: str, importer_text: str) -> None:
        path = os.path.normpath(os.path.join(base, imp.path))
        key = os.path.realpath(path)
        if key in self.active:
            chain = self.active[self.active.index(key) :] + [key]
            shown = " -> ".join(os.path.basename(k) for k in chain)
            raise LoadError(f"import cycle: {shown}", imp.span, importer_text)
        if key in self.done:
            return
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LoadError(f"cannot import '{imp.path}': {_reason(exc)}", imp.span, importer_text) from None
        self.load(path, text, key)


def _reason(exc: Exception) -> str:
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
    try:
        text = Path(shown).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"cannot read '{shown}': {_reason(exc)}") from None
    loader = _Loader()
    loader.load(shown, text, os.path.realpath(shown))
    return _program(loader)

