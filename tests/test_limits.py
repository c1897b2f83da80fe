"""Every limit of `nramdsl.limits` holds before the work, with a located error that names it, and the minimal
cases fuzzing found stay fixed (tests/fuzz_regressions/).

Each regression file says in header comments what `check` and `compile --emit summary` must do with it:
`# check: ok`, `# check: LINE:COL message-start`, `# check: error: message-start` (an error about a
command-line argument, which has no position), `# note: LINE:COL message-start` (a note `check` prints), and
`# args: …` for the arguments both commands get.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import signal
from pathlib import Path
from typing import Iterator

import pytest

from nramdsl import cli, limits
from nramdsl.cli import main
from nramdsl.errors import NramError
from nramdsl.kernels.properties import run_gate_checks
from nramdsl.lang.frontend import load_text, machine_from_text

REGRESSIONS = Path(__file__).parent / "fuzz_regressions"
HEADER = re.compile(r"^# (args|check|compile|note): (.*)$")
LOCATED = re.compile(r"^(\d+):(\d+) (.*)$")


@pytest.fixture(autouse=True)
def hang_detector() -> Iterator[None]:
    """A case that regresses into a hang fails here instead of stalling the suite (not a timing assertion:
    every case takes well under a second)."""
    def hung(signum, frame):  # type: ignore[no-untyped-def]
        raise AssertionError("hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def few_gate_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    """check's properties with few random draws: the exhaustive and sampled parts are what these cases test."""
    monkeypatch.setattr(cli, "_gate_checks", lambda: functools.partial(run_gate_checks, max_examples=3))


def _headers(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_bytes().decode("utf-8", "replace").split("\n"):
        m = HEADER.match(line)
        if m:
            found.setdefault(m[1], []).append(m[2])
    return found


def _expect(shown: list[str], path: Path, expectation: str, severity: str = "error") -> None:
    if expectation.startswith("error: "):  # about an argument: no position
        assert any(line.startswith(expectation) for line in shown), "\n".join(shown)
        return
    m = LOCATED.match(expectation)
    assert m, expectation
    head = f"{path}:{m[1]}:{m[2]}: {severity}: {m[3]}"
    assert any(line.startswith(head) for line in shown), head + "\n---\n" + "\n".join(shown)


@pytest.mark.usefixtures("few_gate_examples")
@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.nram")), ids=lambda p: p.stem)
def test_fuzz_regression(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    headers = _headers(path)
    args = shlex.split(headers.get("args", [""])[0])
    assert headers.get("check") and headers.get("compile"), f"{path.name} says nothing of check or compile"
    for command, argv in (("check", ["check", str(path), *args]),
                          ("compile", ["compile", str(path), "--emit", "summary", *args])):
        expectation = headers[command][0]
        rc = main(argv)
        err = capsys.readouterr().err
        shown = err.split("\n")
        assert "Traceback" not in err
        if expectation == "ok":
            assert rc == 0, err
        else:
            assert rc == 1, err
            _expect(shown, path, expectation)
            for line in shown:  # every error is located, or is about an argument
                if ": error: " not in line and line.startswith("error: "):
                    assert line.startswith("error: override"), line
        if command == "check":
            for note in headers.get("note", []):
                _expect(shown, path, note, "note")


def test_an_import_of_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NramError, match="cannot import 'pipe': not a regular file"):
        load_text('import "pipe"\n', str(tmp_path / "spec.nram"))


def test_a_spec_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "big.nram"
    spec.write_text("# padding\n" * 200)
    monkeypatch.setenv("NRAMDSL_MAX_SOURCE_BYTES", "1000")
    with pytest.raises(NramError, match=r"spec file size \(bytes\) 2,000 is over the limit of 1,000 \(raise it "
                                        r"with NRAMDSL_MAX_SOURCE_BYTES=N\)"):
        cli.load_file(spec)
    monkeypatch.setenv("NRAMDSL_MAX_SOURCE_BYTES", "3000")  # raising it is all it takes
    assert cli.load_file(spec).files


def test_limits_that_raise_say_how_and_the_environment_raises_them(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "gates g { const z = 0 }\nmachine m { use g registers 1 memory 5000 timesteps 1 circuit read, z }\n"
    with pytest.raises(NramError) as info:
        machine_from_text(text, "s.nram")
    assert info.value.format().startswith("s.nram:2:38: error: memory 5,000 is over the limit of 4,096 (raise it "
                                          "with NRAMDSL_MAX_MEMORY=N)")
    monkeypatch.setenv("NRAMDSL_MAX_MEMORY", "8192")
    assert machine_from_text(text, "s.nram").memory == 5000
    monkeypatch.setenv("NRAMDSL_MAX_MEMORY", "lots")
    with pytest.raises(NramError, match="NRAMDSL_MAX_MEMORY='lots' is not a whole number"):
        machine_from_text(text, "s.nram")


def test_every_resource_limit_can_be_raised_and_every_fixed_one_says_why() -> None:
    assert limits.ALL, "nramdsl.limits defines no limits"
    fixed = {name for name, limit in limits.ALL.items() if limit.env is None}
    assert fixed == {"EXPR_DEPTH"}  # the evaluator recurses on expressions: not a resource to buy more of
    assert all(limit.env == f"NRAMDSL_MAX_{name}" for name, limit in limits.ALL.items() if limit.env)


def test_deep_and_large_expressions_are_refused_at_the_gate() -> None:
    deep = "gates g { gate f(a) = " + "-" * 101 + "a }"
    with pytest.raises(NramError, match="gate 'f': expression nesting depth 102 is over the limit of 100"):
        load_text(deep, "d.nram")
    balanced = "a"
    for _ in range(12):  # a balanced tree: depth 13, 2^13 - 1 operations
        balanced = f"({balanced} + {balanced})"
    with pytest.raises(NramError, match=r"gate 'f': expression size \(operations\) 8,191 is over the limit of 2,000"):
        load_text(f"gates g {{ gate f(a) = {balanced} }}", "b.nram")


def test_tabulation_work_is_bounded_by_operations_times_entries() -> None:
    body = "a"
    for _ in range(9):  # 1,023 operations, depth 10
        body = f"({body} + {body})"
    text = (f"gates g {{ gate f(a, b) = ({body} + b) mod M }}\n"
            "machine m { use g registers 1 memory 1024 timesteps 1 circuit read, f, write }\n")
    spec = machine_from_text(text, "w.nram")  # resolving skips tables over the limits …
    from nramdsl.lang.tabulate import tabulate

    with pytest.raises(NramError, match=r"gate 'f' at M = 1024: tabulation work \(entries x operations\) "
                                        r"1,076,887,552 is over the limit"):
        tabulate(spec.gates["f"], 1024)  # … and tabulating one says which limit, before computing anything


def test_docs_list_every_limit_with_its_value_and_how_to_raise_it() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "limits.md").read_text()
    for name, limit in limits.ALL.items():
        assert limit.env is None or f"`{limit.env}`" in text, name
        value = limit.default
        shown = {f"{value:,}", f"{value >> 10} KiB", f"{value >> 20} MiB", f"{value >> 30} GiB", f"2^{value.bit_length() - 1}"}
        assert any(s in text for s in shown), f"{name}: none of {shown} in docs/limits.md"
