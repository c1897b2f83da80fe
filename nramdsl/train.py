"""The training loop: Adam on the paper's loss with the paper's training aids (§4.1, App. B).

A run directory holds
  config.json        the resolved settings, the spec path, machine name and size overrides
  metrics.jsonl      one JSON line per logged step
  checkpoint.pt      the latest state (written atomically: temp file + rename)

Everything random comes from generators seeded from `seed` and saved in the checkpoint, so `resume`
continues bit-for-bit as if the run had never stopped.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from nramdsl.checkpoint import load_checkpoint, save_checkpoint, write_json
from nramdsl.curriculum import Curriculum
from nramdsl.errors import NramError
from nramdsl.ir import MachineSpec
from nramdsl.model import NRAM, ModelOptions
from nramdsl.tasks import Task, get_task
from nramdsl.evaluate import evaluate, masked_error, scaled_budget
from nramdsl.train_config import TrainConfig

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainResult:
    model: NRAM
    steps: int  # updates done (including skipped ones)
    train_error: float  # the last logged training error
    level: int  # final curriculum difficulty
    skipped: int
    rollbacks: int
    wall: float
    solved_at: int | None  # first step whose batch error was 0 at the top curriculum level
    gave_up_at: int | None = None  # the step at which `give_up_after` or `solve_within` stopped the run
    stopped: str | None = None  # why it ended early: stalled | unsolved | zero | probe (None: at its budget)


def model_options(cfg: TrainConfig) -> ModelOptions:
    return ModelOptions(
        eps=cfg.eps,
        grad_clamp=cfg.grad_clamp or None,
        loss=cfg.loss,  # type: ignore[arg-type]
        halt_bias=cfg.halt_bias,
    )


def training_complexity(task: Task, cfg: TrainConfig, M: int) -> int:
    fits = task.max_complexity(M)
    if fits < 1:
        raise NramError(f"task '{task.name}' does not fit in M = {M} cells (needs {task.min_memory(1)})")
    want = cfg.complexity or task.train_complexity
    if want > fits:
        if cfg.complexity:
            raise NramError(
                f"complexity {want} of task '{task.name}' needs M >= {task.min_memory(want)}, the machine has M = {M}"
            )
        want = fits
    return want


class _Progress:
    """A one-line progress bar on a terminal; silent otherwise (metrics go to the JSON lines)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.t0 = total, enabled, time.perf_counter()

    def update(self, step: int, loss: float, err: float, level: int) -> None:
        if not self.enabled:
            return
        rate = step / max(time.perf_counter() - self.t0, 1e-9)
        width = 24
        done = int(width * step / max(self.total, 1))
        bar = "#" * done + "." * (width - done)
        sys.stderr.write(
            f"\r[{bar}] {step}/{self.total} loss {loss:8.3f} err {err:6.1%} level {level:3d} {rate:6.1f} it/s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _grads_finite(params: list[torch.nn.Parameter]) -> bool:
    return all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)


def train(
    spec: MachineSpec,
    cfg: TrainConfig,
    out_dir: Path | None = None,
    *,
    resume: bool = False,
    progress: bool = False,
    spec_info: dict[str, Any] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train a machine on a task; returns the trained model and a summary.

    `spec_info` (the spec path, machine name and overrides) is saved in config.json so that
    `nramdsl eval RUN_DIR` can rebuild the machine.
    """
    task = get_task(cfg.task or spec.task or "")
    M = spec.memory
    cmax = training_complexity(task, cfg, M)
    dtype = DTYPES[cfg.dtype]
    device = torch.device(cfg.device)

    torch.manual_seed(cfg.seed)
    model = NRAM(spec, model_options(cfg)).to(device=device, dtype=dtype)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    data_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 1)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + 2)
    curriculum = Curriculum.up_to(cmax, threshold=cfg.curriculum_threshold, patience=cfg.curriculum_patience)
    if not cfg.curriculum:
        curriculum.level = len(curriculum.levels) - 1

    counters: dict[str, Any] = {"step": 0, "skipped": 0, "rollbacks": 0, "consecutive_skips": 0, "zero_streak": 0,
                                "probe_error": None, "probe_zero": 0, "solved_at": None, "stretched_at": None,
                                "sharpened_at": None, "gave_up_at": None, "stopped": None, "wall": 0.0}
    stretched_T = max(spec.timesteps, math.ceil(cfg.stretch_slack * spec.timesteps))
    stretch_top = max(cmax, math.ceil(cfg.stretch_complexity * cmax))
    ckpt_path = out_dir / "checkpoint.pt" if out_dir else None
    metrics_path = out_dir / "metrics.jsonl" if out_dir else None

    def snapshot() -> dict[str, Any]:
        # deep-copied: state_dict() holds references to the live tensors
        return copy.deepcopy({
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "curriculum": curriculum.state_dict(),
            "data_gen": data_gen.get_state(),
            "noise_gen": noise_gen.get_state(),
            "counters": dict(counters),
            "config": asdict(cfg),
        })

    def restore(state: dict[str, Any]) -> None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        curriculum.load_state_dict(state["curriculum"])
        data_gen.set_state(state["data_gen"])
        noise_gen.set_state(state["noise_gen"])
        counters.update(state["counters"])

    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        resuming = resume and ckpt_path is not None and ckpt_path.exists()
        if resuming:
            restore(load_checkpoint(ckpt_path))  # type: ignore[arg-type]
            _truncate_metrics(metrics_path, counters["step"])  # type: ignore[arg-type]
            # keep the spec saved at the start when the caller passes none (train(..., resume=True) from Python)
            spec_info = spec_info or json.loads((out_dir / "config.json").read_text()).get("spec", {})
        elif metrics_path and metrics_path.exists():
            metrics_path.unlink()
        # the settings now in force (a resume may have raised `steps`)
        write_json(out_dir / "config.json", {"train": asdict(cfg), "spec": spec_info or {}, "task": task.name,
                                              "complexity": cmax, "memory": M, "timesteps": spec.timesteps})
        if not resuming:
            save_checkpoint(ckpt_path, snapshot())  # type: ignore[arg-type]
    last_good = snapshot() if out_dir is None else None

    bar = _Progress(cfg.steps, progress)
    t_start = time.perf_counter() - counters["wall"]
    err_value = float("nan")
    # the rule behind each way a run ends early (counters["stopped"])
    rule_on = {"stalled": cfg.give_up_after, "unsolved": cfg.solve_within, "zero": cfg.stop_after_zero,
               "probe": cfg.stop_on_probe}
    metrics_fh = metrics_path.open("a") if metrics_path else None
    try:
        while counters["step"] < cfg.steps:
            # Resuming a run that ended itself: it stays ended, as an uninterrupted run would (unless the
            # rule that ended it is now off), so a longer budget changes nothing for it. A checkpoint from
            # before `stopped` was recorded marks a stalled run by `gave_up_at` alone.
            ended = counters["stopped"] or ("stalled" if counters["gave_up_at"] is not None else None)
            if ended and rule_on[ended]:
                break
            step = counters["step"]
            if cfg.stretch_after and counters["stretched_at"] is None and counters["zero_streak"] >= cfg.stretch_after:
                counters.update(stretched_at=step, zero_streak=0)
            stretched = counters["stretched_at"] is not None
            # sharpening, once on, stays on; it starts with the stretch phase, which it keeps honest: without
            # it a stretched model can stop its loop by blurring its pointer instead of by halting
            if cfg.sharpen_coef > 0 and counters["sharpened_at"] is None and (
                    stretched or (not cfg.stretch_after and counters["zero_streak"] >= cfg.sharpen_after)):
                counters["sharpened_at"] = step
            sharpen = counters["sharpened_at"] is not None
            timesteps = stretched_T if stretched else spec.timesteps
            if stretched and cfg.stretch_complexity > 1:
                complexities = torch.randint(1, stretch_top + 1, (cfg.batch,), generator=data_gen)
                timesteps = max(stretched_T, math.ceil(stretched_T * int(complexities.max()) / cmax))
            else:
                complexities = curriculum.sample(cfg.batch, data_gen)
            # "fit": the smallest memory that holds the batch, so a loop that does not halt wraps around
            # and destroys its output within the step budget: the pressure that teaches halting
            batch_M = task.min_memory(int(complexities.max())) if cfg.memory_fit or stretched else M
            if stretched and cfg.stretch_memory == "range" and batch_M < M:
                batch_M = int(torch.randint(batch_M, M + 1, (1,), generator=data_gen))
            batch = task.generate(complexities, batch_M, cfg.batch, data_gen)
            memory, target, mask = (x.to(device) for x in (batch.memory, batch.target, batch.mask))
            model.train()
            out = model(memory, target, mask, value_entropy=sharpen,
                        timesteps=timesteps,
                        straight_through=cfg.straight_through and (stretched or not cfg.stretch_after))
            assert out.loss is not None and out.entropy is not None
            # With sharpening on (and `sharpen_attention`) the entropy bonus becomes a penalty. Once the loss
            # is near 0 the bonus dominates it and holds choices that are equivalent for the fuzzy machine at
            # 50/50 (two writes that converge over steps), and the argmax of such a tie breaks the
            # discretized program (measured: Access fuzzy 0 %, discretized 78 %).
            coef = 0.0 if sharpen and cfg.sharpen_attention else cfg.entropy_coef * cfg.entropy_decay**step
            objective = out.loss - coef * out.entropy
            if cfg.halt_penalty > 0:
                T = out.halting.shape[1]
                expected_t = (out.halting * torch.arange(1, T + 1, device=device, dtype=dtype)).sum(dim=1).mean()
                objective = objective + cfg.halt_penalty * expected_t / T
            if sharpen:
                assert out.value_entropy is not None
                objective = objective + cfg.sharpen_coef * out.value_entropy
                if cfg.sharpen_attention:  # mean entropy per controller distribution, like value_entropy
                    objective = objective + cfg.sharpen_coef * out.entropy / model.layout.n_distributions
            opt.zero_grad(set_to_none=True)
            objective.backward()
            grad_norm = float("nan")
            if bool(torch.isfinite(objective)) and _grads_finite(params):
                max_norm = cfg.grad_norm if cfg.grad_norm > 0 else float("inf")
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
                if cfg.noise_eta > 0:
                    sigma = math.sqrt(cfg.noise_eta / (1 + step) ** cfg.noise_gamma)
                    for p in params:
                        if p.grad is not None:
                            p.grad.add_(torch.randn(p.shape, generator=noise_gen, device=device, dtype=dtype) * sigma)
                opt.step()
                counters["consecutive_skips"] = 0
            else:
                counters["skipped"] += 1
                counters["consecutive_skips"] += 1
                if counters["consecutive_skips"] > cfg.max_skips:
                    state = load_checkpoint(ckpt_path) if ckpt_path else last_good
                    assert state is not None
                    keep = dict(counters)
                    restore(state)
                    # keep counting forward: a rollback restores weights, not time
                    counters.update(step=keep["step"], skipped=keep["skipped"], rollbacks=keep["rollbacks"] + 1,
                                    consecutive_skips=0)
            with torch.no_grad():
                err = masked_error(out.readout(cfg.readout), target, mask)  # type: ignore[arg-type]
                err_value = float(err.mean())
                top = complexities == curriculum.levels[-1]
            at_max = curriculum.at_max
            if at_max and err_value == 0.0:
                counters["zero_streak"] += 1
                if counters["solved_at"] is None:
                    counters["solved_at"] = step
            else:
                counters["zero_streak"] = 0
            curriculum.update(_curriculum_error(cfg.curriculum_error, err, complexities, curriculum.difficulty), step)
            counters["step"] = step + 1
            counters["wall"] = time.perf_counter() - t_start
            probed = bool(cfg.probe_every and counters["step"] % cfg.probe_every == 0 and curriculum.at_max)
            if probed:
                counters["probe_error"] = _probe(model, task, spec, cmax, stretch_top if stretched else cmax, cfg)
                counters["probe_zero"] = counters["probe_zero"] + 1 if counters["probe_error"] == 0 else 0
            if counters["step"] % cfg.log_every == 0 or counters["step"] == cfg.steps or probed:
                row = {
                    "step": counters["step"],
                    "loss": out.loss.item(),
                    "train_error": err_value,
                    "top_level_error": float(err[top].mean()) if bool(top.any()) else None,
                    "level": curriculum.difficulty,
                    "probe_error": counters["probe_error"],
                    "grad_norm": grad_norm,
                    "entropy": out.entropy.item(),
                    "entropy_coef": coef,
                    "sharpening": sharpen,
                    "stretched": stretched,
                    "skipped": counters["skipped"],
                    "rollbacks": counters["rollbacks"],
                    "wall": round(counters["wall"], 3),
                }
                if metrics_fh:
                    metrics_fh.write(json.dumps(row) + "\n")
                    metrics_fh.flush()
                if on_log:
                    on_log(row)
                bar.update(counters["step"], row["loss"], err_value, curriculum.difficulty)
            if counters["step"] % cfg.checkpoint_every == 0:
                if ckpt_path:
                    save_checkpoint(ckpt_path, snapshot())
                elif counters["consecutive_skips"] == 0:
                    last_good = snapshot()
            # stop after `stop_after_zero` error-free batches in the last phase: stretched (the streak restarts
            # there) or, without a stretch phase, sharpened (sharpen_after batches into the streak)
            if cfg.stretch_after:
                need = cfg.stop_after_zero if stretched else -1
            else:
                need = cfg.stop_after_zero + (cfg.sharpen_after if cfg.sharpen_coef > 0 else 0)
            if cfg.stop_after_zero and need >= 0 and counters["zero_streak"] >= need:
                counters["stopped"] = "zero"
                break
            if cfg.stop_on_probe and counters["probe_zero"] >= 2:
                counters["stopped"] = "probe"
                break
            if cfg.give_up_after and not curriculum.at_max and counters["step"] - curriculum.last_rise >= cfg.give_up_after:
                counters.update(gave_up_at=counters["step"], stopped="stalled")
                break
            if cfg.solve_within and counters["solved_at"] is None and counters["step"] >= cfg.solve_within:
                counters.update(gave_up_at=counters["step"], stopped="unsolved")
                break
    finally:
        bar.close()
        if metrics_fh:
            metrics_fh.close()
    if ckpt_path:
        save_checkpoint(ckpt_path, snapshot())
    return TrainResult(model, counters["step"], err_value, curriculum.difficulty, counters["skipped"],
                       counters["rollbacks"], counters["wall"], counters["solved_at"], counters["gave_up_at"],
                       counters["stopped"])


def _curriculum_error(rule: str, err: torch.Tensor, complexities: torch.Tensor, difficulty: int) -> float:
    """The error that decides whether D rises: over the whole batch, or over its examples of difficulty ≤ D."""
    if rule == "batch":
        return float(err.mean())
    upto = complexities.to(err.device) <= difficulty  # rule == "current" (TrainConfig checks the choice)
    return float(err[upto].mean()) if bool(upto.any()) else float("inf")


def _probe(model: NRAM, task: Task, spec: MachineSpec, cmax: int, trained: int, cfg: TrainConfig) -> float:
    """Error at twice the largest complexity trained on (`trained`) with twice the step budget scaled from
    the training complexity `cmax`, on a fixed test set.

    A model can reach zero training error with a length-specific schedule that never halts; this
    held-out check at a larger size is what tells an algorithm apart (selection by generalization).
    """
    budget = scaled_budget(task, 2 * trained, cmax, spec.memory, spec.timesteps, slack=2.0)
    if budget.memory > 4 * spec.memory:  # keep the probe cheap next to a training step
        budget = scaled_budget(task, task.max_complexity(4 * spec.memory), cmax, spec.memory, spec.timesteps, 2.0)
    row = evaluate(model, task, budget, examples=cfg.probe_examples, seed=cfg.seed + 99991,
                   readout=cfg.readout, discretize=cfg.probe_discrete)  # type: ignore[arg-type]
    model.train()
    assert row.error is not None
    return max(row.error, row.discrete_error or 0.0)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines logged after the checkpoint, so a resumed run's log matches an uninterrupted one."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in keep))


def load_spec(info: dict[str, Any]) -> MachineSpec:
    """Rebuild a run's machine from config.json's "spec": a file path, or inline source text."""
    from nramdsl.loader import load_machine, load_text
    from nramdsl.semantics import resolve_machine

    overrides = info.get("overrides") or None
    if "source" in info:
        return resolve_machine(load_text(info["source"], info.get("filename", "<run>")), info.get("machine"), overrides)
    return load_machine(Path(info["path"]), info.get("machine"), overrides)


def load_run(run_dir: str | Path) -> tuple[NRAM, dict[str, Any]]:
    """The trained model of a run directory and its config.json."""
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    cfg = TrainConfig(**config["train"])
    model = NRAM(load_spec(config["spec"]), model_options(cfg)).to(dtype=DTYPES[cfg.dtype])
    model.load_state_dict(load_checkpoint(run_dir / "checkpoint.pt")["model"])
    model.eval()
    return model, config
