"""The training loop: Adam on the paper's loss with the paper's training aids (§4.1, App. B).

One step, top to bottom (`Trainer.step`):
  1. phase     enter the stretch phase when it is due (`schedule`);
  2. batch     draw each example's complexity, the memory and the step budget, then the examples;
  3. forward   the fuzzy machine on the batch, with the loss;
  4. update    the objective (`objective`), backward, global-norm clip, gradient noise, Adam; a non-finite
               loss or gradient skips the update, and `max_skips` skips in a row roll back; an update that
               leaves the weights non-finite is rolled back at once, and `max_rollbacks` in a row stop the run;
  5. record    training error, zero streak, curriculum, probe, metrics line, checkpoint;
  6. stop      the first stop rule that fires ends the run (`stopping`).

The run directory (`rundir`) holds the config, the metrics and the checkpoint; everything random comes
from generators saved in the checkpoint, so `resume` continues bit for bit as if the run had never stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

import torch

from nramdsl.lang.frontend import load_ref
from nramdsl.lang.spec import MachineSpec, SpecRef
from nramdsl.machine.fuzzy import NRAM, NRAMOutput
from nramdsl.training.config import TrainConfig
from nramdsl.training.display import ProgressDisplay
from nramdsl.training.evaluate import evaluate, masked_error, scaled_budget
from nramdsl.training.objective import entropy_coef, objective
from nramdsl.training.interrupt import StopRequest, TrainingInterrupted
from nramdsl.training.rundir import RunDir, metrics_line
from nramdsl.training.schedule import Phase, advance, draw_batch_size, largest_trained, phase_of
from nramdsl.training.setup import Job, plan
from nramdsl.training.state import Progress, TrainState, load_weights
from nramdsl.training.stopping import rule_that_fires, stays_ended

DTYPES = {"float32": torch.float32, "float64": torch.float64}
PROBE_EXAMPLES = 32  # test cases per probe: a fixed set, so successive probes are comparable


@dataclass
class TrainResult:
    model: NRAM
    steps: int  # updates done (including skipped ones)
    train_error: float  # the last batch's training error
    level: int  # final curriculum difficulty
    skipped: int
    rollbacks: int
    wall: float
    solved_at: int | None  # first step whose batch error was 0 at the top curriculum level
    gave_up_at: int | None = None  # the step at which a give-up rule stopped the run
    stopped: str | None = None  # the stop rule that ended it early (None: it used its budget)


def train(
    spec: MachineSpec,
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = False,
    origin: SpecRef | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train a machine on a task; returns the trained model and a summary.

    `origin` (default: `spec.ref`, set by the front end) is saved in config.json so that
    `nramdsl eval RUN_DIR` can rebuild the machine. `on_log` sees every metrics row.
    """
    trainer = Trainer(plan(spec, cfg), RunDir(out_dir) if out_dir is not None else None, origin or spec.ref)
    trainer.start(resume)
    with StopRequest() as stop, ProgressDisplay(cfg.steps, trainer.state.progress.step, enabled=progress) as display:
        while not trainer.finished() and not stop.requested:
            row = trainer.step()
            if row is not None:
                if on_log:
                    on_log(row)
                display.update(row)
    result = trainer.finish()
    if stop.requested:  # Ctrl-C: the step ended and the checkpoint is written
        raise TrainingInterrupted(result.steps, trainer.run_dir.path if trainer.run_dir else None)
    return result


class Trainer:
    """One run: its job, its state, its run directory and the step that advances it."""

    def __init__(self, job: Job, run_dir: RunDir | None, origin: SpecRef | None = None) -> None:
        cfg = job.config
        self.job, self.cfg, self.run_dir, self.origin = job, cfg, run_dir, origin
        self.device, self.dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
        torch.manual_seed(cfg.seed)  # the controller's initial weights
        model = NRAM(job.spec, cfg.model).to(device=self.device, dtype=self.dtype)
        self.state = TrainState.fresh(model, cfg, job.complexity, self.device)
        self.params = list(model.parameters())
        self.metrics: IO[str] | None = None
        self.last_good: dict[str, Any] | None = None  # the rollback point of a run without a directory
        self.train_error = float("nan")
        self.t_start = 0.0

    # ---- start and finish
    def start(self, resume: bool) -> None:
        """A fresh run, or the one in the run directory continued from its checkpoint."""
        run = self.run_dir
        if run is None:
            self.last_good = self.state.state_dict(self.cfg)
        else:
            run.check_writable()
            run.remove_temporaries()  # of writes a killed run never finished
            resuming = resume and run.has_checkpoint()
            if resuming:
                self.state.load_state_dict(run.load())
                if self.origin is None:  # train(..., resume=True) from Python: keep the machine saved at the start
                    self.origin = SpecRef.from_json(run.read_config().get("spec", {}))
            self.metrics = run.start_metrics(self.state.progress.step if resuming else None)
            # the settings now in force (a resume may have raised `steps`)
            run.write_config(run_config(self.job, self.origin))
            if not resuming:
                run.save(self.state.state_dict(self.cfg))
        self.t_start = time.perf_counter() - self.state.progress.wall

    def finished(self) -> bool:
        p = self.state.progress
        return p.step >= self.cfg.steps or stays_ended(p, self.cfg)

    def finish(self) -> TrainResult:
        if self.metrics is not None:
            self.metrics.close()
        if not _finite(self.params):  # never end on, or save, weights that are not finite
            self._rollback()
        if self.run_dir is not None:
            self.run_dir.save(self.state.state_dict(self.cfg))
        p, cur = self.state.progress, self.state.curriculum
        return TrainResult(self.state.model, p.step, self.train_error, cur.difficulty, p.skipped, p.rollbacks, p.wall,
                           p.solved_at, p.gave_up_at, p.stopped)

    # ---- one step
    def step(self) -> dict[str, Any] | None:
        """One update; returns the metrics row when this step logs one."""
        s, cfg, job = self.state, self.cfg, self.job
        s.progress = advance(s.progress, cfg)
        phase = phase_of(s.progress, cfg)
        step = s.progress.step
        size = draw_batch_size(job, phase, s.curriculum, s.data_gen)
        batch = job.task.generate(size.complexities, size.memory, cfg.batch, s.data_gen)
        memory, target, mask = (x.to(self.device) for x in (batch.memory, batch.target, batch.mask))
        s.model.train()
        out = s.model(memory, target, mask, value_entropy=phase.sharpen, timesteps=size.timesteps)
        grad_norm = self._update(objective(out, cfg, step, phase, s.model.wiring.n_distributions))
        with torch.no_grad():
            err = masked_error(out.readout(cfg.readout), target, mask)
        probed = self._record(err, size.complexities, phase)
        row = None
        if s.progress.step % cfg.log_every == 0 or s.progress.step == cfg.steps or probed:
            row = self._row(out, err, size.complexities, grad_norm, phase, step)
            if self.metrics is not None:
                self.metrics.write(metrics_line(row))
                self.metrics.flush()
        if s.progress.step % cfg.checkpoint_every == 0:
            if self.run_dir is not None:
                self.run_dir.save(s.state_dict(cfg))
            elif s.progress.consecutive_skips == 0 and _finite(self.params):
                self.last_good = s.state_dict(cfg)
        rule = rule_that_fires(s.progress, cfg, s.curriculum)
        if rule is not None:
            s.progress.stopped = rule.name
            if rule.gives_up:
                s.progress.gave_up_at = s.progress.step
        return row

    def _update(self, total: torch.Tensor) -> float:
        """Backward, clip, noise and Adam; a non-finite loss or gradient skips the update (and returns nan)."""
        s, cfg = self.state, self.cfg
        s.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if not (bool(torch.isfinite(total)) and _grads_finite(self.params)):
            s.progress.skipped += 1
            s.progress.consecutive_skips += 1
            if s.progress.consecutive_skips > cfg.max_skips:
                self._rollback()
            return float("nan")
        max_norm = cfg.grad_norm if cfg.grad_norm > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
        if cfg.noise.eta > 0:
            sigma = math.sqrt(cfg.noise.eta / (1 + s.progress.step) ** cfg.noise.gamma)
            for p in self.params:
                if p.grad is not None:
                    noise = torch.randn(p.shape, generator=s.noise_gen, device=self.device, dtype=self.dtype)
                    p.grad.add_(noise * sigma)
        s.optimizer.step()
        if not _finite(self.params):  # the update itself overflowed (an lr far too large): undo it
            s.progress.skipped += 1
            self._rollback()
            return float("nan")
        s.progress.consecutive_skips = s.progress.rollbacks_in_a_row = 0
        return grad_norm

    def _rollback(self) -> None:
        """Restore the last checkpoint's weights and generators, but keep counting forward: a rollback
        restores weights, not time."""
        s = self.state
        keep = s.progress
        s.load_state_dict(self.run_dir.load() if self.run_dir is not None else self.last_good)  # type: ignore[arg-type]
        s.progress.step, s.progress.skipped = keep.step, keep.skipped
        s.progress.rollbacks, s.progress.consecutive_skips = keep.rollbacks + 1, 0
        s.progress.rollbacks_in_a_row = keep.rollbacks_in_a_row + 1

    def _record(self, err: torch.Tensor, complexities: torch.Tensor, phase: Phase) -> bool:
        """Count the step: error, zero streak, curriculum, wall time and the probe. Returns whether it probed."""
        s, cfg = self.state, self.cfg
        p, cur = s.progress, s.curriculum
        self.train_error = float(err.mean())
        if cur.at_max and self.train_error == 0.0:
            p.zero_streak += 1
            if p.solved_at is None:
                p.solved_at = p.step
        else:
            p.zero_streak = 0
        cur.update(_curriculum_error(cfg.curriculum.error, err, complexities, cur.difficulty), p.step)
        p.step += 1
        p.wall = time.perf_counter() - self.t_start
        probed = bool(cfg.stop.probe_every and p.step % cfg.stop.probe_every == 0 and cur.at_max)
        if probed:
            p.probe_error = probe(s.model, self.job, largest_trained(self.job, phase))
            p.probe_zero = p.probe_zero + 1 if p.probe_error == 0 else 0
        return probed

    def _row(self, out: NRAMOutput, err: torch.Tensor, complexities: torch.Tensor, grad_norm: float, phase: Phase,
             step: int) -> dict[str, Any]:
        s = self.state
        assert out.loss is not None and out.entropy is not None
        top = complexities.to(err.device) == s.curriculum.levels[-1]
        return {
            "step": s.progress.step,
            "loss": out.loss.item(),
            "train_error": self.train_error,
            "top_level_error": float(err[top].mean()) if bool(top.any()) else None,
            "level": s.curriculum.difficulty,
            "probe_error": s.progress.probe_error,
            "grad_norm": grad_norm,
            "entropy": out.entropy.item(),
            "entropy_coef": entropy_coef(self.cfg, step, phase),
            "sharpening": phase.sharpen,
            "stretched": phase.stretched,
            "skipped": s.progress.skipped,
            "rollbacks": s.progress.rollbacks,
            "wall": round(s.progress.wall, 3),
        }


def _grads_finite(params: list[torch.nn.Parameter]) -> bool:
    return all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)


def _finite(params: list[torch.nn.Parameter]) -> bool:
    """Every weight finite, in one device sync."""
    return bool(torch.stack([torch.isfinite(p.detach()).all() for p in params]).all()) if params else True


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
    model.train()
    assert row.error is not None
    return max(row.error, row.discrete_error or 0.0)


def run_config(job: Job, origin: SpecRef | None) -> dict[str, Any]:
    """config.json: what `load_run` and `nramdsl eval` need to rebuild the run's machine and task."""
    spec = job.spec
    return {"train": job.config.settings(), "spec": origin.pinned(spec).to_json() if origin else {}, "task": job.task.name,
            "complexity": job.complexity, "memory": spec.memory, "timesteps": spec.timesteps}


def load_run(run_dir: str | Path, *, skip_via: bool = False) -> tuple[NRAM, dict[str, Any]]:
    """The trained model of a run directory, and its config.json. `skip_via`: run `via` gates on their built-in
    kernels, so nothing beside the run's spec is imported (`MachineSpec.without_via`)."""
    run = RunDir(run_dir)
    config = run.read_config()
    cfg = TrainConfig.from_settings(config["train"], where="config.json")
    spec = load_ref(SpecRef.from_json(config["spec"]))
    model = NRAM(spec.without_via() if skip_via else spec, cfg.model).to(dtype=DTYPES[cfg.dtype])
    load_weights(model, run.load(), run.checkpoint)
    model.eval()
    return model, config
