"""Pieces shared by the subcommand modules: the `Subcommand` record and the `--set KEY=INT` option."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from nramdsl.semantics import OVERRIDE_KEYS


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def parse_override(text: str) -> tuple[str, int]:
    """`--set M=32` -> ("M", 32); argparse turns the ValueError into a usage error (exit 2)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or key not in OVERRIDE_KEYS:
        raise argparse.ArgumentTypeError(f"expected KEY=INT with KEY one of {', '.join(OVERRIDE_KEYS)}, got {text!r}")
    try:
        return key, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key} must be an integer, got {value!r}") from None


def add_set_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=INT",
        type=parse_override,
        action="append",
        default=[],
        help="override a size: M (memory), R (registers) or T (timesteps); repeatable",
    )
