"""The benchmark scripts still run and print what their docstrings promise (at toy sizes: no timing is
asserted; the numbers themselves are the benchmarks' business)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _json_lines(*args: str) -> list[dict]:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_bench_machine_reports_both_kernel_modes_and_the_fitted_exponent() -> None:
    rows = _json_lines(str(BENCH / "bench_machine.py"), "--sizes", "8", "12", "--batch", "2", "--timesteps", "2",
                       "--repeats", "1")
    timed = [r for r in rows if "ms_per_timestep" in r]
    assert [(r["M"], r["kernels"]) for r in timed] == [(8, "fast"), (8, "generic"), (12, "fast"), (12, "generic")]
    assert all(r["ms_per_timestep"] > 0 and r["peak_mib"] > 0 for r in timed)
    assert [r["M"] for r in rows if "generic_over_fast" in r] == [8, 12]
    assert set(rows[-1]) == {"fast", "generic"} and "time_exponent_in_M" in rows[-1]["fast"]


def test_bench_kernels_times_every_class() -> None:
    rows = _json_lines(str(BENCH / "bench_kernels.py"), "--M", "8", "--batch", "2", "--min-time", "0.001",
                       "--threads", "1")
    assert all(r["M"] == 8 and r["fast_ms"] > 0 and r["generic_ms"] > 0 for r in rows)
    assert {"shift", "add-fft", "add-direct", "lt", "eq", "min", "max"} <= {r["class"] for r in rows}


def test_bench_train_reports_throughput_per_device_and_batch() -> None:
    rows = _json_lines(str(BENCH / "bench_train.py"), "--spec", str(BENCH.parent / "tests" / "specs" / "tiny.nram"),
                       "--batch", "2", "4", "--steps", "2", "--threads", "1")
    assert [(r["device"], r["batch"], r["steps"]) for r in rows] == [("cpu", 2, 2), ("cpu", 4, 2)]
    assert all(r["steps_per_s"] > 0 and r["examples_per_s"] == pytest.approx(r["steps_per_s"] * r["batch"], rel=0.01)
               for r in rows)


def test_bench_step_compares_one_seed_with_the_plain_nram() -> None:
    rows = _json_lines(str(BENCH / "bench_step.py"), "--memory", "8", "--batch", "2", "--timesteps", "2",
                       "--repeats", "1", "--no-compile")
    assert [(r["M"], r["compiled"]) for r in rows] == [(8, False)]
    assert rows[0]["nramdsl_ms_per_timestep"] > 0 and rows[0]["plain_ms_per_timestep"] > 0


def test_bench_population_reports_seed_steps_per_second() -> None:
    rows = _json_lines(str(BENCH / "bench_population.py"), "--spec", str(BENCH.parent / "tests" / "specs" / "tiny.nram"),
                       "--population", "1", "3", "--steps", "2", "--baseline", "--baseline-steps", "2")
    assert [(r["what"], r["K"]) for r in rows] == [("jobs 2, one seed per process", 1), ("population", 1),
                                                   ("population", 3)]
    assert [r["seed_steps"] for r in rows] == [4, 2, 6] and all(r["seed_steps_per_s"] > 0 for r in rows)


def test_fuzz_frontend_prints_the_defect_counts() -> None:
    (report,) = [json.loads(subprocess.run([sys.executable, str(BENCH / "fuzz_frontend.py"), "--specs", "3",
                                            "--gate-examples", "1"], capture_output=True, text=True, timeout=300,
                                           check=True).stdout)]
    assert report["specs"] == 3
    assert {"uncaught", "over_memory", "over_time", "unlocated_errors", "wrong_caret"} <= set(report)
    assert sum(report["per_command"]["check"].get(k, 0) for k in ("ok", "error", "uncaught", "over_memory",
                                                                   "over_time")) == 3


def test_replay_stop_rule_cuts_members_at_solved_plus_n_and_counts_the_passes_it_loses(tmp_path: Path) -> None:
    def row(seed: int, steps: int, solved: int | None, passing: bool) -> dict:
        return {"seed": seed, "steps": steps, "solved_at_step": solved,
                "bars": {"train": passing, "generalize": passing, "discrete": passing, "discrete_1000": passing}}

    members = [row(0, 250, 200, True), row(1, 500, 200, True), row(2, 800, None, False), row(3, 3000, 300, False)]
    path = tmp_path / "copy.json"
    path.write_text(json.dumps({"config": {"pbt.every": 0}, "seeds": members}))
    rows = _json_lines(str(BENCH / "replay_stop_rule.py"), str(path), "--within", "100", "400")
    assert [(r["within"], r["seed_steps"], r["passing"], r["lost"]) for r in rows] == [
        ("off", 250 + 500 + 800 + 3000, 2, 0),
        (100, 250 + 300 + 800 + 400, 1, 1),  # seed 1 passed 300 steps after solving: lost
        (400, 250 + 500 + 800 + 700, 2, 0),
    ]
    path.write_text(json.dumps({"config": {"pbt.every": 100}, "seeds": members}))
    proc = subprocess.run([sys.executable, str(BENCH / "replay_stop_rule.py"), str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "cannot be replayed" in proc.stderr and "Traceback" not in proc.stderr
    path.write_text(json.dumps({"seeds": 3}))  # untrusted: a file of the wrong shape is one error line
    proc = subprocess.run([sys.executable, str(BENCH / "replay_stop_rule.py"), str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "is not a results file nramdsl wrote" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_softened_tables_scores_every_member_and_keeps_an_exact_table_exact(tmp_path: Path) -> None:
    examples = BENCH.parent / "examples"
    out = tmp_path / "soft.json"
    proc = subprocess.run([sys.executable, str(BENCH / "softened_tables.py"), str(examples / "permutation_by_hand.nram"),
                           "--scales", "1", "30", "--seeds", "2", "--steps", "3", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    soft, sharp = json.loads(out.read_text())["runs"]
    assert (soft["scale"], sharp["scale"]) == (1, 30)
    assert [len(r["seeds"]) for r in (soft, sharp)] == [2, 2] and soft["seed_steps"] == sharp["seed_steps"] == 6
    # at scale 30 the fuzzy run is the program: exact from the start, and three steps do not move it
    assert sharp["start_error"] == 0.0 and sharp["passing"] == 2
    # at scale 1 the program's choices are only slightly preferred: the fuzzy run starts far from exact
    assert soft["start_error"] > 0.3
    start = tmp_path / "start.json"
    proc = subprocess.run([sys.executable, str(BENCH / "softened_tables.py"), str(examples / "permutation_by_hand.nram"),
                           "--scales", "1", "30", "--start-only", "--json", str(start)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[-1] for line in proc.stdout.splitlines()] == [f"{soft['start_error']:.1%}", "0.0%"]
    assert [(r["scale"], r["start_error"]) for r in json.loads(start.read_text())["runs"]] == [
        (1, soft["start_error"]), (30, 0.0)]
    proc = subprocess.run([sys.executable, str(BENCH / "softened_tables.py"), str(examples / "copy.nram")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "has no table controller" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("script, spec", [("softened_tables.py", "permutation_by_hand.nram"),
                                          ("bench_first_pass.py", "copy.nram")])
def test_benchmark_options_are_checked_before_anything_runs(script: str, spec: str) -> None:
    examples = BENCH.parent / "examples"
    positional = [str(examples / spec)] if script == "softened_tables.py" else ["--spec", str(examples / spec)]
    proc = subprocess.run([sys.executable, str(BENCH / script), *positional, "--option", "lr"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "expected KEY=VALUE, got 'lr'" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, str(BENCH / script), *positional, "--option", "lrr=0.1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "lrr" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_scoring_scores_a_population_both_ways_and_finds_the_same_passing_members(tmp_path: Path) -> None:
    from nramdsl.lang.frontend import load_machine
    from nramdsl.training.loop import train_population
    from nramdsl.training.setup import configure

    spec = load_machine(BENCH.parent / "tests" / "specs" / "tiny.nram")
    train_population(spec, configure(spec, {"steps": 6, "batch": 4}), [0, 1, 2], tmp_path / "run")
    rows = _json_lines(str(BENCH / "bench_scoring.py"), str(tmp_path / "run"), "--repeats", "2")
    assert [r["members"] for r in rows[:2]] == [3, 3] and rows[0]["passing"] == rows[1]["passing"]
    assert all(r["full_s"] > 0 and r["score_members_s"] > 0 for r in rows[:2]) and "full_over_score_members" in rows[2]
    proc = subprocess.run([sys.executable, str(BENCH / "bench_scoring.py"), str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "members/sSEED" in proc.stderr


def test_walkbst_hops_splits_the_error_by_path_length(tmp_path: Path) -> None:
    """On the hand-written WalkBST table (one hop a step): no error at any k, halting at step k + 3, and
    every case counted once; a run of another task is one error line."""
    import torch
    from conftest import EXAMPLES, write_run

    from nramdsl.lang.frontend import load_machine
    from nramdsl.machine.fuzzy import NRAM

    run = write_run(tmp_path / "hand", NRAM(load_machine(EXAMPLES / "walkbst_by_hand.nram")).to(torch.float32))
    (report,) = _json_lines(str(BENCH / "walkbst_hops.py"), str(run), "--examples", "64")
    groups = report["by_hops"]
    assert report["error"] == 0.0 and sum(g["cases"] for g in groups) == 64 and len(groups) >= 4
    assert all(g["error"] == 0.0 and g["mean_halt_step"] == g["k"] + 3 for g in groups)
    other = write_run(tmp_path / "copy", NRAM(load_machine(EXAMPLES / "copy_by_hand.nram")))
    proc = subprocess.run([sys.executable, str(BENCH / "walkbst_hops.py"), str(other)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "not walkbst" in proc.stderr and "Traceback" not in proc.stderr


LISTSEARCH_PLATEAU = """import "paper.nram"
machine listsearch_plateau {
  use paper
  task listsearch
  registers 4
  memory 32
  timesteps 20
  circuit read, zero, one, two, inc, add, sub, dec, lt, le, eq, min, max, write
  controller table {
    when r4 == 0 {
      r1 = read(r1)
      r4 = one
      write(r1, read)
    }
    otherwise {
      write(two, read(r1))
      halt
    }
  }
  train { complexity = 6 }
}
"""


def test_output_sources_names_the_input_cell_each_output_copies(tmp_path: Path) -> None:
    """The hand-written Copy table writes A[r] into output r: the tool names cell 1 + r, always, with no
    error; the hand-written Permutation table writes A[P[r]], which no single input cell holds; a table
    that writes the head's next pointer is named as following cell 0; a run directory that is not one is
    one error line."""
    import torch
    from conftest import EXAMPLES, write_run

    from nramdsl.lang.frontend import load_machine
    from nramdsl.machine.fuzzy import NRAM

    copy = write_run(tmp_path / "copy", NRAM(load_machine(EXAMPLES / "copy_by_hand.nram")).to(torch.float32))
    (report,) = _json_lines(str(BENCH / "output_sources.py"), str(copy), "--examples", "64")
    rows = report["outputs"]
    assert report["task"] == "copy" and len(rows) == report["complexity"] > 1
    assert [(r["copies_cell"], r["copies_rate"], r["error"]) for r in rows] == [(1 + r, 1.0, 0.0) for r in range(len(rows))]
    assert report["one_value_everywhere"] < 0.1
    perm = write_run(tmp_path / "perm", NRAM(load_machine(EXAMPLES / "permutation_by_hand.nram")).to(torch.float32))
    (report,) = _json_lines(str(BENCH / "output_sources.py"), str(perm), "--examples", "64")
    assert all(r["error"] == 0.0 and r["copies_rate"] < 0.5 for r in report["outputs"])
    # ListSearch's plateau as a table: the head's next pointer into out, whatever v is (one READ through cell 0).
    (tmp_path / "paper.nram").write_text((EXAMPLES / "paper.nram").read_text())
    (tmp_path / "plateau.nram").write_text(LISTSEARCH_PLATEAU)
    plateau = write_run(tmp_path / "plateau", NRAM(load_machine(tmp_path / "plateau.nram")).to(torch.float32))
    (report,) = _json_lines(str(BENCH / "output_sources.py"), str(plateau), "--examples", "64")
    (row,) = report["outputs"]
    assert report["one_value_everywhere"] is None  # one output cell: always one value, so not asked
    assert (row["follows_cell"], row["follows_rate"]) == (0, 1.0) and row["copies_rate"] < 0.5 and row["error"] > 0.5
    assert all(r["follows_rate"] < 0.5 for r in rows)  # Copy's outputs are copies, not pointers followed
    proc = subprocess.run([sys.executable, str(BENCH / "output_sources.py"), str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
