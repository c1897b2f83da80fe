"""`nramdsl train`, `eval` and `reproduce` end to end on a tiny machine, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nramdsl.cli import main
from nramdsl.lang.frontend import machine_from_text
from nramdsl.machine.discrete import run_discrete
from nramdsl.machine.fuzzy import NRAM
from nramdsl.tasks import get_task
from nramdsl.training.evaluate import Budget, evaluate, masked_error
from nramdsl.training.loop import load_run
from nramdsl.training.unit import BARS

SPEC = (Path(__file__).parent / "specs" / "tiny.nram").read_text()


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.nram"
    path.write_text(SPEC)
    return path


def test_train_writes_a_run_and_prints_the_table(spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", str(spec_file), "--out", str(run), "--examples", "4"]) == 0
    out = capsys.readouterr().out
    assert "done: 12 steps" in out
    assert "generalization" in out and "complexity" in out
    assert {"checkpoint.pt", "config.json", "metrics.jsonl"} <= {p.name for p in run.iterdir()}
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "access" and config["train"]["steps"] == 12 and config["train"]["batch"] == 4
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 8, 12]

    # eval reads the run back; --json rows carry the discretized comparison when asked for
    assert main(["eval", str(run), "--complexity", "2", "--complexity", "3", "--discretize", "--examples", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "access"
    assert [r["complexity"] for r in report["rows"]] == [2, 3]
    assert all(r["match"] is not None and 0.0 <= r["error"] <= 1.0 for r in report["rows"])

    # the trained controller exports to a program that plain PyTorch runs, with the run's outputs
    program_path = tmp_path / "access.pt2"
    assert main(["compile", str(spec_file), "--weights", str(run / "checkpoint.pt"), "-o", str(program_path)]) == 0
    program = torch.export.load(str(program_path)).module()
    model, _ = load_run(run)
    memory = torch.randint(0, 8, (5, 8), generator=torch.Generator().manual_seed(0))
    final, halting, output = program(memory)
    expected = model(memory)
    torch.testing.assert_close(final, expected.memory)
    assert torch.equal(output, expected.readout("halt"))
    assert main(["compile", str(spec_file), "--machine", "untasked", "--weights", str(run / "checkpoint.pt"),
                 "-o", str(program_path)]) == 1
    assert "trained on a different machine" in capsys.readouterr().err

    # --resume continues from the checkpoint to a larger step count
    assert main(["train", str(spec_file), "--out", str(run), "--resume", "--steps", "16", "--no-eval"]) == 0
    assert "done: 16 steps" in capsys.readouterr().out


def test_command_line_overrides_the_preset(spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    args = ["train", str(spec_file), "--out", str(run), "--steps", "4", "--seed", "3", "--set", "T=4",
            "--option", "lr=0.01", "--option", "log_every=2", "--no-eval"]
    assert main(args) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["steps"] == 4 and config["train"]["seed"] == 3 and config["train"]["lr"] == 0.01
    assert config["spec"]["overrides"] == {"M": 8, "R": 2, "T": 4}  # the sizes trained, written out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "{spec}", "--task", "sorting"], "unknown task 'sorting'"),
        (["train", "{spec}", "--machine", "untasked"], "names no task"),
        (["train", "{spec}", "--option", "lr=fast"], "'lr' must be float"),
        (["train", "{spec}", "--option", "warp=9"], "unknown --option setting 'warp'"),
        (["train", "{spec}", "--resume", "--out", "{tmp}/nothing"], "nothing to resume"),
        (["eval", "{tmp}"], "is not a run directory"),
        (["compile", "{spec}", "--machine", "untasked", "--weights", "{spec}", "-o", "{tmp}/m.pt2"], "is not a checkpoint"),
    ],
)
def test_bad_input_is_one_clear_error(argv: list[str], message: str, spec_file: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(spec=spec_file, tmp=tmp_path) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    assert "Traceback" not in err


def test_a_stalled_run_that_gives_up_says_so(spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(spec_file), "--out", str(tmp_path / "stalled"), "--no-eval", "--option", "stop.give_up_after=2",
                 "--option", "curriculum.threshold=0"]) == 0
    assert "gave up at step 2: the curriculum level had not risen for 2 steps" in capsys.readouterr().out
    assert main(["train", str(spec_file), "--out", str(tmp_path / "unsolved"), "--no-eval", "--option", "stop.solve_within=3",
                 "--option", "curriculum=false", "--option", "curriculum.threshold=0"]) == 0
    assert "gave up at step 3: the training task was not solved within 3 steps" in capsys.readouterr().out


def test_malformed_option_is_a_usage_error(spec_file: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", str(spec_file), "--option", "lr"])
    assert exc.value.code == 2


def test_reproduce_scores_every_seed(spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["reproduce", str(spec_file), "--seeds", "2", "--steps", "4", "--results", str(tmp_path / "results"),
            "--runs", str(tmp_path / "runs")]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "results" / "access.json").read_text())
    assert summary["seeds_tried"] == 2 and [s["seed"] for s in summary["seeds"]] == [0, 1]
    assert set(summary["reached"]) == {"train", "generalize", "discrete", "discrete_1000"}
    for seed in summary["seeds"]:
        if seed["bars"]["train"]:  # scored in full, to the integer machine alone at 1,000
            assert all(isinstance(v, bool) for v in seed["bars"].values())
            assert seed["table"][-1]["complexity"] == 1000 and seed["table"][-1]["error"] is None
        else:  # off the first bar: to three times the training size, the other bars not scored
            assert seed["bars"]["train"] is False and [seed["bars"][b] for b in BARS[1:]] == [None] * 3
            assert seed["table"][-1]["complexity"] == 3 * seed["table"][0]["complexity"]
        assert seed["steps"] == 4 and seed["steps_per_s"] > 0
    assert (tmp_path / "runs" / "access-access-s1" / "checkpoint.pt").exists()

    # `nramdsl results` renders the JSON as the README table, beside the paper's row (found by the task
    # inside, so a file named after its search sits beside it too)
    (tmp_path / "results" / "access-again.json").write_text((tmp_path / "results" / "access.json").read_text())
    capsys.readouterr()
    assert main(["results", "--results", str(tmp_path / "results")]) == 0
    lines = capsys.readouterr().out.splitlines()
    access = next(line for line in lines if line.startswith("| access |"))
    cells = [c.strip() for c in access.strip("|").split("|")]
    reached = summary["reached"]
    assert cells[1].startswith("len(A) ≤ 20") and cells[3] == "1" and cells[4] == "2"  # population of one, 2 members
    assert cells[5:9] == [f"{reached[b]}/2" for b in ("train", "generalize", "discrete", "discrete_1000")]
    every = sum(all(s["bars"].values()) for s in summary["seeds"])
    assert cells[9].startswith(f"{every}/2") and cells[10] == f"{every}/2"  # each seed is its own population
    assert any(line.startswith("| walkbst |") and "not run" in line for line in lines)
    assert any(line.startswith("| access-again | len(A) ≤ 20 /") for line in lines)
    assert any(line.startswith("- access: `nramdsl reproduce") for line in lines)


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.nram")),
                         ids=lambda p: p.name)
def test_every_example_preset_is_valid_and_fits_its_memory(path: Path) -> None:
    """`nramdsl train examples/X.nram` needs no flag: the preset's keys, task and complexity must all work."""
    from nramdsl.lang.frontend import load_file, resolve_machine
    from nramdsl.training.setup import configure, plan

    program = load_file(path)
    for machine, _ in program.machines():
        spec = resolve_machine(program, machine.name.value)
        if not spec.task:
            continue
        job = plan(spec, configure(spec))
        assert 1 <= job.complexity and job.task.min_memory(job.complexity) <= spec.memory


def test_reproduce_reuses_finished_seeds_and_runs_jobs_in_parallel(spec_file: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    base = ["reproduce", str(spec_file), "--steps", "4", "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs")]
    assert main(base + ["--seeds", "1"]) == 0
    first = json.loads((tmp_path / "results" / "access.json").read_text())["seeds"][0]
    seed0 = tmp_path / "runs" / "access-access-s0" / "checkpoint.pt"
    stamp = seed0.stat().st_mtime_ns
    capsys.readouterr()

    # two more seeds in two worker processes; seed 0 is reused, not retrained
    assert main(base + ["--seeds", "3", "--jobs", "2"]) == 0
    err = capsys.readouterr().err
    assert "seed 0: reusing" in err and "training seeds 1, 2, 2 at a time" in err
    summary = json.loads((tmp_path / "results" / "access.json").read_text())
    assert [s["seed"] for s in summary["seeds"]] == [0, 1, 2] and summary["seeds"][0] == first
    assert seed0.stat().st_mtime_ns == stamp
    assert all((tmp_path / "runs" / f"access-access-s{s}" / "result.json").exists() for s in (1, 2))

    # a setting added since, at its default, does not make a finished seed stale
    result = tmp_path / "runs" / "access-access-s0" / "result.json"
    saved = json.loads(result.read_text())
    del saved["key"]["config"]["stretch.complexity"]
    result.write_text(json.dumps(saved))
    assert main(base + ["--seeds", "1"]) == 0
    assert "seed 0: reusing" in capsys.readouterr().err
    # ... unless runs before it behaved otherwise than its default: PBT explored noise before pbt.noise existed
    saved = json.loads(result.read_text())
    del saved["key"]["config"]["pbt.noise"]
    result.write_text(json.dumps(saved))
    assert main(base + ["--seeds", "1"]) == 0
    assert "seed 0: training" in capsys.readouterr().err

    # a result.json of another shape is no result: trained again, not a traceback
    result.write_text(json.dumps({"key": ["not", "a", "key"], "rows": [1, 2]}))
    assert main(base + ["--seeds", "1"]) == 0
    assert "seed 0: training" in capsys.readouterr().err

    # other settings, or --fresh, train again
    assert main(base + ["--seeds", "1", "--option", "lr=0.01"]) == 0
    assert "seed 0: training" in capsys.readouterr().err
    assert main(base + ["--seeds", "1", "--option", "lr=0.01", "--fresh"]) == 0
    assert "seed 0: training" in capsys.readouterr().err
    assert main(base + ["--seeds", "1", "--jobs", "0"]) == 1


def test_a_larger_budget_resumes_the_runs_that_used_theirs_and_reuses_the_rest(spec_file: Path, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    def reproduce(runs: str, steps: int, *options: str) -> list[dict]:
        argv = ["reproduce", str(spec_file), "--seeds", "1", "--steps", str(steps), "--results", str(tmp_path / runs),
                "--runs", str(tmp_path / runs)]
        assert main(argv + [a for o in options for a in ("--option", o)]) == 0
        return json.loads((tmp_path / runs / "access.json").read_text())["seeds"]

    def same(a: dict, b: dict) -> bool:
        timing = {"wall_s", "steps_per_s", "eval_s"}
        return {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}

    reproduce("grown", 4)
    capsys.readouterr()
    grown = reproduce("grown", 9)
    assert "seed 0: resuming" in capsys.readouterr().err
    fresh = reproduce("fresh", 9)
    assert grown[0]["steps"] == 9 and same(grown[0], fresh[0])
    model_a, config = load_run(tmp_path / "grown" / "access-access-s0")
    model_b, _ = load_run(tmp_path / "fresh" / "access-access-s0")
    assert config["train"]["steps"] == 9
    assert all(torch.equal(p, q) for p, q in zip(model_a.parameters(), model_b.parameters()))

    # a run that gave up within its budget is what a longer run would be: reused as it is
    stalled = ("stop.give_up_after=2", "curriculum.threshold=0")
    first = reproduce("stalled", 4, *stalled)
    capsys.readouterr()
    assert first[0]["gave_up_at_step"] == 2 and reproduce("stalled", 50, *stalled) == first
    assert "seed 0: reusing" in capsys.readouterr().err
    # a smaller budget than the run used trains again
    reproduce("grown", 5)
    assert "seed 0: training" in capsys.readouterr().err


def test_a_search_killed_part_way_resumes_from_the_checkpoint_and_ends_as_an_unbroken_run(
        spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from nramdsl.training import population as population_module

    class Killed(Exception):
        pass

    def reproduce(runs: str, *options: str, steps: int = 9) -> list[dict]:
        argv = ["reproduce", str(spec_file), "--seeds", "2", "--population", "2", "--steps", str(steps), "--results",
                str(tmp_path / runs), "--runs", str(tmp_path / runs), "--option", "checkpoint_every=3"]
        assert main(argv + [a for o in options for a in ("--option", o)]) == 0
        return json.loads((tmp_path / runs / "access.json").read_text())["seeds"]

    real_step = population_module.Population.step

    def dies_at_step_5(self):
        if self.step_count == 5:  # after the checkpoint of step 3
            raise Killed
        return real_step(self)

    with monkeypatch.context() as patch:
        patch.setattr(population_module.Population, "step", dies_at_step_5)
        with pytest.raises(Killed):
            reproduce("killed")
    capsys.readouterr()
    resumed = reproduce("killed")
    assert "seeds 0-1: resuming" in capsys.readouterr().err
    fresh = reproduce("fresh")
    timing = {"wall_s", "steps_per_s", "eval_s"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in resumed] == \
        [{k: v for k, v in r.items() if k not in timing} for r in fresh]
    # other settings start the unit again rather than resume it under them
    with monkeypatch.context() as patch:
        patch.setattr(population_module.Population, "step", dies_at_step_5)
        with pytest.raises(Killed):
            reproduce("other")
    capsys.readouterr()
    reproduce("other", "lr=0.01")
    assert "seeds 0-1: training" in capsys.readouterr().err

    # a smaller budget than the one it was killed under: on from the checkpoint (step 3) when that lies within
    # it, ending as an unbroken run with that budget; afresh when the checkpoint lies past it
    for runs, steps, said in (("shorter", 6, "resuming"), ("shortest", 2, "training")):
        with monkeypatch.context() as patch:
            patch.setattr(population_module.Population, "step", dies_at_step_5)
            with pytest.raises(Killed):
                reproduce(runs)
        capsys.readouterr()
        finished = reproduce(runs, steps=steps)
        assert f"seeds 0-1: {said}" in capsys.readouterr().err
        unbroken = reproduce(f"{runs}-unbroken", steps=steps)
        assert [{k: v for k, v in r.items() if k not in timing} for r in finished] == \
            [{k: v for k, v in r.items() if k not in timing} for r in unbroken]


def test_machine_fingerprint_ignores_paths_and_comments_but_not_the_machine(tmp_path: Path) -> None:
    from nramdsl.training.unit import machine_fingerprint
    from nramdsl.lang.frontend import load_machine

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "tiny.nram").write_text(SPEC)
    (tmp_path / "b" / "tiny.nram").write_text("# the same machine, moved and commented\n\n" + SPEC)
    a = machine_fingerprint(load_machine(tmp_path / "a" / "tiny.nram", "access"))
    assert a == machine_fingerprint(load_machine(tmp_path / "b" / "tiny.nram", "access"))
    assert a != machine_fingerprint(load_machine(tmp_path / "a" / "tiny.nram", "access", {"memory": 9}))
    (tmp_path / "b" / "tiny.nram").write_text(SPEC.replace("(a + 1) mod M", "(a + 2) mod M"))
    assert a != machine_fingerprint(load_machine(tmp_path / "b" / "tiny.nram", "access"))


def test_the_error_split_by_an_input_cell_groups_each_case_by_its_value(spec_file: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # Access: cell 0 holds k on input. The split is checked against the cases run again one by one.
    spec = machine_from_text(SPEC, str(spec_file), "access")
    torch.manual_seed(3)
    model, task = NRAM(spec).eval(), get_task("access")
    budget = Budget(complexity=5, memory=8, timesteps=3)
    row = evaluate(model, task, budget, examples=40, batch=16, seed=5, discretize=True, by_cell=0)
    gen, memory, errors, d_errors = torch.Generator().manual_seed(5), [], [], []
    for n in (16, 16, 8):
        tb = task.generate(5, 8, n, gen)
        with torch.no_grad():
            errors.append(masked_error(model(tb.memory).readout("halt"), tb.target, tb.mask))
        d_pred = torch.from_numpy(run_discrete(model, tb.memory, 3, "halt").memory)
        d_errors.append(masked_error(d_pred, tb.target, tb.mask))
        memory.append(tb.memory)
    keys, errs, d_errs = torch.cat(memory)[:, 0], torch.cat(errors), torch.cat(d_errors)
    assert row.by_cell is not None
    assert [g.value for g in row.by_cell] == sorted(set(keys.tolist()))
    for g in row.by_cell:
        assert g.cases == int((keys == g.value).sum())
        assert g.error == pytest.approx(float(errs[keys == g.value].mean()))
        assert g.discrete_error == pytest.approx(float(d_errs[keys == g.value].mean()))
    assert len({g.error for g in row.by_cell}) > 1  # the cases of different values fare differently here
    assert evaluate(model, task, budget, examples=40, batch=16, seed=5).by_cell is None

    # the command line prints a line per row, and a cell outside the memory is one clear error
    run = tmp_path / "run"
    assert main(["train", str(spec_file), "--out", str(run), "--no-eval"]) == 0
    assert main(["eval", str(run), "--complexity", "3", "--examples", "8", "--by-cell", "0"]) == 0
    out = capsys.readouterr().out
    assert "error by the input value of cell 0" in out and "complexity 3: " in out
    assert main(["eval", str(run), "--by-cell", "8"]) == 1
    assert "cell 8 is not in every row's memory: it must be in 0 .. 7" in capsys.readouterr().err


def test_the_readme_table_is_what_nramdsl_results_prints_of_results(capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).parent.parent
    monkeypatch.chdir(root)
    assert main(["results"]) == 0
    printed = capsys.readouterr().out.strip()
    readme = (root / "README.md").read_text()
    after = readme.split("<!-- results table: the output of `nramdsl results` -->", 1)[1].strip()
    # the README's block is the command's output verbatim: a result recorded without it, or a number edited by
    # hand in either place, shows here
    assert after.startswith(printed + "\n\n"), "README.md's results table is not `nramdsl results`'s output"
