"""The command line, in-process through main([...]) and as `python -m nramdsl`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nramdsl import cli
from nramdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "examples" / "paper.nram"
BAD = ROOT / "tests" / "bad_specs"


@pytest.fixture(autouse=True)
def no_gate_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """`nramdsl.kernels.properties` (tested on its own) lifts every gate with torch: seconds per spec."""
    monkeypatch.setattr(cli, "_gate_checks", lambda: None)


def test_check_runs_the_gate_checks_hook(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[list[str], int]] = []

    def fake(gates, M):  # type: ignore[no-untyped-def]
        seen.append(([g.name for g in gates], M))
        return []

    monkeypatch.setattr(cli, "_gate_checks", lambda: fake)
    assert main(["check", str(PAPER), "--set", "M=20"]) == 0
    assert seen == [(["zero", "one", "two", "inc", "add", "sub", "dec", "lt", "le", "eq", "min", "max"], 20)]


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(PAPER)]) == 0
    assert capsys.readouterr().out == f"{PAPER}: ok (1 gate sets, 1 machines, 12 gates)\n"


def test_check_with_override_reports_totality(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.nram"
    spec.write_text("gates g { gate lim(a) = max(a, 9) }\nmachine m { use g registers 1 memory 10 timesteps 1 circuit read, lim }\n")
    assert main(["check", str(spec)]) == 0
    assert main(["check", str(spec), "--set", "M=8"]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:1:25: error: gate 'lim' is not total at M = 8" in err


def test_check_reports_every_error_with_carets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(BAD / "bad_sizes.nram")]) == 1
    err = capsys.readouterr().err
    assert err.count(": error: ") == 5 and err.count("^") == 5


@pytest.mark.parametrize("emit", ["summary", "dot", "json"])
def test_compile_emits(emit: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(ROOT / "examples" / "merge.nram"), "--emit", emit, "--set", "M=40", "--set", "T=30"]) == 0
    out = capsys.readouterr().out
    if emit == "json":
        doc = json.loads(out)
        assert doc["machine"]["memory"] == 40 and doc["machine"]["timesteps"] == 30 and len(doc["machine"]["circuit"]) == 28
    elif emit == "dot":
        assert out.startswith('digraph "merge"')
    else:
        assert "memory             40" in out and "timesteps          30" in out and "27  write" in out


def test_compile_default_is_summary_and_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(PAPER), "--machine", "copy"]) == 0
    summary = capsys.readouterr().out
    assert "308 logits" in summary
    out = tmp_path / "c.dot"
    assert main(["compile", str(PAPER), "--emit", "dot", "-o", str(out)]) == 0
    assert capsys.readouterr().out == "" and out.read_text().startswith("digraph")


def test_compile_unknown_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(PAPER), "--machine", "nope"]) == 1
    assert "error: no machine named 'nope'" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["compile", str(PAPER), "--emit", "svg"], ["compile", str(PAPER), "--set", "X=1"], ["check"], [],
                 ["compile", str(PAPER), "--emit", "program"], ["eval", "somewhere", "--big", "100"],
                 ["--threads", "0", "check", str(PAPER)]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--emit program writes a binary file: give -o FILE" in err and "--big runs the discretized model" in err


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nramdsl", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_module_entry_point_exit_codes(tmp_path: Path) -> None:
    small = tmp_path / "small.nram"
    small.write_text("gates g { const zero = 0 }\nmachine m { use g registers 1 memory 4 timesteps 1 circuit read, zero, write }\n")
    ok = run("check", str(small), cwd=tmp_path)
    assert ok.returncode == 0 and "ok (" in ok.stdout
    syntax = run("check", str(BAD / "syntax_missing_equals.nram"))
    assert syntax.returncode == 1
    lines = syntax.stderr.splitlines()
    assert lines[0].endswith("syntax_missing_equals.nram:3:13: error: unexpected identifier 'a'; expected '='")
    assert lines[1] == "      gate f(a) a + 1" and lines[2] == "    " + " " * 12 + "^"
    missing = run("compile", str(tmp_path / "absent.nram"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    usage = run("compile", str(PAPER), "--emit", "pdf")
    assert usage.returncode == 2
    for proc in (syntax, missing, usage):
        assert "Traceback" not in proc.stderr
