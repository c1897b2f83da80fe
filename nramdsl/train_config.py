"""Training settings: every aid of the paper as an option, with its provenance.

Provenance tags: [P] the NRAM paper, [GN] the gradient-noise paper (Neelakantan et al.), [ours] a choice
this project made where both are silent (the paper reports none of its hyperparameters).
A machine's `train { … }` block sets these fields; the CLI overrides them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from nramdsl.errors import NramError, Span


# The settings that take one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "curriculum_error": ("batch", "current"),
    "stretch_memory": ("fit", "range"),
    "loss": ("paper", "footnote4"),
    "readout": ("halt", "last", "argmax"),
    "dtype": ("float32", "float64"),
}


@dataclass(frozen=True)
class TrainConfig:
    task: str = ""  # the task name; the machine's `task` when not given
    steps: int = 2000  # optimizer updates
    batch: int = 32  # [ours] as in the calibration runs of shared/nram-paper.md §7
    lr: float = 3e-3  # Adam [P]; the rate is [ours]
    seed: int = 0
    # The largest training complexity; 0 = the paper's train complexity, capped by what fits in M.
    complexity: int = 0
    # Curriculum of App. B [P]; threshold and patience are not reported [ours].
    curriculum: bool = True
    curriculum_threshold: float = 0.1
    curriculum_patience: int = 20
    # Which examples' error moves D [ours; App. B says only "the error rate"]: "batch" = the whole batch, whose
    # draws reach above D (e ≥ 1 about half the time, 10 % anywhere), so D rises only once the model already
    # handles harder cases; "current" = the examples of difficulty ≤ D, i.e. D rises once D is learnt.
    curriculum_error: str = "batch"
    # Gradient clipping [P §4.1]: per-coordinate clamp of activation gradients inside backprop (C1) and a
    # global L2 norm clip before the update (C2). 0 disables either.
    grad_clamp: float = 10.0
    grad_norm: float = 1.0
    # Annealed Gaussian gradient noise [GN]: σ_t² = η / (1 + t)^γ, added after clipping. η = 0 is off;
    # [GN] used η = 0.3 for NRAM. The NRAM paper's "decays exponentially" conflicts with [GN]; we follow [GN].
    noise_eta: float = 0.0
    noise_gamma: float = 0.55
    # Entropy bonus on every distribution the controller outputs [P], coefficient × decay^step [ours].
    entropy_coef: float = 0.01
    entropy_decay: float = 0.999
    # Footnote-7 penalty on the entropy of register and memory values, switched on (for good) once the
    # training error has stayed 0 for `sharpen_after` consecutive batches at the top curriculum level, or
    # with the stretch phase when that is on [P fn. 7, ours].
    sharpen_coef: float = 0.0
    sharpen_after: int = 20
    # While sharpening, also penalise the entropy of the controller's distributions (and drop the entropy
    # bonus), so that ties the fuzzy machine does not care about are broken before the argmax does [ours].
    sharpen_attention: bool = True
    # log(max(x, ε)) in the loss [P]; 1e-6 [ours, measured to agree with exact kernels].
    eps: float = 1e-6
    loss: str = "paper"  # "paper" or "footnote4"
    halt_bias: float = 0.0  # initial stop-logit bias [ours]
    # λ · E[t] / T added to the loss: a price on every step taken, so a model whose output is complete
    # learns to halt rather than loop on (after ANC's time penalty; not in the paper) [ours].
    halt_penalty: float = 0.0
    readout: str = "halt"  # read-out rule for the training error: halt | last | argmax [ours]
    # Stop early once the training error has been 0 for this many consecutive batches at the top
    # curriculum level in the last phase: counted from the start of the stretch phase when there is one,
    # else after sharpening (when on) has run as long; 0 = never.
    stop_after_zero: int = 0
    # Train each batch in the smallest memory that holds it (instead of the machine's M), so that a
    # program which does not halt wraps around and overwrites its output within the budget [ours].
    memory_fit: bool = False
    # Stretch phase [ours]: once the training error has been 0 for `stretch_after` consecutive batches at
    # the top level, train on with `stretch_slack` × T steps in the smallest memory that holds each batch
    # (as `memory_fit`). A program that does not stop then runs on past its output and, wrapping around
    # memory, destroys it: the loss now pays for not halting, after the task itself has been learnt.
    # 0 = off. Training with the long T from the start makes the task itself much harder to find.
    stretch_after: int = 0
    stretch_slack: float = 2.0
    # In the stretch phase, draw each example's complexity uniformly from 1 … ⌈stretch_complexity × the
    # training complexity⌉ (memory fitted, T scaled with the batch's largest), so that a program which is
    # exact only up to the training size meets longer inputs while its attention is still soft [ours].
    # 1 = the curriculum's draws, as in phase 1.
    stretch_complexity: float = 1.0
    # Memory in the stretch phase: "fit" = the smallest that holds the batch; "range" = uniform between
    # that and the machine's M, per batch, so that a program tuned to one exact size (measured: Increment
    # exact with M = n + 1, 100 % wrong with M = 16) meets both, while a loop that does not halt still
    # wraps in the small ones [ours].
    stretch_memory: str = "fit"
    # Straight-through attention [ours]: one-hot argmax in forward, softmax gradient in backward, from the
    # stretch phase on (from the start when there is none). The forward pass is then the discretized
    # machine, so a fuzzy trick (a half-zero register as a timer) cannot lower the loss.
    straight_through: bool = False
    # Every `probe_every` steps at the top curriculum level, measure the error at twice the training
    # complexity with twice the scaled step budget (0 = never); with `stop_on_probe`, stop once two
    # probes in a row are error-free [ours: selection by generalization, not by training error].
    probe_every: int = 0
    probe_examples: int = 32
    # The probe also runs the discretized model (integer machine) and takes the larger error, so that
    # early stopping waits for a program that is discrete as well as general [ours].
    probe_discrete: bool = True
    stop_on_probe: bool = False
    # Give up a run whose curriculum level has not risen for this many steps while below the top level,
    # so a seed search spends its time on seeds that learn (the paper: most runs "stuck on the starting
    # curriculum level"; success is a matter of seeds) [ours]. 0 = never.
    give_up_after: int = 0
    # Give up a run that has not solved its training task (an error-free batch at the top level) within
    # this many steps [ours]. The stall rule above never fires without a curriculum (the top level from
    # step 0); Swap, which trains best that way, solves within a few hundred steps or not at all. 0 = never.
    solve_within: int = 0
    log_every: int = 10
    checkpoint_every: int = 100
    # Non-finite loss or gradients: skip the update; after this many in a row, roll back to the last
    # good checkpoint.
    max_skips: int = 5
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise NramError(f"train setting '{name}' must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    @staticmethod
    def field_names() -> list[str]:
        return [f.name for f in dataclasses.fields(TrainConfig)]

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def coerce_settings(settings: Mapping[str, Any], span: Span | None = None, where: str = "train") -> dict[str, Any]:
    """Check keys and convert values of a `train { … }` block or `--option k=v` list to field types.

    All problems are reported together in one error.
    """
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    types = {name: type(getattr(TrainConfig(), name)) for name in fields}
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in settings.items():
        if key not in fields:
            problems.append(f"unknown {where} setting '{key}' (known: {', '.join(sorted(fields))})")
            continue
        want = types[key]
        try:
            if want is bool:
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                        raise ValueError(value)
                    value = value.lower() in ("true", "1", "yes", "on")
                out[key] = bool(value)
            elif want is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                out[key] = int(value)
            elif want is float:
                out[key] = float(value)
            else:
                out[key] = str(value)
        except (TypeError, ValueError):
            problems.append(f"{where} setting '{key}' must be {want.__name__}, got {value!r}")
    if problems:
        raise NramError("; ".join(problems), span)
    return out
