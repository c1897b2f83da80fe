"""`nramdsl trace`: the text trace of a discretized run is the integer machine's states, step for step (checked
against the fuzzy model run with one-hot attention, a separate implementation); the plot writes a PNG."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from conftest import EXAMPLES, random_mlp, write_run

from nramdsl.cli import main
from nramdsl.lang.frontend import load_machine
from nramdsl.machine.fuzzy import NRAM
from nramdsl.machine.integer import ReferenceMachine
from nramdsl.programs import trace as trace_module
from nramdsl.tasks import get_task


def _table(text: str) -> list[tuple[list[int], list[int], str]]:
    """The step lines of a trace: (memory, registers, circuit label) per step, the input first."""
    rows = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) == 4 and parts[0].strip().isdigit():
            mem = [int(v.rstrip("?")) for v in parts[1].split()]
            regs = [int(v.rstrip("?")) for v in parts[2].split()]
            rows.append((mem, regs, parts[3].split()[0] if parts[3].strip() else ""))
    return rows


def test_discretized_trace_is_the_integer_machines_states(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = random_mlp(tmp_path, 5)
    run = write_run(tmp_path / "run", model)
    assert main(["trace", str(run), "--discretize", "--example", "2", "--complexity", "5"]) == 0
    text = capsys.readouterr().out
    rows = _table(text)
    # the same case, run by the fuzzy model with one-hot attention (tensors, not the integer machine)
    c = 5
    batch = get_task("copy").generate(c, 16, 3, torch.Generator().manual_seed(trace_module.SEED + c))
    with torch.no_grad():
        out = model(batch.memory[2:3], timesteps=len(rows) - 1, trace=True, hard=True)
    assert rows[0][0] == batch.memory[2].tolist() and rows[0][1] == [0, 0, 0, 0]
    assert len(rows) - 1 == len(out.trace) > 1
    # and stepped on a fresh integer machine with the choices the one-hot run made
    machine = ReferenceMachine(model.spec, 16, model.wiring)
    ref_regs, ref_mem = machine.initial(batch.memory[2:3].numpy())
    for (mem, regs, _), step in zip(rows[1:], out.trace):
        assert mem == step["memory"][0].argmax(-1).tolist()
        assert regs == step["registers"][0].argmax(-1).tolist()
        res = machine.step(ref_regs, ref_mem, step["input_attention"].argmax(-1).numpy(),
                           step["update_attention"].argmax(-1).numpy())
        ref_regs, ref_mem = res.registers, res.memory
        assert mem == ref_mem[0].tolist() and regs == ref_regs[0].tolist()
    assert "discretized model on the integer machine" in text and "<- read out" in text


def test_fuzzy_trace_of_a_compiled_table_equals_its_discretized_trace(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "run", NRAM(load_machine(EXAMPLES / "copy_by_hand.nram")))
    assert main(["trace", str(run)]) == 0
    fuzzy = capsys.readouterr().out
    assert main(["trace", str(run), "--discretize"]) == 0
    discrete = capsys.readouterr().out
    assert _table(fuzzy) == _table(discrete) and len(_table(fuzzy)) == 10  # input + 9 steps: halts at n + 2
    assert "?" not in "".join(line for line in fuzzy.splitlines() if "|" in line)  # every value one-hot
    assert "r3 = inc(r3)" in fuzzy and "r4 = min(inc, r2)" in fuzzy


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    run = write_run(tmp_path / "run", NRAM(load_machine(EXAMPLES / "copy_by_hand.nram")))
    png = tmp_path / "trace.png"
    assert main(["trace", str(run), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 800 and image[..., :3].std() > 0.1  # drawn, not blank


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "run", NRAM(load_machine(EXAMPLES / "copy_by_hand.nram")))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if it were not installed
    assert main(["trace", str(run), "--plot", str(tmp_path / "x.png")]) == 1
    assert "pip install 'nramdsl[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_trace_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", str(tmp_path)]) == 1
    assert "not a run directory" in capsys.readouterr().err
    run = write_run(tmp_path / "run", NRAM(load_machine(EXAMPLES / "copy_by_hand.nram")))
    assert main(["trace", str(run), "--example", "-1"]) == 1
    assert "--example must be >= 0" in capsys.readouterr().err
