"""Run directories, checkpoints and command lines as an attacker or a careless user hands them over: nothing in
them runs code, and each bad one is one `error:` line (exit 1; 2 for a malformed argument), never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

from nramdsl.cli import main

SPEC = (Path(__file__).parent / "specs" / "tiny.nram").read_text()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of the tiny machine (12 steps), made once; tests copy it before spoiling it."""
    root = tmp_path_factory.mktemp("trained")
    (root / "tiny.nram").write_text(SPEC)
    assert main(["train", str(root / "tiny.nram"), "--out", str(root / "run"), "--no-eval"]) == 0
    return root


@pytest.fixture
def place(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run and its spec in this test's folder."""
    shutil.copy(trained / "tiny.nram", tmp_path / "tiny.nram")
    shutil.copytree(trained / "run", tmp_path / "run")
    return tmp_path


class _Payload:
    """What a malicious checkpoint carries: unpickling it calls `exec`, which writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return exec, (f"open({str(self.marker)!r}, 'w').write('the checkpoint ran code')",)


def test_a_planted_code_executing_pickle_runs_nothing(place: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = place / "pwned"
    evil = place / "run" / "checkpoint.pt"
    state = torch.load(evil, weights_only=True)
    state["controller"]["payload"] = _Payload(marker)
    torch.save(state, evil)
    torch.load(evil, weights_only=False)  # the payload is live: an unsafe load runs it …
    assert marker.exists()
    marker.unlink()

    spec = str(place / "tiny.nram")
    for argv in (["eval", str(place / "run")],
                 ["compile", spec, "--weights", str(evil), "-o", str(place / "m.pt2")],
                 ["train", spec, "--out", str(place / "run"), "--resume", "--steps", "20", "--no-eval"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        (line,) = [line for line in err.splitlines() if "error" in line]
        assert line == (f"error: '{evil}' is not a checkpoint nramdsl can read (UnpicklingError: it asks to call "
                        f"exec, which loading it would run; refused)")
        assert "Traceback" not in err
        assert not marker.exists()  # … nramdsl's does not


def _spoil(run: Path, name: str, how: str) -> None:
    path = run / name
    if how == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    elif how == "random":
        path.write_bytes(bytes(range(256)) * 20)
    elif how == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    elif how == "other machine":
        state = torch.load(path, weights_only=True)
        state["controller"] = {k: torch.zeros(1) for k in state["controller"]}
        torch.save(state, path)
    elif how == "bad counter":
        state = torch.load(path, weights_only=True)
        state["members"][0]["counters"]["step"] = "twelve"
        torch.save(state, path)
    elif how == "garbage line":
        path.write_text(path.read_text() + "garbage\n" + '{"step": 99}\n')
    elif how == "cut json":
        path.write_text(path.read_text()[:40])
    elif how == "no spec":
        config = json.loads(path.read_text())
        config["spec"] = {"path": 42}
        path.write_text(json.dumps(config))
    elif how == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("name, how, command, message", [
    ("checkpoint.pt", "truncate", "eval", "is not a checkpoint nramdsl can read"),
    ("checkpoint.pt", "random", "eval", "is not a checkpoint nramdsl can read"),
    ("checkpoint.pt", "foreign", "eval", "is not a training checkpoint: its 'model' is missing"),
    ("checkpoint.pt", "other machine", "eval", "was trained on a different machine"),
    ("checkpoint.pt", "truncate", "resume", "is not a checkpoint nramdsl can read"),
    ("checkpoint.pt", "random", "resume", "is not a checkpoint nramdsl can read"),
    ("checkpoint.pt", "foreign", "resume", "is not a training checkpoint"),
    ("checkpoint.pt", "bad counter", "resume", "the checkpoint does not fit this machine and its settings"),
    ("checkpoint.pt", "random", "weights", "is not a checkpoint nramdsl can read"),
    ("checkpoint.pt", "other machine", "weights", "was trained on a different machine"),
    ("metrics.jsonl", "garbage line", "resume", "metrics.jsonl:4:1: error: not a metrics line"),
    ("config.json", "cut json", "eval", "config.json:4:3: error: run configuration is not valid JSON"),
    ("config.json", "no spec", "eval", "the run configuration's \"spec\" is malformed"),
    ("config.json", "deep", "eval", "is nested too deeply"),
], ids=lambda x: x.replace(" ", "-") if isinstance(x, str) else x)
def test_a_spoiled_run_directory_is_one_error(place: Path, name: str, how: str, command: str, message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run = place / "run"
    _spoil(run, name, how)
    argv = {"eval": ["eval", str(run)],
            "resume": ["train", str(place / "tiny.nram"), "--out", str(run), "--resume", "--steps", "20", "--no-eval"],
            "weights": ["compile", str(place / "tiny.nram"), "--weights", str(run / name), "-o", str(place / "m.pt2")],
            }[command]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "error: " in err and "Traceback" not in err, err


@pytest.mark.parametrize("args, message", [
    (["--out", "{tmp}/afile"], "cannot use '{tmp}/afile' as a run directory: it is a file"),
    (["--out", "{tmp}/afile/run"], "it is under '{tmp}/afile', which is a file"),
    (["--option", "log_every=0"], "--option setting 'log_every' must be >= 1, got '0'"),
    (["--option", "checkpoint_every=0"], "--option setting 'checkpoint_every' must be >= 1"),
    (["--option", "lr=-1"], "--option setting 'lr' must be > 0, got '-1'"),
    (["--option", "lr=inf"], "--option setting 'lr' must be a finite number"),
    (["--option", "complexity=-2"], "--option setting 'complexity' must be >= 0"),
    (["--option", "batch=100000"], "--option setting 'batch' is 100,000, over the limit of 4,096 (raise it with "),
    (["--steps", "-5"], "setting 'steps' must be >= 1, got -5"),
    (["--seed", "-1"], "setting 'seed' must be >= 0"),
    (["--option", "device=banana"], "setting 'device' must be cpu, cuda, cuda:N or mps"),
    (["--task", "cpy"], "unknown task 'cpy' (did you mean 'copy'?)"),
])
def test_bad_training_input_is_one_error(args: list[str], message: str, place: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (place / "afile").write_text("not a folder")
    argv = ["train", str(place / "tiny.nram"), "--out", str(place / "new"), "--no-eval"]
    assert main(argv + [a.format(tmp=place) for a in args]) == 1
    err = capsys.readouterr().err
    assert message.format(tmp=place) in err and err.count("error:") == 1 and "Traceback" not in err, err
    assert not (place / "new").exists()  # refused before anything was written


@pytest.mark.parametrize("args, message", [
    (["--complexity", "0"], "complexity must be at least 1, got 0"),
    (["--complexity", "100000"], "complexity 100,000 is over the limit of 10,000"),
    (["--slack", "-1"], "slack must be > 0 and <= 100, got -1.0"),
    (["--slack", "nan"], "slack must be > 0"),
    (["--memory", "3"], "memory 3 is too small for complexity 6 of task 'access' (it needs M >= 8)"),
    (["--complexity", "30", "--memory", "16"], "memory 16 is too small for complexity 30"),
    (["--memory", "100000"], "memory 100,000 is over the limit of 4,096"),
    (["--timesteps", "0"], "timesteps must be at least 1, got 0"),
    (["--examples", "0"], "the number of test cases must be at least 1, got 0"),
    (["--complexity", "3000"], "complexity 3000 (M = 3002, T = 3000): fuzzy machine size"),
    (["--discretize", "--big", "9000", "--slack", "50"], "complexity 9000 on the integer machine: timesteps"),
])
def test_bad_evaluation_input_is_one_error(args: list[str], message: str, place: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(place / "run"), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1 and "Traceback" not in err, err


def test_malformed_results_are_one_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "copy.json").write_text('{"task": "copy",\n "seeds": [}')
    assert main(["results", "--results", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'copy.json'}:2:12: error: results file is not valid JSON")
    (tmp_path / "copy.json").write_text('{"task": "copy"}')
    assert main(["results", "--results", str(tmp_path)]) == 1
    assert f"error: '{tmp_path / 'copy.json'}' is not a results file nramdsl wrote (KeyError" in capsys.readouterr().err


def test_check_validates_what_train_reads_where_it_is_written(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.nram"
    spec.write_text(SPEC.replace("task access", "task cpy").replace(
        "train { steps = 12,", "train { bogus_key = 3, lr = -1, max_skips = -1, steps = 12,"))
    assert main(["check", str(spec)]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert lines == [
        f"{spec}:10:8: error: unknown task 'cpy' (did you mean 'copy'?); available tasks: " + lines[0].split(": ")[-1],
        f"{spec}:16:11: error: unknown train setting 'bogus_key'; `nramdsl train --help` lists the settings",
        f"{spec}:16:26: error: train setting 'lr' must be > 0, got -1",
        f"{spec}:16:35: error: train setting 'max_skips' must be >= 0, got -1",
    ]
    spec.write_text(SPEC.replace("train { steps = 12,", "train { complexity = 9, steps = 12,"))
    assert main(["check", str(spec)]) == 1
    assert f"{spec}:16:11: error: complexity 9 of task 'access' needs M >= 11, the machine has M = 8" in capsys.readouterr().err


def test_files_get_the_ordinary_mode_and_no_temporary_is_left(place: Path) -> None:
    old = os.umask(0o022)
    try:
        stale = place / "run" / ".checkpoint.pt.0badc0de.tmp"  # what a kill inside a write leaves
        stale.write_bytes(b"half a checkpoint")
        assert main(["train", str(place / "tiny.nram"), "--out", str(place / "run"), "--resume", "--steps", "16",
                     "--no-eval"]) == 0
    finally:
        os.umask(old)
    names = sorted(p.name for p in (place / "run").iterdir())
    assert names == [".lock", "checkpoint.pt", "config.json", "metrics.jsonl"]  # .lock: the run's, left for the next
    for name in names:
        assert stat.S_IMODE((place / "run" / name).stat().st_mode) == 0o644, name


def test_an_artifact_into_a_missing_folder_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = Path(__file__).parent / "specs" / "tiny.nram"
    for name in ("x.pt2", "x.dot"):
        assert main(["compile", str(spec), "-o", str(tmp_path / "nowhere" / name)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: cannot write '{tmp_path / 'nowhere' / name}'") and "Traceback" not in err
