"""Populations: K seeds trained as one batched model, each member an independent run in every respect.

The backbone is differential: member k of a population against `train` with seed k (float64, tight
tolerance), and a population of one against a plain training loop written here with torch.optim.Adam.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nramdsl.training.adam as adam_module
import nramdsl.training.population as population_module
from nramdsl.errors import NramError
from nramdsl.lang.frontend import load_machine, machine_from_text
from nramdsl.machine.fuzzy import NRAM
from nramdsl.training.config import TrainConfig
from nramdsl.training.loop import load_run, train, train_population
from nramdsl.training.rundir import RunDir
from nramdsl.tasks import get_task
from nramdsl.training.setup import configure, plan

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = (Path(__file__).parent / "specs" / "tiny.nram").read_text()


@pytest.fixture
def tiny():
    return machine_from_text(TINY, "tiny.nram")


def lstm_machine():
    """The Swap machine (LSTM controller), small enough for a test."""
    return load_machine(EXAMPLES / "swap.nram", overrides={"M": 8, "T": 4})


def settings(spec, **kw) -> TrainConfig:
    base = {"steps": 12, "batch": 4, "dtype": "float64", "log_every": 1, "checkpoint_every": 5, "noise.eta": 0.3,
            "complexity": 3}
    base.update({k.replace("__", "."): v for k, v in kw.items()})
    return configure(spec, base)


def losses(rows: list[dict], member: int | None = None) -> list[float]:
    return [r["loss"] for r in rows if "loss" in r and (member is None or r.get("member") == member)]


@pytest.mark.parametrize("machine,relative", [("mlp", False), ("lstm", False), ("mlp", True)])
def test_member_k_is_the_single_run_with_seed_k(machine: str, relative: bool, tiny) -> None:
    spec = tiny if machine == "mlp" else lstm_machine()
    cfg = settings(spec, noise__relative=relative)  # relative noise reads each member's own Adam state
    rows: list[dict] = []
    members = train_population(spec, cfg, [3, 4, 5], None, on_log=rows.append)
    for k, seed in enumerate([3, 4, 5]):
        single: list[dict] = []
        alone = train(spec, cfg.replace(seed=seed), None, on_log=single.append)
        assert len(losses(single)) == 12
        torch.testing.assert_close(torch.tensor(losses(rows, k)), torch.tensor(losses(single)), rtol=1e-10, atol=0)
        for p, q in zip(members[k].model.parameters(), alone.model.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_a_population_of_one_is_a_plain_adam_training_loop(tiny) -> None:
    """An independent loop (torch.optim.Adam, the model's forward, the paper's objective and aids) gives the
    engine's losses: the engine's per-member Adam, clipping and objective are the textbook ones."""
    cfg = settings(tiny, **{"noise.eta": 0.0, "curriculum": False, "stretch.after": 0, "stop.probe_every": 0})
    rows: list[dict] = []
    train(tiny, cfg, None, on_log=rows.append)

    torch.manual_seed(cfg.seed)
    model = NRAM(tiny, cfg.model).double()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 1)
    from nramdsl.tasks import get_task
    from nramdsl.training.curriculum import Curriculum

    curriculum = Curriculum.up_to(3)
    curriculum.level = 2  # no curriculum: the top level from the start
    expected = []
    for step in range(cfg.steps):
        batch = get_task("access").generate(curriculum.sample(cfg.batch, gen), tiny.memory, cfg.batch, gen)
        out = model(batch.memory, batch.target, batch.mask)
        T = out.halting.shape[1]
        expected_t = (out.halting * torch.arange(1, T + 1, dtype=torch.float64)).sum(1).mean()
        total = out.loss - cfg.entropy.coef * cfg.entropy.decay**step * out.entropy + cfg.halt_penalty * expected_t / T
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_norm)
        opt.step()
        expected.append(out.loss.item())
    torch.testing.assert_close(torch.tensor(losses(rows)), torch.tensor(expected), rtol=1e-9, atol=0)


def test_members_in_different_shapes_run_as_groups_and_stay_independent(tiny, monkeypatch) -> None:
    """In the stretch phase each member draws its own memory size ("range"): the population runs one
    forward pass per shape, and every member still equals its single run."""
    monkeypatch.setattr(population_module, "masked_error", lambda pred, target, mask: torch.zeros(pred.shape[0]))
    cfg = settings(tiny, curriculum=False, **{"stretch.after": 2, "stretch.memory": "range", "stop.probe_every": 0})
    shapes: list[list[tuple[int, int]]] = []
    real_run = NRAM.run

    def recording_run(self, controller, memory, *args, **kw):
        shapes[-1].append((int(memory.shape[0]), int(memory.shape[1])))
        return real_run(self, controller, memory, *args, **kw)

    monkeypatch.setattr(NRAM, "run", recording_run)
    real_step = population_module.Population.step

    def counting_step(self):
        shapes.append([])
        return real_step(self)

    monkeypatch.setattr(population_module.Population, "step", counting_step)
    rows: list[dict] = []
    train_population(tiny, cfg, [0, 1, 2, 3], None, on_log=rows.append)
    assert any(len(groups) > 1 for groups in shapes)  # several shapes in one step
    assert all(sum(n for n, _ in groups) == 4 * cfg.batch for groups in shapes)  # every member, once
    for k in range(4):
        single: list[dict] = []
        train(tiny, cfg.replace(seed=k), None, on_log=single.append)
        torch.testing.assert_close(torch.tensor(losses(rows, k)), torch.tensor(losses(single)), rtol=1e-10, atol=0)


def test_members_that_stop_leave_the_batch(tiny, monkeypatch) -> None:
    """Member seed 0 passes its probes (steps 2 and 4) and stops; from then on the batch holds the others only."""
    cfg = settings(tiny, steps=10, curriculum=False, **{"stop.probe_every": 2})
    monkeypatch.setattr(population_module, "probe", lambda model, job, trained: 0.0 if job.config.seed == 0 else 0.5)
    sizes: list[int] = []
    real_run = NRAM.run

    def recording_run(self, controller, memory, *args, **kw):
        sizes.append(int(memory.shape[0]))
        return real_run(self, controller, memory, *args, **kw)

    monkeypatch.setattr(NRAM, "run", recording_run)
    results = train_population(tiny, cfg, [0, 1, 2], None)
    assert [(r.steps, r.stopped) for r in results] == [(4, "probe"), (10, None), (10, None)]
    assert sizes == [3 * cfg.batch] * 4 + [2 * cfg.batch] * 6


def test_a_population_resumes_exactly_and_exports_its_members(tiny, tmp_path: Path) -> None:
    cfg = settings(tiny, steps=14, **{"stop.probe_every": 0})
    full_rows: list[dict] = []
    full = train_population(tiny, cfg, [0, 1, 2], tmp_path / "full", on_log=full_rows.append)

    class Interrupt(Exception):
        pass

    def crash(row: dict) -> None:
        if row["step"] == 8:  # after the checkpoint at step 5: steps 6-8 are lost and redone
            raise Interrupt

    with pytest.raises(Interrupt):
        train_population(tiny, cfg, [0, 1, 2], tmp_path / "resumed", on_log=crash)
    resumed = train_population(tiny, cfg, [0, 1, 2], tmp_path / "resumed", resume=True)
    for a, b in zip(full, resumed):
        assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))

    def metrics(run: Path) -> list[dict]:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "wall"} for r in rows]

    assert metrics(tmp_path / "full") == metrics(tmp_path / "resumed")
    # every member is an ordinary run directory: load_run and `nramdsl eval` read it
    for r in full:
        member_dir = tmp_path / "full" / "members" / f"s{r.seed}"
        model, config = load_run(member_dir)
        assert config["train"]["seed"] == r.seed and "population" not in config
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), r.model.parameters()))
        assert {row["member"] for row in RunDir(member_dir).read_metrics()} == {full.index(r)}
    with pytest.raises(NramError, match="population of 3"):
        load_run(tmp_path / "full")


def test_eval_member_reads_a_population_checkpoint_like_the_members_folder(tiny, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`nramdsl eval RUN --member SEED` scores a member from the population's checkpoint, which is what there is
    while the population trains: the same rows as its members/sSEED folder, written when it finishes."""
    from nramdsl.cli import main

    cfg = settings(tiny, steps=6, **{"stop.probe_every": 0})
    train_population(tiny, cfg, [3, 4], tmp_path / "pop")
    capsys.readouterr()

    def rows(*argv: str) -> list[dict]:
        assert main(["eval", *argv, "--complexity", "3", "--examples", "8", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        return [out["train"], *out["rows"]]

    for seed in (3, 4):
        assert rows(str(tmp_path / "pop"), "--member", str(seed)) == rows(str(tmp_path / "pop" / "members" / f"s{seed}"))
    assert main(["eval", str(tmp_path / "pop"), "--member", "5"]) == 1
    assert "holds no member with seed 5 (seeds: [3, 4])" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # argparse would keep the last --member and score seed 4 alone
        main(["eval", str(tmp_path / "pop"), "--member", "3", "--member", "4"])
    assert usage.value.code == 2
    assert "--member given twice: eval scores one member; run it once per member" in capsys.readouterr().err


def test_a_non_finite_member_skips_alone_and_rolls_back(tiny, monkeypatch) -> None:
    cfg = settings(tiny, steps=16, **{"max_skips": 2, "stop.probe_every": 0, "noise.eta": 0.0})
    real_run = NRAM.run
    calls = {"n": 0}

    def poisoned(self, controller, memory, *args, **kw):
        out = real_run(self, controller, memory, *args, **kw)
        calls["n"] += 1
        if 4 <= calls["n"] < 12 and out.example_loss is not None:  # member 1's rows, eight steps in a row
            B = memory.shape[0] // 3
            out.example_loss = torch.cat([out.example_loss[:B], out.example_loss[B:2 * B] * float("nan"),
                                          out.example_loss[2 * B:]])
        return out

    monkeypatch.setattr(NRAM, "run", poisoned)
    rows: list[dict] = []
    results = train_population(tiny, cfg, [0, 1, 2], None, on_log=rows.append)
    assert [r.skipped for r in results] == [0, 8, 0]
    assert results[1].rollbacks == 2  # after the 3rd and the 6th skip in a row
    assert all(bool(torch.isfinite(p).all()) for r in results for p in r.model.parameters())
    monkeypatch.setattr(NRAM, "run", real_run)
    for k in (0, 2):  # the others never noticed
        single: list[dict] = []
        train(tiny, cfg.replace(seed=k), None, on_log=single.append)
        torch.testing.assert_close(torch.tensor(losses(rows, k)), torch.tensor(losses(single)), rtol=1e-10, atol=0)


def test_an_infinite_learning_rate_never_reaches_the_weights(tiny, tmp_path: Path) -> None:
    cfg = settings(tiny, steps=40, **{"stop.probe_every": 0}).set({"lr": float("inf")})
    result = train(tiny, cfg, tmp_path / "run")
    assert result.stopped == "diverged" and result.steps == cfg.max_rollbacks  # each overflow rolled back at once
    state = RunDir(tmp_path / "run").load()
    assert all(bool(torch.isfinite(w).all()) for w in state["controller"].values())


def test_population_based_training_copies_the_best_and_records_the_lineage(tiny, tmp_path: Path, monkeypatch) -> None:
    cfg = settings(tiny, steps=12, **{"pbt.every": 4, "pbt.quantile": 0.5, "stop.probe_every": 0})
    copies: list[tuple[int, int, dict]] = []
    real_round = population_module.Population._pbt_round

    def watching_round(self):
        before = {m.index: self.controllers.member_state(m.index) for m in self.members}
        events = real_round(self)
        for e in events:
            winner = next(m for m in self.members if m.seed == e["pbt"]["copied"])
            copies.append((e["member"], winner.index, before[winner.index]))
            after = self.controllers.member_state(e["member"])
            assert all(torch.equal(after[name], w) for name, w in before[winner.index].items())
            loser = self.members[e["member"]]
            assert loser.cfg.lr == e["pbt"]["settings"]["lr"] and loser.curriculum.level == winner.curriculum.level
        return events

    monkeypatch.setattr(population_module.Population, "_pbt_round", watching_round)
    rows: list[dict] = []
    train_population(tiny, cfg, [0, 1, 2, 3], tmp_path / "pbt", on_log=rows.append)
    events = [r for r in rows if "pbt" in r]
    assert len(events) == 2 * 2  # two rounds (steps 4 and 8; 12 is the end), half of four members each
    assert all(set(e["pbt"]["settings"]) == {"lr", "entropy.coef"} for e in events)  # η only with pbt.noise
    state = RunDir(tmp_path / "pbt").load()
    lineage = [len(m["lineage"]) for m in state["members"]]
    assert sum(lineage) == 4
    # a copy took the winner's weights of that moment (checked in the round), then trained on with its own
    # settings and generators
    assert len(copies) == 4 and all(loser != winner for loser, winner, _ in copies)
    resumed_rows: list[dict] = []
    train_population(tiny, cfg.replace(steps=12), [0, 1, 2, 3], tmp_path / "pbt", resume=True,
                     on_log=resumed_rows.append)
    assert resumed_rows == []  # every member used its budget: nothing left to do


def test_pbt_without_noise_leaves_every_members_eta_as_configured(tiny, tmp_path: Path) -> None:
    """`pbt.noise = false` (the default): rounds that resample every setting still never give a member
    gradient noise."""
    cfg = settings(tiny, steps=12, **{"pbt.every": 2, "pbt.quantile": 0.5, "pbt.resample": 1.0,
                                      "pbt.noise": False, "stop.probe_every": 0})
    rows: list[dict] = []
    train_population(tiny, cfg, [0, 1, 2, 3], tmp_path / "pbt", on_log=rows.append)
    events = [r for r in rows if "pbt" in r]
    assert len(events) == 5 * 2 and all(set(e["pbt"]["settings"]) == {"lr", "entropy.coef"} for e in events)
    state = RunDir(tmp_path / "pbt").load()
    assert [m["settings"]["noise.eta"] for m in state["members"]] == [cfg.noise.eta] * 4
    # on, the same rounds draw η afresh from 0, 0.01, 0.3 and 1
    train_population(tiny, cfg.set({"pbt.noise": True}), [0, 1, 2, 3], tmp_path / "noisy", on_log=rows.append)
    assert any(m["settings"]["noise.eta"] != cfg.noise.eta for m in RunDir(tmp_path / "noisy").load()["members"])


def _update_after(spec, **kw) -> tuple[torch.Tensor, list[float]]:
    """Seed 0's weights after 8 steps minus its initial weights, and its gradient norms before the clip."""
    cfg = settings(spec, steps=8, curriculum=False, stop__probe_every=0, stretch__after=0, **kw)
    rows: list[dict] = []
    run = train(spec, cfg, None, on_log=rows.append)
    torch.manual_seed(cfg.seed)
    start = NRAM(spec, cfg.model).double()
    delta = torch.cat([(p - q).detach().flatten() for p, q in zip(run.model.parameters(), start.parameters())])
    return delta, [r["grad_norm"] for r in rows if "grad_norm" in r]


def test_relative_noise_is_on_each_weights_gradient_scale_and_absolute_noise_is_not(tiny, monkeypatch) -> None:
    """Adam's update does not change when the gradient is scaled (its ε aside, made negligible here), so noise
    drawn on Adam's own scale (`noise.relative`) leaves a run the same under a norm clip ten times smaller;
    absolute noise then weighs ten times more against the gradient and the run changes. Both clips are active
    at every step (checked)."""
    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / a.norm())

    monkeypatch.setattr(adam_module, "EPS", 1e-30)  # 1e-8 is not small against this model's finest gradients

    noiseless, norms = _update_after(tiny, noise__eta=0.0, grad_norm=1e-2)
    runs = {}
    for relative in (True, False):
        eta = 0.3 if relative else 1e-8  # absolute: σ = 1e-4, about a coordinate's share of a norm of 1e-2
        for clip in (1e-2, 1e-3):
            runs[relative, clip], more = _update_after(tiny, noise__eta=eta, noise__relative=relative, grad_norm=clip)
            norms += more
    assert min(norms) > 1e-2  # every run's clip scales every step's gradient: the premise of the comparison
    assert rel(runs[True, 1e-2], noiseless) > 0.05  # the noise does move the run ...
    assert rel(runs[True, 1e-2], runs[True, 1e-3]) < 1e-9  # ... the same way whatever the gradient's scale
    assert rel(runs[False, 1e-2], runs[False, 1e-3]) > 0.05  # absolute noise: not so


def test_train_population_scores_the_members_that_solved(tiny, capsys: pytest.CaptureFixture[str]) -> None:
    """`nramdsl train --population K` ends with the four bars of every member that solved its task."""
    from nramdsl.cli import _score_members
    from nramdsl.training.unit import BARS
    from nramdsl.training.setup import plan

    cfg = settings(tiny, steps=3, **{"stop.probe_every": 0})
    results = train_population(tiny, cfg, [0, 1, 2], None)
    _score_members(plan(tiny, cfg), [results[0], results[2]], 4)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["seed", "train", "generalize", "(<=", "50)", "discrete", "=", "fuzzy", "integer",
                                "machine", "at", "1,000"]
    cells = [line.split() for line in lines[2:]]
    assert [c[0] for c in cells] == ["0", "2"] and all(set(c[1:]) <= {"yes", "no"} and len(c) == 1 + len(BARS)
                                                        for c in cells)


def test_a_run_that_stops_between_log_lines_still_logs_its_last_step(tiny, monkeypatch) -> None:
    monkeypatch.setattr(population_module, "masked_error", lambda pred, target, mask: torch.ones(pred.shape[0]))
    cfg = settings(tiny, steps=20, log_every=4, curriculum=False, **{"stop.solve_within": 6, "stop.probe_every": 0})
    rows: list[dict] = []
    result = train(tiny, cfg, None, on_log=rows.append)
    assert result.steps == 6 and [r["step"] for r in rows] == [4, 6]


def test_pbt_ranks_by_level_then_probe_then_training_error() -> None:
    from types import SimpleNamespace

    from nramdsl.training.pbt import rank

    def member(name: str, level: int, probe: float | None, errors: list[float]) -> SimpleNamespace:
        return SimpleNamespace(name=name, curriculum=SimpleNamespace(level=level),
                               progress=SimpleNamespace(probe_error=probe), errors=errors)

    members = [member("exact here, wrong at 2x", 7, 0.06, [0.0, 0.0]), member("lower level", 6, None, [0.0]),
               member("general, noisier", 7, 0.01, [0.2, 0.1]), member("not probed yet", 7, None, [0.0]),
               member("nan", 7, 0.01, [float("nan")])]
    assert [m.name for m in rank(members)] == ["general, noisier", "nan", "exact here, wrong at 2x",
                                               "not probed yet", "lower level"]


def test_pbt_origins_follow_copies_of_copies_and_read_a_round_from_before_it() -> None:
    from nramdsl.training.pbt import origins

    # round 100: 3 copies 0; round 200: 2 copies 3 (so 0's weights), 1 copies 2 (2's own, before the round)
    copies = [(200, 1, 2), (100, 3, 0), (200, 2, 3)]
    assert origins([0, 1, 2, 3], copies) == {0: 0, 1: 2, 2: 0, 3: 0}
    assert origins([0, 1, 2, 3], list(reversed(copies))) == {0: 0, 1: 2, 2: 0, 3: 0}
    assert origins([4, 5], []) == {4: 4, 5: 5}  # no PBT: every member is its own
    assert origins([0, 1], [(100, 1, 7)]) is None  # a copy from outside the population


def test_a_copy_row_reads_back_as_the_copy_it_was_written_from() -> None:
    """population.py writes each exploit with `Copy.row`; curves and origins read it with `read_copy`."""
    from nramdsl.training.pbt import Copy, read_copy

    copy = Copy(round=200, step=187, member=3, seed=9, copied=4)
    row = json.loads(json.dumps(copy.row({"lr": 0.002})))  # as it comes back from metrics.jsonl
    assert read_copy(row) == copy and row["pbt"]["settings"] == {"lr": 0.002}
    assert read_copy({"step": 5, "member": 0, "seed": 9, "train_error": 0.5, "level": 1}) is None  # not a copy
    for damaged in ({**row, "pbt": {**row["pbt"], "copied": "4"}}, {**row, "pbt": [200, 4]},
                    {k: v for k, v in row.items() if k != "seed"}, {**row, "pbt": {**row["pbt"], "step": True}}):
        with pytest.raises(ValueError):
            read_copy(damaged)


def test_pbt_origins_in_the_metrics_are_the_copies_the_population_made(tiny, tmp_path: Path, monkeypatch) -> None:
    """The origins read back from a PBT run's metrics (what `reproduce` records per member) are the ones
    tracked live, round by round, from the members whose weights were actually copied."""
    from nramdsl.training.search import weight_origins
    from nramdsl.training.unit import Unit

    cfg = settings(tiny, steps=12, **{"pbt.every": 2, "pbt.quantile": 0.5, "stop.probe_every": 0})
    truth = {s: s for s in range(4)}
    real_round = population_module.Population._pbt_round

    def watching_round(self):
        events = real_round(self)
        before = dict(truth)
        for e in events:
            truth[e["seed"]] = before[e["pbt"]["copied"]]
        return events

    monkeypatch.setattr(population_module.Population, "_pbt_round", watching_round)
    train_population(tiny, cfg, [0, 1, 2, 3], tmp_path / "pbt")
    found = weight_origins(Unit((0, 1, 2, 3), RunDir(tmp_path / "pbt")))
    assert found == truth and any(truth[s] != s for s in truth)
    (tmp_path / "pbt" / "metrics.jsonl").write_text('{"step": 2, "seed": 1, "pbt": {"step": 2, "copied": "0"}}\n')
    assert weight_origins(Unit((0, 1, 2, 3), RunDir(tmp_path / "pbt"))) is None  # not an origin: no figure


def test_training_draws_from_the_configured_sampler_and_evaluation_from_the_task(monkeypatch) -> None:
    """`sampler = "leaf"` on WalkBST: every training batch's path ends at a leaf; the job's task, which
    probes, evaluation and the bars use, is still the task's own distribution."""
    spec = load_machine(EXAMPLES / "walkbst.nram", overrides={"M": 14, "T": 4})
    memories: list[torch.Tensor] = []
    real_run = NRAM.run

    def recording_run(self, controller, memory, *args, **kw):
        memories.append(memory.detach().clone())
        return real_run(self, controller, memory, *args, **kw)

    monkeypatch.setattr(NRAM, "run", recording_run)
    for sampler, all_leaves in (("leaf", True), ("", False)):
        memories.clear()
        cfg = settings(spec, steps=3, batch=16, curriculum=False, sampler=sampler, **{"stop.probe_every": 0})
        train_population(spec, cfg, [0], None)
        rows = [row for m in memories for row in m.long().tolist()]
        assert len(rows) == 3 * 16

        def ends_at_leaf(row: list[int]) -> bool:
            node, cell = row[0], 2
            while row[cell]:
                node, cell = row[node + row[cell]], cell + 1
            return row[node + 1] == row[node + 2] == 0

        assert all(map(ends_at_leaf, rows)) == all_leaves
    assert plan(spec, cfg.replace(sampler="leaf")).task is get_task("walkbst")


def test_a_sampler_the_task_lacks_is_refused_where_it_is_written(tiny) -> None:
    spec = machine_from_text(TINY.replace("train {", 'train { sampler = "leaf",'), "tiny.nram")
    with pytest.raises(NramError, match="task 'access' has no sampler 'leaf' \\(it draws only its own instances\\)") as err:
        plan(spec, configure(spec))
    assert err.value.span == spec.where["train.sampler"]
