"""K training runs as one batched model: the engine behind `train` (K = 1) and `train --population K`.

The circuit has no parameters, so it runs once over the members' examples flattened into one batch; only
the controller's weights carry a member axis (`nramdsl.machine.stacked`). Everything else is per member
(`nramdsl.training.member`): seed and initial weights (member k starts from the weights a single run with
its seed gets), example stream, curriculum, phase, global-norm clip, gradient noise, entropy and sharpening
schedule, skip and rollback of non-finite updates, stop rules, and its own Adam steps (`adam`). A member
whose run ends leaves the batch, so the cost falls as members finish. Members whose batches differ in
shape (the stretch phase fits memory and stretches T) run as one group per shape.

One step (`Population.step`), for every member still training:
  1. phase and batch  enter the stretch phase when due (`schedule`), draw the sizes and the examples;
  2. forward          one fuzzy run per group of equal shape, the objective per member (`objective`);
  3. update           one backward; per member: finite check, norm clip, noise, its Adam update;
  4. record           error, zero streak, curriculum, probe, metrics line; checkpoint; stop rules;
  5. explore          population-based training, when on (`pbt`).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch

from nramdsl.machine.fuzzy import NRAM, NRAMOutput
from nramdsl.machine.stacked import StackedController
from nramdsl.tasks import TaskBatch
from nramdsl.training.adam import MemberAdam
from nramdsl.training.evaluate import evaluate, masked_error, scaled_budget
from nramdsl.training.member import Member
from nramdsl.training.objective import entropy_coef, objective
from nramdsl.training.pbt import Copy, explore, explored, pairs
from nramdsl.training.rundir import POPULATION_FORMAT
from nramdsl.training.schedule import BatchSize, Phase, advance, draw_batch_size, largest_trained, phase_of
from nramdsl.training.setup import Job
from nramdsl.training.stopping import rule_that_fires, stays_ended

DTYPES = {"float32": torch.float32, "float64": torch.float64}
PROBE_EXAMPLES = 32  # test cases per probe: a fixed set, so successive probes are comparable


@dataclass
class Planned:
    """A member's part of one step: its phase, batch sizes and examples."""

    member: Member
    phase: Phase
    size: BatchSize
    batch: TaskBatch
    out: NRAMOutput | None = None  # its rows of the group's forward run
    objective: torch.Tensor | None = None


class Population:
    def __init__(self, job: Job, seeds: list[int]) -> None:
        cfg = job.config
        self.job, self.seeds = job, list(seeds)
        self.device, self.dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
        models = []
        for seed in seeds:  # each member's initial weights: those of a single run with its seed
            torch.manual_seed(seed)
            models.append(NRAM(job.spec, cfg.model))
        # the circuit every group runs on (compiled when `compile` is on) ...
        self.scratch = models[0].to(device=self.device, dtype=self.dtype)
        self.scratch.compile_steps = cfg.compile
        # ... and a single model that holds one member's weights at a time, for its probes (never compiled:
        # a probe runs at other sizes, each of which would compile anew)
        self.single = NRAM(job.spec, cfg.model).to(device=self.device, dtype=self.dtype)
        self.controllers = StackedController([m.controller for m in models]).to(device=self.device, dtype=self.dtype)
        self.params = list(self.controllers.parameters())
        self.optimizer = MemberAdam(self.params, len(seeds))
        self.members = [Member.fresh(k, self.member_job(job, seed), self.device) for k, seed in enumerate(seeds)]
        self.snapshots: list[dict[str, Any] | None] = [self.member_snapshot(m) for m in self.members]
        self.step_count = 0  # population steps taken (a member's own count stops when it does)
        self.t0 = time.perf_counter()  # a member's wall time is the time since then (set back on a resume)
        self.pbt_gen = torch.Generator().manual_seed(min(seeds) * 1_000_003 + 3)  # PBT's draws

    @staticmethod
    def member_job(job: Job, seed: int) -> Job:
        return Job(job.spec, job.config.replace(seed=seed), job.task, job.complexity)

    # ---- which members train
    def finished(self, m: Member) -> bool:
        return m.progress.step >= m.cfg.steps or stays_ended(m.progress, m.cfg)

    def alive(self) -> list[Member]:
        return [m for m in self.members if not self.finished(m)]

    # ---- one step
    def step(self) -> list[dict[str, Any]]:
        """One update of every member still training; returns the metrics rows logged this step."""
        planned = [self._plan(m) for m in self.alive()]
        self.optimizer.zero_grad()
        total = None
        for group in _groups(planned):
            self._forward(group)
            for p in group:
                total = p.objective if total is None else total + p.objective
        assert total is not None
        total.backward()
        grad_norms = self._update(planned)
        self.step_count += 1
        recorded = [self._record(p, grad_norms[p.member.index]) for p in planned]
        if self.step_count % self.job.config.checkpoint_every == 0:
            for m in planned:
                if m.member.progress.consecutive_skips == 0:
                    self.snapshots[m.member.index] = self.member_snapshot(m.member)
        rows = []
        for p, (row, logs) in zip(planned, recorded):
            if self._stop(p.member) or logs:  # a run's last step is always in its metrics
                rows.append(row)
        pbt = self.job.config.pbt
        if pbt.every and self.step_count % pbt.every == 0:
            rows.extend(self._pbt_round())
        return rows

    def _pbt_round(self) -> list[dict[str, Any]]:
        """Population-based training: the bottom quantile copies the top, then explores (`pbt`)."""
        cfg = self.job.config.pbt
        events = []
        for loser, winner in pairs(self.alive(), cfg.quantile, self.pbt_gen):
            values = explore({key: winner.cfg.get(key) for key in explored(cfg.noise)}, cfg.resample, cfg.perturb,
                             self.pbt_gen)
            self.load_member_snapshot(loser, self.member_snapshot(winner), state=False)
            loser.curriculum.load_state_dict(winner.curriculum.state_dict())
            for name in ("zero_streak", "solved_at", "stretched_at", "probe_zero", "probe_error"):
                setattr(loser.progress, name, getattr(winner.progress, name))
            loser.with_settings(values)
            row = Copy(self.step_count, loser.progress.step, loser.index, loser.seed, winner.seed).row(values)
            loser.lineage.append(row["pbt"])
            events.append(row)
        for m in self.members:
            m.errors.clear()
        return events

    def _plan(self, m: Member) -> Planned:
        m.progress = advance(m.progress, m.cfg)
        phase = phase_of(m.progress, m.cfg)
        size = draw_batch_size(m.job, phase, m.curriculum, m.data_gen)
        batch = m.job.draws.generate(size.complexities, size.memory, m.cfg.batch, m.data_gen)
        return Planned(m, phase, size, batch)

    def _forward(self, group: list[Planned]) -> None:
        """One fuzzy run for the group's members; each member's rows and objective."""
        members = torch.tensor([p.member.index for p in group])
        memory, target, mask = (torch.cat(xs).to(self.device) for xs in
                                zip(*((p.batch.memory, p.batch.target, p.batch.mask) for p in group)))
        out = self.scratch.run(self.controllers.select(members), memory, target, mask, dtype=self.dtype,
                               timesteps=group[0].size.timesteps, value_entropy=any(p.phase.sharpen for p in group))
        n_dist = self.scratch.wiring.n_distributions
        start = 0
        for p in group:
            rows = slice(start, start + p.batch.memory.shape[0])
            start = rows.stop
            p.out = _rows(out, rows)
            p.objective = objective(p.out, p.member.cfg, p.member.progress.step, p.phase, n_dist)

    def _update(self, planned: list[Planned]) -> dict[int, float]:
        """Per member: skip a non-finite objective or gradient, else clip to its norm, add its noise and take
        its Adam step. Returns each member's gradient norm (nan when skipped)."""
        K = len(self.members)
        finite = torch.zeros(K, dtype=torch.bool)
        for p in planned:
            finite[p.member.index] = bool(torch.isfinite(p.objective))
        for w in self.params:
            if w.grad is not None:
                finite &= torch.isfinite(w.grad).flatten(1).all(dim=1).cpu()
        norms = self._clip(planned, finite)
        for p in planned:
            m = p.member
            if finite[m.index] and m.cfg.noise.eta > 0:
                sigma = math.sqrt(m.cfg.noise.eta / (1 + m.progress.step) ** m.cfg.noise.gamma)
                for i, w in enumerate(self.params):
                    if w.grad is not None:
                        noise = torch.randn(w.shape[1:], generator=m.noise_gen, device=self.device, dtype=self.dtype)
                        if m.cfg.noise.relative:
                            noise.mul_(self.optimizer.rms(i, m.index, w.grad[m.index]))
                        w.grad[m.index].add_(noise * sigma)
        updated = self.optimizer.step([m.cfg.lr for m in self.members], finite)
        out = {}
        for p in planned:
            m = p.member
            out[m.index] = norms[m.index] if updated[m.index] else float("nan")
            if updated[m.index]:
                m.progress.consecutive_skips = m.progress.rollbacks_in_a_row = 0
            elif finite[m.index]:  # the update itself overflowed (an lr far too large): back to the last good state
                m.progress.skipped += 1
                self._rollback(m)
            else:  # a non-finite loss or gradient: skip, and after `max_skips` in a row roll back
                m.progress.skipped += 1
                m.progress.consecutive_skips += 1
                if m.progress.consecutive_skips > m.cfg.max_skips:
                    self._rollback(m)
        return out

    def _clip(self, planned: list[Planned], finite: torch.Tensor) -> list[float]:
        """Each member's global L2 norm clip (torch's clip_grad_norm_, per member); returns the norms."""
        grads = [w.grad for w in self.params if w.grad is not None]
        if not grads:
            return [0.0] * len(self.members)
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads]).norm(dim=0)  # [K]
        max_norm = torch.tensor([m.cfg.grad_norm if m.cfg.grad_norm > 0 else math.inf for m in self.members],
                                dtype=norms.dtype, device=norms.device)
        coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        coef = torch.where(finite.to(coef.device), coef, torch.ones_like(coef))
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
        return norms.tolist()

    def _rollback(self, m: Member) -> None:
        """Restore the member's last good snapshot (weights, optimizer, generators, curriculum), but keep
        counting forward: a rollback restores weights, not time."""
        keep = m.progress
        snapshot = self.snapshots[m.index]
        assert snapshot is not None
        self.load_member_snapshot(m, snapshot)
        m.progress.step, m.progress.skipped = keep.step, keep.skipped
        m.progress.rollbacks, m.progress.consecutive_skips = keep.rollbacks + 1, 0
        m.progress.rollbacks_in_a_row = keep.rollbacks_in_a_row + 1

    def _record(self, p: Planned, grad_norm: float) -> tuple[dict[str, Any], bool]:
        """Count the member's step: error, zero streak, curriculum, probe. Returns its metrics row and whether
        the step is one it logs."""
        m, cfg, out = p.member, p.member.cfg, p.out
        assert out is not None
        prog, cur = m.progress, m.curriculum
        with torch.no_grad():
            target, mask = p.batch.target.to(self.device), p.batch.mask.to(self.device)
            err = masked_error(out.readout(cfg.readout), target, mask)
        m.train_error = float(err.mean())
        m.errors.append(m.train_error)
        step = prog.step
        if cur.at_max and m.train_error == 0.0:
            prog.zero_streak += 1
            if prog.solved_at is None:
                prog.solved_at = prog.step
        else:
            prog.zero_streak = 0
        cur.update(_curriculum_error(cfg.curriculum.error, err, p.batch.complexity, cur.difficulty), prog.step)
        prog.step += 1
        prog.wall = time.perf_counter() - self.t0
        probed = bool(cfg.stop.probe_every and prog.step % cfg.stop.probe_every == 0 and cur.at_max)
        if probed:
            prog.probe_error = probe(self.member_model(m), m.job, largest_trained(m.job, p.phase))
            prog.probe_zero = prog.probe_zero + 1 if prog.probe_error == 0 else 0
        logs = prog.step % cfg.log_every == 0 or prog.step == cfg.steps or probed
        top = p.batch.complexity.to(err.device) == cur.levels[-1]
        row = {
            "step": prog.step,
            "loss": out.loss.item(),  # type: ignore[union-attr]
            "train_error": m.train_error,
            "top_level_error": float(err[top].mean()) if bool(top.any()) else None,
            "level": cur.difficulty,
            "probe_error": prog.probe_error,
            "grad_norm": grad_norm,
            "entropy": out.entropy.item(),  # type: ignore[union-attr]
            "entropy_coef": entropy_coef(cfg, step, p.phase),
            "sharpening": p.phase.sharpen,
            "stretched": p.phase.stretched,
            "skipped": prog.skipped,
            "rollbacks": prog.rollbacks,
            "wall": round(prog.wall, 3),
        }
        if len(self.members) > 1:
            row.update(member=m.index, seed=m.seed)
        return row, logs

    def _stop(self, m: Member) -> bool:
        """Apply the stop rules to a member; True when one ends its run at this step."""
        rule = rule_that_fires(m.progress, m.cfg, m.curriculum)
        if rule is None or m.progress.stopped is not None:
            return False
        m.progress.stopped = rule.name
        if rule.gives_up:
            m.progress.gave_up_at = m.progress.step
        return True

    # ---- one member as a single model, and its state
    def member_model(self, m: Member) -> NRAM:
        """The single model holding member m's weights (valid until the next call)."""
        self.single.controller.load_state_dict(self.controllers.member_state(m.index))
        return self.single

    def member_snapshot(self, m: Member) -> dict[str, Any]:
        return {"member": m.state_dict(), "controller": self.controllers.member_state(m.index),
                "optimizer": self.optimizer.member_state(m.index)}

    def load_member_snapshot(self, m: Member, snapshot: dict[str, Any], state: bool = True) -> None:
        if state:
            m.load_state_dict(snapshot["member"])
        self.controllers.load_member(m.index, snapshot["controller"])
        self.optimizer.load_member(m.index, snapshot["optimizer"])

    def state_dict(self) -> dict[str, Any]:
        """The whole population: what checkpoint.pt holds (tensors, numbers, strings and containers only)."""
        return {
            "format": POPULATION_FORMAT,
            "step": self.step_count,
            "seeds": list(self.seeds),
            "controller": {name: w.detach().clone() for name, w in zip(self.controllers.names, self.params)},
            "optimizer": self.optimizer.state_dict(),
            "members": [m.state_dict() for m in self.members],
            "pbt_gen": self.pbt_gen.get_state(),
            "config": self.job.config.settings(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["seeds"]) != self.seeds:
            raise ValueError(f"the checkpoint holds seeds {state['seeds']}, not {self.seeds}")
        with torch.no_grad():
            for name, w in zip(self.controllers.names, self.params):
                w.copy_(state["controller"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        for m, ms in zip(self.members, state["members"]):
            m.load_state_dict(ms)
        self.step_count = int(state["step"])
        if "pbt_gen" in state:
            self.pbt_gen.set_state(state["pbt_gen"])
        self.snapshots = [self.member_snapshot(m) for m in self.members]
        self.t0 = time.perf_counter() - max(m.progress.wall for m in self.members)


def _rows(out: NRAMOutput, rows: slice) -> NRAMOutput:
    """One member's rows of a group's run."""

    def cut(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x[rows]

    return NRAMOutput(memory=out.memory[rows], halting=out.halting[rows], predictions=out.predictions[rows],
                      example_loss=cut(out.example_loss), example_entropy=cut(out.example_entropy),
                      example_value_entropy=cut(out.example_value_entropy))


def _groups(planned: list[Planned]) -> list[list[Planned]]:
    """Members whose batches have the same shape (memory, steps) run together."""
    by_shape: dict[tuple[int, int], list[Planned]] = defaultdict(list)
    for p in planned:
        by_shape[p.size.memory, p.size.timesteps].append(p)
    return list(by_shape.values())


def _curriculum_error(rule: str, err: torch.Tensor, complexities: torch.Tensor, difficulty: int) -> float:
    """The error that decides whether D rises: over the whole batch, or over its examples of difficulty ≤ D."""
    if rule == "batch":
        return float(err.mean())
    upto = complexities.to(err.device) <= difficulty  # rule == "current"
    return float(err[upto].mean()) if bool(upto.any()) else float("inf")


def probe(model: NRAM, job: Job, trained: int) -> float:
    """Error at twice the largest complexity trained on (`trained`), with twice the step budget scaled from
    the training complexity, on a fixed test set; fuzzy and discretized, the larger counts.

    A model can reach zero training error with a length-specific schedule that never halts; this held-out
    check at a larger size is what tells an algorithm apart (selection by generalization).
    """
    spec, task, cfg, c = job.spec, job.task, job.config, job.complexity
    budget = scaled_budget(task, 2 * trained, c, spec.memory, spec.timesteps, slack=2.0)
    if budget.memory > 4 * spec.memory:  # keep the probe cheap next to a training step
        budget = scaled_budget(task, task.max_complexity(4 * spec.memory), c, spec.memory, spec.timesteps, 2.0)
    row = evaluate(model, task, budget, examples=PROBE_EXAMPLES, seed=cfg.seed + 99991, readout=cfg.readout,
                   discretize=True)
    assert row.error is not None
    return max(row.error, row.discrete_error or 0.0)
