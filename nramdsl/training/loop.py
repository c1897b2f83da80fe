"""Training runs: `train` (one seed) and `train_population` (K seeds as one batched model), and `load_run`.

Both drive a `Population` (K = 1 for `train`) through its run directory (`rundir`): config.json, the
metrics lines, and checkpoint.pt, written atomically every `checkpoint_every` steps and at the end.
Everything random comes from generators saved in the checkpoint, so `resume` continues bit for bit as if
the run had never stopped. A population's members are also written out as ordinary run directories
(`RUN/members/sSEED`), which `nramdsl eval` reads like any other run.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

import torch

from nramdsl.errors import NramError
from nramdsl.lang.frontend import load_ref
from nramdsl.lang.spec import MachineSpec, SpecRef
from nramdsl.machine.fuzzy import NRAM
from nramdsl.training.config import TrainConfig
from nramdsl.training.display import ProgressDisplay, population_stats
from nramdsl.training.interrupt import StopRequest, TrainingInterrupted
from nramdsl.training.member import Member
from nramdsl.training.population import DTYPES, Population
from nramdsl.training.rundir import POPULATION_FORMAT, RunDir, legacy_to_population, metrics_line
from nramdsl.training.setup import Job, check_size, plan

MEMBERS = "members"  # a population's members, each an ordinary run directory: RUN/members/sSEED


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
    seed: int = 0


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
    """Train a machine on a task with `cfg.seed`; returns the trained model and a summary.

    `origin` (default: `spec.ref`, set by the front end) is saved in config.json so that
    `nramdsl eval RUN_DIR` can rebuild the machine. `on_log` sees every metrics row.
    """
    return train_population(spec, cfg, [cfg.seed], out_dir, resume=resume, progress=progress, origin=origin,
                            on_log=on_log)[0]


def train_population(
    spec: MachineSpec,
    cfg: TrainConfig,
    seeds: list[int],
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = False,
    origin: SpecRef | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> list[TrainResult]:
    """Train one member per seed, as one batched model; member k is the run `train` would do with seed k
    (population-based training aside). Returns each member's result, in seed order."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"a population needs distinct seeds, got {seeds}")
    job = plan(spec, cfg)
    check_size(spec, job.config, len(seeds))
    run_dir = RunDir(out_dir) if out_dir is not None else None
    with run_dir.lock() if run_dir is not None else contextlib.nullcontext():
        return _train(Driver(Population(job, seeds), run_dir, origin or spec.ref), cfg, resume, progress, on_log)


def _train(driver: Driver, cfg: TrainConfig, resume: bool, progress: bool,
           on_log: Callable[[dict[str, Any]], None] | None) -> list[TrainResult]:
    """Start the driver's population, step it to its end or a Ctrl-C, finish it (the caller holds the folder)."""
    seeds = driver.population.seeds
    driver.start(resume)
    desc = "train" if len(seeds) == 1 else f"population of {len(seeds)}"
    with StopRequest() as stop, ProgressDisplay(cfg.steps, driver.population.step_count, enabled=progress,
                                                desc=desc) as display:
        while driver.population.alive() and not stop.requested:
            t0 = time.perf_counter()
            rows = driver.step()
            for row in rows:
                if on_log:
                    on_log(row)
            display.update(population_stats(driver.population, time.perf_counter() - t0), rows)
    results = driver.finish()
    if stop.requested:  # Ctrl-C: the step ended and the checkpoint is written
        raise TrainingInterrupted(driver.population.step_count, driver.run_dir.path if driver.run_dir else None)
    return results


class Driver:
    """A population and its run directory: start (fresh or resumed), step, checkpoint, finish."""

    def __init__(self, population: Population, run_dir: RunDir | None, origin: SpecRef | None) -> None:
        self.population, self.run_dir, self.origin = population, run_dir, origin
        self.metrics: IO[str] | None = None

    def start(self, resume: bool) -> None:
        run, pop = self.run_dir, self.population
        if run is None:
            return
        run.check_writable()
        run.remove_temporaries()  # of writes a killed run never finished
        resuming = resume and run.has_checkpoint()
        if resuming:
            state = run.load()
            try:
                if "format" not in state:  # a run directory from before populations
                    state = legacy_to_population(state, pop)
                pop.load_state_dict(state)
                for m in pop.members:  # the settings now in force (a resume may raise `steps`), but what PBT chose
                    m.job = _resumed_job(pop.job, m, state)
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
                first = (str(exc).strip().splitlines() or [""])[-1].strip()[:200]
                raise NramError(f"'{run.checkpoint}': the checkpoint does not fit this machine and its settings "
                                f"({first})") from None
            if self.origin is None:  # train(..., resume=True) from Python: keep the machine saved at the start
                self.origin = SpecRef.from_json(run.read_config().get("spec", {}))
        self.metrics = run.start_metrics(pop.step_count if resuming else None)
        run.write_config(run_config(pop.job, self.origin, pop.seeds))
        if not resuming:
            run.save(pop.state_dict())

    def step(self) -> list[dict[str, Any]]:
        pop = self.population
        rows = pop.step()
        if self.metrics is not None:
            for row in rows:
                self.metrics.write(metrics_line(row))
            self.metrics.flush()
        if self.run_dir is not None and pop.step_count % pop.job.config.checkpoint_every == 0:
            self.run_dir.save(pop.state_dict())
        return rows

    def finish(self) -> list[TrainResult]:
        pop = self.population
        if self.metrics is not None:
            self.metrics.close()
        if self.run_dir is not None:
            self.run_dir.save(pop.state_dict())
            if len(pop.members) > 1:
                self.export_members()
        return [self.result(m) for m in pop.members]

    def result(self, m: Member) -> TrainResult:
        model = NRAM(m.job.spec, m.cfg.model).to(device=self.population.device, dtype=self.population.dtype)
        model.controller.load_state_dict(self.population.controllers.member_state(m.index))
        p = m.progress
        return TrainResult(model, p.step, m.train_error, m.curriculum.difficulty, p.skipped, p.rollbacks, p.wall,
                           p.solved_at, p.gave_up_at, p.stopped, m.seed)

    def export_members(self) -> None:
        """Every member as an ordinary run directory (RUN/members/sSEED): config, its metrics, a checkpoint."""
        assert self.run_dir is not None
        pop = self.population
        lines = self.run_dir.read_metrics_lines() if self.run_dir.metrics.exists() else []
        for m in pop.members:
            out = RunDir(self.run_dir.path / MEMBERS / f"s{m.seed}")
            out.path.mkdir(parents=True, exist_ok=True)
            out.write_config(run_config(m.job, self.origin, [m.seed]))
            mine = [line for line in lines if json.loads(line).get("member") == m.index]
            out.write_metrics_lines(mine)
            out.save(member_checkpoint(pop, m))


def _resumed_job(job: Job, m: Member, state: dict[str, Any]) -> Job:
    """A resumed member's settings: the caller's, with its own seed and, where population-based training
    changed them, the values it had reached."""
    cfg = job.config.replace(seed=m.seed)
    if m.lineage:
        saved = state["members"][m.index]["settings"]
        from nramdsl.training.pbt import EXPLORED

        cfg = cfg.set({key: saved[key] for key in EXPLORED})
    return Job(job.spec, cfg, job.task, job.complexity)


def member_checkpoint(pop: Population, m: Member) -> dict[str, Any]:
    """Member m alone, as the checkpoint of a population of one (what a single run writes)."""
    opt = pop.optimizer.member_state(m.index)
    return {
        "format": POPULATION_FORMAT,
        "step": m.progress.step,
        "seeds": [m.seed],
        "controller": {name: w.unsqueeze(0) for name, w in pop.controllers.member_state(m.index).items()},
        "optimizer": {"steps": [opt["step"]], "exp_avg": [t.unsqueeze(0) for t in opt["exp_avg"]],
                      "exp_avg_sq": [t.unsqueeze(0) for t in opt["exp_avg_sq"]]},
        "members": [m.state_dict()],
        "config": m.cfg.settings(),
    }


def run_config(job: Job, origin: SpecRef | None, seeds: list[int]) -> dict[str, Any]:
    """config.json: what `load_run` and `nramdsl eval` need to rebuild the run's machine and task."""
    spec = job.spec
    config = {"train": job.config.settings(), "spec": origin.pinned(spec).to_json() if origin else {},
              "task": job.task.name, "complexity": job.complexity, "memory": spec.memory,
              "timesteps": spec.timesteps}
    if len(seeds) > 1:
        config["population"] = {"seeds": list(seeds), "members": MEMBERS}
    return config


def model_state(state: dict[str, Any], seed: int | None = None) -> dict[str, torch.Tensor]:
    """The single model's state_dict in a checkpoint (a run's, or a population member's by `seed`)."""
    if "format" not in state:  # a run directory from before populations, or `compile --emit weights`
        if not isinstance(state.get("model"), dict):
            raise ValueError("it holds no weights (no 'model' and no 'controller')")
        return state["model"]
    seeds = list(state["seeds"])
    if seed is None and len(seeds) > 1:
        raise ValueError(f"the checkpoint holds a population of {len(seeds)}; each member is an ordinary run "
                         f"directory in its folder {MEMBERS}/sSEED once the population has finished, and "
                         f"`nramdsl eval RUN --member SEED` reads one from this checkpoint")
    if seed is not None and seed not in seeds:
        raise ValueError(f"the checkpoint holds no member with seed {seed} (seeds: {seeds})")
    k = seeds.index(seed) if seed is not None else 0
    return {f"controller.{name}": w[k] for name, w in state["controller"].items()}


def load_weights(model: NRAM, state: dict[str, Any], path: Any, seed: int | None = None) -> None:
    """A checkpoint's weights (a run's, or a population member's by `seed`) into `model`; weights of another
    machine, or a population without a member named, are one `NramError`."""
    try:
        model.load_state_dict(model_state(state, seed))
    except ValueError as exc:
        raise NramError(f"'{path}': {exc}") from None
    except (KeyError, RuntimeError, TypeError, AttributeError) as exc:
        lines = str(exc).splitlines()  # torch: a header line, then one line per mismatched tensor
        first = lines[1].strip() if len(lines) > 1 else str(exc)
        raise NramError(f"'{path}' was trained on a different machine ({first})") from None


def load_run(run_dir: str | Path, seed: int | None = None, *, skip_via: bool = False) -> tuple[NRAM, dict[str, Any]]:
    """The trained model of a run directory, and its config.json. For a population, `seed` picks the member
    (its ordinary run directory is RUN/members/sSEED). `skip_via`: run `via` gates on their built-in
    kernels, so nothing beside the run's spec is imported (`MachineSpec.without_via`)."""
    run = RunDir(run_dir)
    config = run.read_config()
    cfg = TrainConfig.from_settings(config["train"], where="config.json")
    spec = load_ref(SpecRef.from_json(config["spec"]))
    model = NRAM(spec.without_via() if skip_via else spec, cfg.model).to(dtype=DTYPES[cfg.dtype])
    load_weights(model, run.load(), run.checkpoint, seed)
    model.eval()
    return model, config
