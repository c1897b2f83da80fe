"""`nramdsl curves`: a run's learning curves read back from its metrics, checked against the rows training
logged, PBT copies included; the plot is a real PNG; a bad metrics file is one located error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nramdsl.cli import main
from nramdsl.lang.frontend import machine_from_text
from nramdsl.programs.curves import read_curves
from nramdsl.training.loop import train_population
from nramdsl.training.setup import configure

TINY = (Path(__file__).parent / "specs" / "tiny.nram").read_text()


@pytest.fixture(scope="module")
def pbt_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    spec = machine_from_text(TINY, "tiny.nram")
    cfg = configure(spec, {"steps": 12, "batch": 4, "log_every": 1, "complexity": 3, "stop.probe_every": 0,
                           "pbt.every": 4, "pbt.quantile": 0.5})
    run = tmp_path_factory.mktemp("curves") / "run"
    rows: list[dict] = []
    train_population(spec, cfg, [5, 6, 7, 8], run, on_log=rows.append)
    return run, rows


def test_curves_are_the_logged_rows_with_each_copy_named_by_seed(pbt_run: tuple[Path, list[dict]]) -> None:
    run, rows = pbt_run
    curves = read_curves(run)
    assert [c.seed for c in curves] == [5, 6, 7, 8]
    for k, curve in enumerate(curves):
        mine = [r for r in rows if r.get("member") == k and "pbt" not in r]
        assert curve.steps == [r["step"] for r in mine] and curve.levels == [r["level"] for r in mine]
        assert curve.errors == pytest.approx([r["train_error"] for r in mine])
        assert curve.copies == [(r["step"], r["pbt"]["copied"]) for r in rows if r.get("member") == k and "pbt" in r]
        assert all(source in {5, 6, 7, 8} - {curve.seed} for _, source in curve.copies)  # seeds, never itself
    assert sum(len(c.copies) for c in curves) == 4  # two rounds, half of four members each


def test_a_damaged_copy_row_is_skipped_and_the_curves_still_read(pbt_run: tuple[Path, list[dict]],
                                                                   tmp_path: Path) -> None:
    run, _ = pbt_run
    damaged = tmp_path / "damaged"
    shutil.copytree(run, damaged)
    with (damaged / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 12, "member": 1, "seed": 6, "pbt": {"step": 12, "copied": "5"}}) + "\n")
    assert read_curves(damaged) == read_curves(run)


def test_cli_prints_a_row_per_member_and_draws_a_png(pbt_run: tuple[Path, list[dict]], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    run, _ = pbt_run
    png = tmp_path / "curves.png"
    assert main(["curves", str(run), "--plot", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["seed", "last", "step"] and [line.split()[0] for line in lines[2:]] == ["5", "6", "7", "8"]
    assert all(line.split()[1] == "12" for line in lines[2:])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(png)
    assert image.shape[0] > 500 and image[..., :3].std() > 0.1  # drawn, not blank


def test_window_rows_summarise_every_members_rows_of_those_steps(pbt_run: tuple[Path, list[dict]],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from nramdsl.programs.curves import window_table

    run, rows = pbt_run
    logged = [r for r in rows if "pbt" not in r]
    table = window_table(read_curves(run), 5)
    assert [row[0] for row in table] == ["0-4", "5-9", "10-14"]
    for (label, mean, lowest, level, members), low in zip(table, (0, 5, 10)):
        mine = [r for r in logged if low <= r["step"] < low + 5]
        assert float(mean) == pytest.approx(sum(r["train_error"] for r in mine) / len(mine), abs=5e-4)
        assert float(lowest) == pytest.approx(min(r["train_error"] for r in mine), abs=5e-4)
        assert float(level) == pytest.approx(sum(r["level"] for r in mine) / len(mine), abs=5e-3)
        assert members == len({r["member"] for r in mine}) == 4
    assert main(["curves", str(run), "--window", "5"]) == 0
    out = capsys.readouterr().out
    assert "mean error" in out and out.splitlines()[-1].split()[0] == "10-14"
    with pytest.raises(SystemExit) as usage:
        main(["curves", str(run), "--window", "0"])
    assert usage.value.code == 2


def test_a_bad_metrics_file_is_one_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    assert main(["curves", str(run)]) == 1
    assert "has no metrics.jsonl" in capsys.readouterr().err
    (run / "metrics.jsonl").write_text('{"step": 1, "train_error": 0.5, "level": 1}\n[1, 2]\n')
    assert main(["curves", str(run)]) == 1
    err = capsys.readouterr().err
    assert f"{run / 'metrics.jsonl'}:2:1: error: not a metrics line" in err and "Traceback" not in err
    (run / "metrics.jsonl").write_text('{"step": 1, "train_error": "x", "level": 1}\n')
    assert main(["curves", str(run)]) == 1
    assert "holds no training rows yet" in capsys.readouterr().err
