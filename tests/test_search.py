"""`nramdsl reproduce` in populations, locally and on a real local Ray cluster (started here, not mocked)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nramdsl.cli import main

SPEC = (Path(__file__).parent / "specs" / "tiny.nram").read_text()
TIMING = {"wall_s", "steps_per_s", "eval_s"}


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.nram"
    path.write_text(SPEC)
    return path


def reproduce(spec_file: Path, out: Path, *extra: str) -> dict:
    argv = ["reproduce", str(spec_file), "--seeds", "4", "--steps", "6", "--option", "dtype=float64",
            "--results", str(out / "results"), "--runs", str(out / "runs"), *extra]
    assert main(argv) == 0
    return json.loads((out / "results" / "access.json").read_text())


def untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_populations_score_every_member_as_its_single_run_would(spec_file: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    alone = reproduce(spec_file, tmp_path / "alone")
    together = reproduce(spec_file, tmp_path / "together", "--population", "2")
    assert together["population"] == 2 and together["populations"]["count"] == 2
    assert [s["seed"] for s in together["seeds"]] == [0, 1, 2, 3]
    assert untimed(together["seeds"]) == untimed(alone["seeds"])
    assert together["compute"]["seed_steps"] == sum(s["steps"] for s in together["seeds"]) == 24
    assert (tmp_path / "together" / "runs" / "access-access-p2-s2" / "members" / "s3" / "checkpoint.pt").exists()
    capsys.readouterr()
    again = reproduce(spec_file, tmp_path / "together", "--population", "2")
    assert "seeds 0-1: reusing" in capsys.readouterr().err and untimed(again["seeds"]) == untimed(together["seeds"])
    # a larger budget resumes the populations whose members used theirs, and equals a fresh run
    grown = reproduce(spec_file, tmp_path / "together", "--population", "2", "--steps", "9")
    assert "resuming" in capsys.readouterr().err
    fresh = reproduce(spec_file, tmp_path / "fresh", "--population", "2", "--steps", "9")
    assert untimed(grown["seeds"]) == untimed(fresh["seeds"])
    # a search extended to new seeds: --first-seed trains those alone, their rows as in the whole search
    later = reproduce(spec_file, tmp_path / "later", "--population", "2", "--first-seed", "2", "--seeds", "2")
    assert [s["seed"] for s in later["seeds"]] == [2, 3] and untimed(later["seeds"]) == untimed(together["seeds"][2:])
    assert not (tmp_path / "later" / "runs" / "access-access-p2-s0").exists()
    capsys.readouterr()
    for bad in ("-1", str(2**31 - 3)):  # 4 seeds from 2**31 - 3 run past the largest seed, 2**31 - 1
        assert main(["reproduce", str(spec_file), "--seeds", "4", "--first-seed", bad, "--runs", str(tmp_path),
                     "--results", str(tmp_path)]) == 1
        assert "--first-seed must be >= 0, and the last seed (FIRST + N - 1) at most 2147483647" in capsys.readouterr().err


def test_extend_grows_a_search_from_its_results_file_alone(spec_file: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    def run(out: Path, *extra: str, runs: str = "runs") -> int:
        return main(["reproduce", str(spec_file), *extra, "--population", "2", "--steps", "6", "--option",
                     "dtype=float64", "--results", str(out / "results"), "--runs", str(out / runs)])

    assert run(tmp_path / "whole", "--seeds", "4") == 0
    whole = json.loads((tmp_path / "whole" / "results" / "access.json").read_text())
    grow = tmp_path / "grow"
    assert run(grow, "--seeds", "2") == 0
    # the later seeds in another runs folder: the first population's rows can only come from the results file
    assert run(grow, "--first-seed", "2", "--seeds", "2", "--extend", runs="later") == 0
    assert not (grow / "later" / "access-access-p2-s0").exists()
    grown = json.loads((grow / "results" / "access.json").read_text())
    assert untimed(grown["seeds"]) == untimed(whole["seeds"])
    timed = {"compute", "first_pass", "mean_steps_per_s", "command"}
    assert {k: v for k, v in grown.items() if k not in timed | {"seeds"}} == \
        {k: v for k, v in whole.items() if k not in timed | {"seeds"}}
    assert grown["compute"]["seed_steps"] == whole["compute"]["seed_steps"]
    # the one command that trains the merged search: the whole search's, but for the folders
    assert grown["command"].replace(str(grow / "later"), str(grow / "runs")).replace(str(grow), str(tmp_path / "whole")) \
        == whole["command"]
    # a search grows downwards too: the file's seeds 2-3, then 0-1, is the whole search from seed 0
    down = tmp_path / "down"
    assert run(down, "--first-seed", "2", "--seeds", "2") == 0 and run(down, "--seeds", "2", "--extend") == 0
    merged = json.loads((down / "results" / "access.json").read_text())
    assert untimed(merged["seeds"]) == untimed(whole["seeds"]) and "--first-seed" not in merged["command"]
    # a run that replaces every row of the file records a command without --extend, which a fresh clone can run
    assert run(down, "--seeds", "4", "--extend") == 0
    assert "--extend" not in json.loads((down / "results" / "access.json").read_text())["command"]
    # again: the file's rows of this run's seeds are replaced by this run's (reused) rows, not doubled
    assert run(grow, "--first-seed", "2", "--seeds", "2", "--extend", runs="later") == 0
    assert untimed(json.loads((grow / "results" / "access.json").read_text())["seeds"]) == untimed(whole["seeds"])
    capsys.readouterr()

    refused = {
        ("--first-seed", "6", "--seeds", "2"): "its seeds 0-3 and this run's 6-7 leave a gap",
        ("--first-seed", "3", "--seeds", "2"): ("populations of 2 from seed 0 would mix its members with this run's "
                                             "(start and end this run on a population's edge: seed 0 plus a multiple of 2)"),
        ("--first-seed", "4", "--seeds", "2", "--option", "lr=0.01"): "its search had other settings: lr",
    }
    for extra, why in refused.items():
        assert run(grow, *extra, "--extend", runs="refused") == 1
        err = capsys.readouterr().err.strip()
        assert err == f"error: '{grow / 'results' / 'access.json'}': cannot extend it: {why}", err
    assert main(["reproduce", str(spec_file), "--first-seed", "4", "--seeds", "2", "--extend", "--population", "3",
                 "--steps", "6", "--option", "dtype=float64", "--results", str(grow / "results"), "--runs",
                 str(grow / "refused")]) == 1
    assert "its search trained populations of 2, not 3 (give --population 2)" in capsys.readouterr().err
    # an untrusted file: another machine, or a row that is not one, is one line before anything trains
    path = grow / "results" / "access.json"
    for change, why in ((lambda d: d.update(fingerprint="0" * 64), "its machine was another"),
                        # a file from before results carried the fingerprint: the sizes it records are checked
                        (lambda d: d.pop("fingerprint") and d.update(memory=9), "memory 9, not 8"),
                        (lambda d: d["seeds"][1].pop("bars"), "member row 1 has no valid 'bars'"),
                        (lambda d: d["seeds"][0].update(steps="6"), "member row 0 has no valid 'steps'")):
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
        assert run(grow, "--first-seed", "4", "--seeds", "2", "--extend", runs="refused") == 1
        assert why in capsys.readouterr().err
        path.write_text(json.dumps(grown))
    legacy = {k: v for k, v in grown.items() if k != "fingerprint"}
    path.write_text(json.dumps(legacy))
    assert run(grow, "--first-seed", "4", "--seeds", "2", "--extend", runs="later") == 0
    assert [s["seed"] for s in json.loads(path.read_text())["seeds"]] == list(range(6))
    assert run(tmp_path / "nothing", "--seeds", "2", "--extend") == 1
    assert "--extend adds seeds to an earlier search, but" in capsys.readouterr().err
    assert not (grow / "refused").exists() and not (tmp_path / "nothing" / "runs").exists()


def test_whole_command_replaces_the_seed_range_in_either_spelling() -> None:
    from nramdsl.training.extend import whole_command

    argv = ["reproduce", "m.nram", "--first-seed=48", "--seeds", "48", "--extend", "--population", "24"]
    assert whole_command(argv, 0, 96) == ["reproduce", "m.nram", "--seeds", "96", "--population", "24"]
    assert whole_command(["reproduce", "m.nram", "--jobs", "2", "--seeds=8", "--extend"], 16, 24) == \
        ["reproduce", "m.nram", "--jobs", "2", "--seeds", "24", "--first-seed", "16"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster(tmp_path: Path):
    """A real Ray head node on this machine, stopped afterwards."""
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).parent / "ray"
    port = _free_port()
    temp = Path("/tmp") / f"ray-{os.getpid()}-{port}"  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
             f"--temp-dir={temp}", "--disable-usage-stats"]
    subprocess.run(start, check=True, capture_output=True, env=env, timeout=180)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def _workers(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if name in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_a_search_on_a_ray_cluster_survives_a_lost_worker(spec_file: Path, tmp_path: Path, ray_cluster: str) -> None:
    """Units run as Ray tasks; killing the worker of one mid-run makes Ray retry it, and the retry resumes
    from its checkpoint: the rows equal those of the same search run locally without interruption."""
    steps = ["--steps", "200", "--option", "checkpoint_every=20", "--option", "log_every=1",
             "--option", "stop.probe_every=0"]
    local = reproduce(spec_file, tmp_path / "local", "--population", "2", *steps)
    argv = [sys.executable, "-m", "nramdsl", "reproduce", str(spec_file), "--seeds", "4", "--population", "2",
            "--option", "dtype=float64", *steps, "--results", str(tmp_path / "ray" / "results"),
            "--runs", str(tmp_path / "ray" / "runs"), "--ray", ray_cluster]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "ray" / "runs" / "access-access-p2-s0" / "metrics.jsonl"
    killed, before = False, []
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline and not killed:
        lines = metrics.read_text().splitlines() if metrics.exists() else []
        if len(lines) >= 2 * 50:  # both members past step 50, after the checkpoints at 20 and 40
            for pid in _workers("_unit_task"):
                os.kill(pid, signal.SIGKILL)
                killed = True
            before = lines[: 2 * 40]  # the rows up to the checkpoint at step 40, wall times included
        time.sleep(0.05)
    out, err = proc.communicate(timeout=300)
    assert killed, "no worker was running the unit"
    assert proc.returncode == 0, err
    remote = json.loads((tmp_path / "ray" / "results" / "access.json").read_text())
    assert untimed(remote["seeds"]) == untimed(local["seeds"])

    def steps_logged(run: Path) -> list[int]:
        return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]

    # the retry resumed from step 40: the rows logged before it are kept as they were (a restart would have
    # written them again, with other wall times), and the whole log is that of one uninterrupted run
    after = (tmp_path / "ray" / "runs" / "access-access-p2-s0" / "metrics.jsonl").read_text().splitlines()
    assert before and after[: len(before)] == before
    assert steps_logged(tmp_path / "ray" / "runs" / "access-access-p2-s0") == \
        steps_logged(tmp_path / "local" / "runs" / "access-access-p2-s0")


def _member(seed: int, steps: int, wall: float, passes: bool) -> dict:
    bars = dict.fromkeys(("train", "generalize", "discrete", "discrete_1000"), passes)
    return {"seed": seed, "steps": steps, "wall_s": wall, "bars": bars}


def test_first_passes_count_what_each_population_trained_until_its_first_passing_member() -> None:
    from nramdsl.training.results_table import first_passes

    # population 0: seed 2 passes at step 300 (seed 1 passes later), seed 0 gave up at 120, seed 3 ran on
    pop0 = [_member(0, 120, 5.0, False), _member(1, 900, 40.0, True), _member(2, 300, 14.0, True),
            _member(3, 1500, 60.0, False)]
    pop1 = [_member(s, 1500, 60.0, False) for s in range(4, 8)]
    assert first_passes(pop0 + pop1, 4) == [{"seed": 2, "seed_steps": 120 + 300 + 300 + 300, "wall_s": 14.0}, None]
    # one seed at a time: everything trained up to and including the first seed that passes, in seed order
    assert first_passes(pop0, 1) == [{"seed": 1, "seed_steps": 1020, "wall_s": 45.0}]
    assert first_passes(pop1, 1) == [None]


def test_first_trained_counts_until_the_first_exact_member_first_solved() -> None:
    """The hard tasks' compute figure: seed-steps until the first member exact at the training size had its
    first error-free batch at the top level (its `solved_at_step`), whether or not it passed any other bar."""
    from nramdsl.training.results_table import first_trained

    def member(seed: int, steps: int, exact: bool, solved_at: int | None) -> dict:
        row = _member(seed, steps, 1.0, False)
        return {**row, "bars": {**row["bars"], "train": exact}, "solved_at_step": solved_at}

    # population 0: seed 1 is exact and first solved at 450 (seed 2 solved earlier, at 300, but is not exact
    # when scored); seed 0 stopped at 200
    pop0 = [member(0, 200, False, None), member(1, 2000, True, 450), member(2, 2500, False, 300),
            member(3, 2500, True, 700)]
    pop1 = [member(s, 3000, False, None) for s in range(4, 8)]
    assert first_trained(pop0 + pop1, 4) == [200 + 450 * 3, None]
    # one seed at a time: every earlier seed's steps, then the exact seed's own up to its first solve; an
    # exact member with no solve logged counts all of its steps
    assert first_trained(pop0, 1) == [200 + 450]
    assert first_trained([member(0, 900, False, 100), member(1, 800, True, None)], 1) == [900 + 800]
    assert first_trained(pop1, 1) == [None]


def test_the_member_shown_is_the_exact_one_that_generalizes_best() -> None:
    """Several members at training error 0 (a PBT population's copies): the table shows the one with the
    lowest error at twice the training size; a member at every bar wins over both."""
    from nramdsl.training.results_table import best_member

    def member(seed: int, train: float, twice: float | None, passing: bool = False) -> dict:
        bars = dict.fromkeys(("train", "generalize", "discrete", "discrete_1000"), passing)
        table = [{"complexity": 10, "error": train}] + ([] if twice is None else [{"complexity": 20, "error": twice}])
        return {"seed": seed, "train_error": train, "table": table, "bars": bars, "steps": 100 + seed}

    seeds = [member(0, 0.05, 0.2), member(1, 0.0, 0.48), member(2, 0.0, None), member(3, 0.0, 0.37)]
    assert best_member(seeds, 10)["seed"] == 3
    assert best_member([*seeds, member(4, 0.0, 0.5, passing=True)], 10)["seed"] == 4


def test_a_pbt_search_records_origins_and_the_table_counts_passing_initializations(spec_file: Path,
                                                                                   tmp_path: Path) -> None:
    """Members a PBT search passes with may be copies of one solution: each row records the seed its weights
    descend from, the summary counts distinct ones, and the results table says so beside the member count."""
    from nramdsl.training.results_table import passes, results_table

    plain = reproduce(spec_file, tmp_path / "plain", "--population", "2")
    assert [s["origin"] for s in plain["seeds"]] == [0, 1, 2, 3]  # no PBT: every member its own
    pbt = reproduce(spec_file, tmp_path / "pbt", "--population", "4", "--option", "pbt.every=2",
                    "--option", "pbt.quantile=0.5")
    assert all(s["origin"] in range(4) for s in pbt["seeds"]) and any(s["origin"] != s["seed"] for s in pbt["seeds"])
    passing = [s for s in pbt["seeds"] if passes(s)]
    assert pbt["passing_origins"] == len({s["origin"] for s in passing})
    # the table: three passing members from one initialization
    for i, s in enumerate(pbt["seeds"]):
        s["bars"] = dict.fromkeys(s["bars"], i < 3)
        s["origin"] = 0
    pbt["passing_origins"] = 1
    (tmp_path / "pbt" / "results" / "access.json").write_text(json.dumps(pbt))
    assert "| 3/4 (75.0%); 1 initialization |" in results_table(tmp_path / "pbt" / "results")


def test_members_off_the_train_bar_get_the_first_rows_of_their_full_score_and_no_other_bars() -> None:
    """`score_members` against scoring every member in full (`score_in_full`, as before): the member at
    the train bar gets the same row; the one off it gets the first rows of its full table, on the same test
    cases, its train bar, and null for the bars it was not scored on, so it passes nothing either way."""
    import copy

    import torch

    from nramdsl.lang.frontend import load_machine
    from nramdsl.machine.fuzzy import NRAM
    from nramdsl.training.loop import TrainResult
    from nramdsl.training.results_table import passes
    from nramdsl.training.setup import configure, plan
    from nramdsl.training.unit import BARS, score_in_full, score_members

    spec = load_machine(Path(__file__).parent.parent / "examples" / "copy_by_hand.nram")
    job = plan(spec, configure(spec, {}))
    exact = NRAM(spec, job.config.model).to(torch.float32)  # the hand-written Copy table: error 0
    blurred = copy.deepcopy(exact)
    with torch.no_grad():
        for w in blurred.parameters():
            w.mul_(0.1)  # the same table, its logits flattened: wrong at the training size
    results = [TrainResult(model, 10, 0.0, 1, 0, 0, 1.0, None, seed=seed) for seed, model in ((3, exact), (4, blurred))]
    scored = score_members(results, job)
    full = score_in_full(results, job)
    assert scored[0] == full[0] and passes(scored[0])
    off = scored[1]
    assert full[1]["bars"]["train"] is off["bars"]["train"] is False
    assert [off["bars"][b] for b in BARS[1:]] == [None] * 3 and not passes(off) and not passes(full[1])
    assert 0 < len(off["table"]) < len(full[1]["table"]) and off["table"] == full[1]["table"][: len(off["table"])]
    assert max(r["complexity"] for r in off["table"]) == 3 * job.complexity
    assert {k: v for k, v in off.items() if k not in ("bars", "table")} == \
        {k: v for k, v in full[1].items() if k not in ("bars", "table")}
