"""The training loop: exact resume, NaN handling, atomic checkpoints, settings validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nramdsl.errors import NramError
from nramdsl.lang.frontend import machine_from_text
from nramdsl.machine.fuzzy import NRAM
from nramdsl.tasks import get_task
from nramdsl.training.config import TrainConfig, coerce_settings
from nramdsl.training.loop import load_run, train
from nramdsl.training.rundir import load_checkpoint, save_checkpoint
from nramdsl.training.setup import training_complexity

SPEC = (Path(__file__).parent / "specs" / "tiny.nram").read_text()


@pytest.fixture
def spec():
    return machine_from_text(SPEC, "tiny.nram")


def small_config(**kw) -> TrainConfig:
    """Settings by key, `__` for the dot: small_config(noise__eta=0.3) sets `noise.eta`."""
    base = {"task": "access", "steps": 24, "batch": 8, "log_every": 2, "checkpoint_every": 6, "noise.eta": 0.3,
            "seed": 7}
    base.update({k.replace("__", "."): v for k, v in kw.items()})
    return TrainConfig.from_settings(base)


def metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("wall")
    return rows


def record_forward_sizes(monkeypatch) -> list[tuple[int, int]]:
    """Make every training forward pass append (memory size, timesteps) to the returned list."""
    seen: list[tuple[int, int]] = []
    real_run = NRAM.run

    def recording_run(self, controller, memory, *args, timesteps=None, **kw):
        seen.append((int(memory.shape[1]), timesteps or self.spec.timesteps))
        return real_run(self, controller, memory, *args, timesteps=timesteps, **kw)

    monkeypatch.setattr(NRAM, "run", recording_run)
    return seen


class Interrupt(Exception):
    pass


def test_resume_after_a_crash_matches_an_uninterrupted_run(spec, tmp_path: Path) -> None:
    cfg = small_config()
    full = train(spec, cfg, tmp_path / "full")

    def crash(row: dict) -> None:
        if row["step"] == 16:  # after the checkpoint at step 12; steps 13-16 are lost and redone
            raise Interrupt

    with pytest.raises(Interrupt):
        train(spec, cfg, tmp_path / "resumed", on_log=crash)
    resumed = train(spec, cfg, tmp_path / "resumed", resume=True)
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    assert metrics(tmp_path / "full") == metrics(tmp_path / "resumed")
    assert resumed.steps == 24


def test_non_finite_updates_are_skipped_and_repeated_ones_roll_back(spec, tmp_path: Path, monkeypatch) -> None:
    calls = {"n": 0}
    run = NRAM.run

    def poisoned(self, *args, **kwargs):
        out = run(self, *args, **kwargs)
        calls["n"] += 1
        if 8 <= calls["n"] < 16 and out.example_loss is not None:  # eight NaN losses in a row
            out.example_loss = out.example_loss * float("nan")
        return out

    monkeypatch.setattr(NRAM, "run", poisoned)
    result = train(spec, small_config(max_skips=3), tmp_path / "run")
    assert result.skipped == 8
    assert result.rollbacks == 2  # after the 4th and the 8th consecutive skip
    assert all(bool(torch.isfinite(p).all()) for p in result.model.parameters())
    assert metrics(tmp_path / "run")[-1]["skipped"] == 8


def test_checkpoint_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1})
    with pytest.raises(AttributeError):
        save_checkpoint(path, {"step": 2, "bad": lambda: None})  # cannot be pickled: fails mid-write
    assert load_checkpoint(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_settings_errors_are_reported_together() -> None:
    with pytest.raises(NramError) as exc:
        coerce_settings({"stpes": 3, "lr": "fast", "batch": 2.5})
    msg = exc.value.format()
    assert "unknown train setting 'stpes'" in msg
    assert "'lr' must be float" in msg
    assert "'batch' must be int" in msg
    assert coerce_settings({"steps": "300", "curriculum": "off", "lr": 1}) == {"steps": 300, "curriculum": False, "lr": 1.0}
    with pytest.raises(NramError, match="unknown train setting 'noise_eta' \\(did you mean 'noise.eta'\\?\\)"):
        coerce_settings({"noise_eta": 0.3})
    with pytest.raises(NramError, match="train setting 'memory_fit' was retired: only the stretch phase fits memory"):
        coerce_settings({"memory_fit": True})


def test_training_reduces_the_error_and_the_run_reloads(spec, tmp_path: Path) -> None:
    cfg = small_config(steps=150, batch=16, log_every=10, checkpoint_every=50, noise__eta=0.0, lr=0.01)
    result = train(spec, cfg, tmp_path / "run")
    rows = metrics(tmp_path / "run")
    first, last = rows[0]["train_error"], sum(r["train_error"] for r in rows[-3:]) / 3
    assert last < first / 2
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["members"][0]["counters"]["step"] == 150
    model, config = load_run(tmp_path / "run")
    for p, q in zip(model.parameters(), result.model.parameters()):
        assert torch.equal(p, q)
    assert config["task"] == "access"


def test_stretch_phase_starts_after_a_zero_error_streak(spec, tmp_path: Path, monkeypatch) -> None:
    """After `stretch_after` error-free batches at the top level, batches run with slack × T in fitted memory."""
    import nramdsl.training.population as train_module

    seen = record_forward_sizes(monkeypatch)
    # every batch counts as solved, so the streak is the step count (the curriculum is off: top level at once)
    monkeypatch.setattr(train_module, "masked_error", lambda pred, target, mask: torch.zeros(pred.shape[0]))
    cfg = small_config(steps=8, complexity=3, curriculum=False, stretch__after=3, stretch__slack=2.5, noise__eta=0.0,
                       log_every=1, stretch__sharpen=0.1)
    train(spec, cfg, tmp_path / "run")
    rows = metrics(tmp_path / "run")
    assert [r["stretched"] for r in rows] == [False] * 3 + [True] * 5
    # sharpening starts with the stretch and replaces the entropy bonus by a penalty
    assert [r["sharpening"] for r in rows] == [False] * 3 + [True] * 5
    assert all(r["entropy_coef"] > 0 for r in rows[:3]) and all(r["entropy_coef"] == 0 for r in rows[3:])
    assert [t for _, t in seen] == [3] * 3 + [8] * 5  # ceil(2.5 × 3)
    fitted = get_task("access").min_memory(training_complexity(get_task("access"), cfg, 8))
    assert fitted < 8 and [m for m, _ in seen] == [8] * 3 + [fitted] * 5


def test_a_run_that_stopped_early_stays_stopped_when_resumed_with_a_larger_budget(spec, tmp_path: Path, monkeypatch) -> None:
    import nramdsl.training.population as train_module

    # every probe is error-free: two in a row (steps 2 and 4) stop the run
    monkeypatch.setattr(train_module, "probe", lambda model, job, trained: 0.0)
    cfg = small_config(steps=12, curriculum=False, stop__probe_every=2, noise__eta=0.0)
    result = train(spec, cfg, tmp_path / "run")
    assert (result.steps, result.stopped, result.gave_up_at) == (4, "probe", None)  # not at the budget
    again = train(spec, cfg.replace(steps=40), tmp_path / "run", resume=True)
    assert again.steps == 4
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["steps"] == 40
    saved = load_run(tmp_path / "run")[1]["spec"]
    assert saved["source"] == SPEC and saved["machine"] == "access"  # a resume keeps the saved spec
    # with the rule off, it trains on
    assert train(spec, cfg.replace(steps=6).set({"stop.on_probe": False}), tmp_path / "run", resume=True).steps == 6


def test_a_run_stalled_below_the_top_level_gives_up(spec, tmp_path: Path) -> None:
    """`give_up_after`: no curriculum rise for that many steps below the top level ends the run early."""
    # threshold 0: no error is below it, so D never rises
    cfg = small_config(steps=20, complexity=3, curriculum__threshold=0.0, stop__give_up_after=5, noise__eta=0.0)
    result = train(spec, cfg, tmp_path / "run")
    assert result.gave_up_at == 5 and result.steps == 5 and result.level == 1
    # resuming it changes nothing; with give_up_after = 0 it trains on
    result = train(spec, cfg, tmp_path / "run", resume=True)
    assert result.gave_up_at == 5 and result.steps == 5
    result = train(spec, cfg.set({"stop.give_up_after": 0}), tmp_path / "run", resume=True)
    assert result.steps == 20
    # at the top level (curriculum off) a run never gives up
    result = train(spec, cfg.set({"curriculum": False}), None)
    assert result.gave_up_at is None and result.steps == 20


def test_a_run_that_has_not_solved_its_task_within_solve_within_gives_up(spec, tmp_path: Path, monkeypatch) -> None:
    """`solve_within` covers what `give_up_after` cannot: a run at the top level from the start."""
    import nramdsl.training.population as train_module

    cfg = small_config(steps=20, curriculum=False, stop__solve_within=6, noise__eta=0.0)
    monkeypatch.setattr(train_module, "masked_error", lambda pred, target, mask: torch.ones(pred.shape[0]))
    result = train(spec, cfg, tmp_path / "run")
    assert (result.gave_up_at, result.steps, result.stopped) == (6, 6, "unsolved")
    assert train(spec, cfg.replace(steps=40), tmp_path / "run", resume=True).steps == 6  # stays given up
    # a run that solves its task (one error-free batch) in time trains on to its budget
    monkeypatch.setattr(train_module, "masked_error", lambda pred, target, mask: torch.zeros(pred.shape[0]))
    result = train(spec, cfg, None)
    assert result.gave_up_at is None and result.solved_at is not None and result.steps == 20


def test_a_solved_run_whose_probes_stay_wrong_gives_up_after_generalize_within(spec, tmp_path: Path,
                                                                               monkeypatch) -> None:
    """`generalize_within`: solved at the training size, but never error-free at twice it, in N steps."""
    import nramdsl.training.population as train_module

    cfg = small_config(steps=30, curriculum=False, stop__generalize_within=8, stop__probe_every=2, noise__eta=0.0)
    monkeypatch.setattr(train_module, "masked_error", lambda pred, target, mask: torch.zeros(pred.shape[0]))
    monkeypatch.setattr(train_module, "probe", lambda model, job, trained: 0.25)
    result = train(spec, cfg, tmp_path / "run")
    assert result.solved_at is not None and result.stopped == "ungeneralized"
    assert result.gave_up_at == result.steps == result.solved_at + 8
    assert train(spec, cfg.replace(steps=40), tmp_path / "run", resume=True).steps == result.steps  # stays ended
    # the same run whose probes come out error-free stops on them instead, a success
    monkeypatch.setattr(train_module, "probe", lambda model, job, trained: 0.0)
    result = train(spec, cfg, None)
    assert result.stopped == "probe" and result.gave_up_at is None and result.steps < result.solved_at + 8
    # and with the rule off, a run whose probes stay wrong trains to its budget
    monkeypatch.setattr(train_module, "probe", lambda model, job, trained: 0.25)
    assert train(spec, cfg.set({"stop.generalize_within": 0}), None).steps == 30


@pytest.mark.parametrize("rule, expected", [("batch", 0.5), ("current", 1 / 3)])
def test_curriculum_error_rule_picks_the_examples_that_move_the_level(rule: str, expected: float) -> None:
    from nramdsl.training.population import _curriculum_error

    err = torch.tensor([0.0, 0.5, 1.0, 0.5])
    complexities = torch.tensor([1, 2, 3, 2])
    assert _curriculum_error(rule, err, complexities, difficulty=2) == pytest.approx(expected)


def test_word_settings_must_be_one_of_their_choices() -> None:
    with pytest.raises(NramError, match="'readout' must be one of halt, last, argmax"):
        TrainConfig(readout="end")  # type: ignore[arg-type]
    with pytest.raises(NramError, match="'curriculum.error' must be one of batch, current"):
        TrainConfig.from_settings({"curriculum.error": "level"})


def test_stretch_complexity_trains_longer_inputs_with_scaled_steps(spec, tmp_path: Path, monkeypatch) -> None:
    """`stretch_complexity = 2`: stretched batches hold complexities up to 2× the training one, in fitted
    memory, with the stretched T scaled by the batch's largest complexity."""
    import nramdsl.training.population as train_module

    seen = record_forward_sizes(monkeypatch)
    monkeypatch.setattr(train_module, "masked_error", lambda pred, target, mask: torch.zeros(pred.shape[0]))
    cfg = small_config(steps=10, complexity=3, curriculum=False, stretch__after=2, stretch__complexity=2.0,
                       noise__eta=0.0, log_every=1)
    train(spec, cfg, None)
    access = get_task("access")
    assert seen[:2] == [(8, 3), (8, 3)]
    largest = [m - access.min_memory(1) + 1 for m, _ in seen[2:]]  # access: M = complexity + 2
    assert all(1 <= c <= 6 for c in largest) and max(largest) > 3
    assert [t for _, t in seen[2:]] == [max(6, -(-6 * c // 3)) for c in largest]


def test_stretch_memory_range_draws_sizes_between_fitted_and_the_machine(spec, tmp_path: Path, monkeypatch) -> None:
    import nramdsl.training.population as train_module

    seen = record_forward_sizes(monkeypatch)
    monkeypatch.setattr(train_module, "masked_error", lambda pred, target, mask: torch.zeros(pred.shape[0]))
    cfg = small_config(steps=40, complexity=3, curriculum=False, stretch__after=2, stretch__memory="range",
                       noise__eta=0.0, log_every=5)
    train(spec, cfg, None)
    fitted = get_task("access").min_memory(3)  # 5: every batch at complexity 3 without a curriculum
    sizes = {m for m, _ in seen[2:]}
    assert seen[:2] == [(8, 3), (8, 3)] and sizes <= set(range(fitted, 9)) and len(sizes) > 2
