"""What a newcomer meets first: the help, the version, what a long command says while it works, and messages
that say what to do (issue 14's papercuts)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch

from nramdsl import cli
from nramdsl.cli import main
from nramdsl.errors import NramError
from nramdsl.kernels.lift import make_kernel
from nramdsl.lang.frontend import load_text, machine_from_text

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "specs" / "tiny.nram"


def test_version_and_top_level_help_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("nramdsl ")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "examples:\n  nramdsl check examples/copy.nram" in out and "--threads N" in out


def test_train_help_lists_every_setting_with_its_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "lr = 0.003 (float, > 0)" in out and "batch = 32 (int, >= 1 and <= 4096)" in out
    assert "max_rollbacks = 3 (int, >= 0)" in out


def test_train_and_eval_say_their_thread_count_and_eval_says_what_it_is_doing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["--threads", "2", "train", str(TINY), "--out", str(run), "--no-eval"]) == 0
    assert "(2 CPU threads; --threads N to change)" in capsys.readouterr().err
    assert torch.get_num_threads() == 2
    assert main(["eval", str(run), "--complexity", "2", "--examples", "2"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"evaluating {run}: machine 'access' on task 'access', trained up to complexity 6; "
                      f"2 rows of 2 test cases (1 CPU thread; --threads N to change)")
    assert err[1:] == ["  row 1/2: the training budget, complexity 6 (M = 8, T = 3)",
                       "  row 2/2: complexity 2 (M = 8, T = 6)"]


def test_a_keyword_typo_gets_a_did_you_mean() -> None:
    with pytest.raises(NramError, match=r"unexpected identifier 'registrs'.* \(did you mean 'registers'\?\)"):
        load_text("machine m {\n  registrs 4\n}\n", "t.nram")


def test_a_missing_brace_says_which_block_is_open() -> None:
    with pytest.raises(NramError, match=r"unexpected end of file; .* \(machine 'm', opened at 3:11, is not closed\)"):
        load_text("gates g { const zero = 0 }\n\nmachine m {\n  use g\n", "t.nram")
    with pytest.raises(NramError, match=r"unexpected 'machine'; .* \(gate set 'g', opened at 1:9, is not closed\)"):
        load_text("gates g {\n  const zero = 0\nmachine m { }\n", "t.nram")


def test_division_by_zero_suggests_the_guard() -> None:
    text = "gates g { gate half(a, b) = a // b }\nmachine m { use g registers 1 memory 4 timesteps 1 circuit read, half }\n"
    with pytest.raises(NramError) as info:
        machine_from_text(text, "d.nram")
    assert ("half(0, 0) raises ZeroDivisionError: integer division or modulo by zero (guard the divisor: "
            "`if b == 0 then … else a // b`)") in info.value.message


def test_the_export_artifact_is_seeded_and_its_outputs_do_not_track_gradients(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        assert main(["compile", str(TINY), "-o", str(tmp_path / folder / "access.pt2")]) == 0
    first, second = ((tmp_path / f / "access.pt2").read_bytes() for f in ("a", "b"))
    assert first == second  # the untrained weights come from --seed (0), not from the clock
    assert main(["compile", str(TINY), "-o", str(tmp_path / "a" / "access.pt2"), "--seed", "1"]) == 0
    assert (tmp_path / "a" / "access.pt2").read_bytes() != second
    program = torch.export.load(str(tmp_path / "b" / "access.pt2")).module()
    final_memory, halting, output = program(torch.zeros(3, 8, dtype=torch.long))
    assert final_memory.shape == (3, 8, 8) and halting.shape == (3, 3) and output.shape == (3, 8)
    assert not any(t.requires_grad for t in (final_memory, halting, output))


def test_check_can_leave_via_kernels_unimported(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ROOT / "examples" / "paper.nram", tmp_path / "paper.nram")
    (tmp_path / "spec.nram").write_text(
        'import "paper.nram"\ngates k { gate mul(a, b) = (a * b) mod M via "nram_trap:mul" }\n'
        "machine m { use paper, k registers 1 memory 4 timesteps 1 circuit read, mul, write }\n")
    (tmp_path / "nram_trap.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w')\ndef mul(a, b):\n    return a\n")
    monkeypatch.setattr(cli, "_gate_checks", lambda: __import__("functools").partial(
        __import__("nramdsl.kernels.properties", fromlist=["x"]).run_gate_checks, max_examples=2))
    assert main(["check", str(tmp_path / "spec.nram"), "--skip-via"]) == 0
    assert not (tmp_path / "imported").exists()  # nothing beside the spec ran
    assert main(["check", str(tmp_path / "spec.nram")]) == 1  # without the flag the kernel runs (and is wrong)
    assert (tmp_path / "imported").exists() and "'via' kernel" not in capsys.readouterr().out
    sys.modules.pop("nram_trap", None)


def test_eval_can_leave_the_runs_via_kernels_unimported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "nram_evaltrap.py").write_text(
        f"import torch\nopen({str(marker)!r}, 'w')\ndef inc(a):\n    return torch.roll(a, 1, dims=-1)\n")
    (tmp_path / "spec.nram").write_text(TINY.read_text().replace(
        "gate inc(a) = (a + 1) mod M", 'gate inc(a) = (a + 1) mod M via "nram_evaltrap:inc"'))
    assert main(["train", str(tmp_path / "spec.nram"), "--out", str(tmp_path / "run"), "--steps", "4", "--no-eval"]) == 0
    assert marker.exists()  # training ran the kernel, as it should
    marker.unlink()
    sys.modules.pop("nram_evaltrap", None)
    assert main(["eval", str(tmp_path / "run"), "--complexity", "2", "--examples", "2", "--skip-via"]) == 0
    assert not marker.exists()
    make_kernel.cache_clear()  # as in a new process: the kernel training built is not reused
    assert main(["eval", str(tmp_path / "run"), "--complexity", "2", "--examples", "2"]) == 0
    assert marker.exists()
    sys.modules.pop("nram_evaltrap", None)
