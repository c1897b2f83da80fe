"""Training settings, grouped by the aid they control. The defaults are the recipe every example shares.

A setting is named by a key: a top-level field (`steps`, `lr`) or `GROUP.FIELD` (`noise.eta`,
`stretch.after`, `model.loss`); a group's on/off switch is named by the group alone (`curriculum`).
Keys are what a machine's `train { … }` block and `--option KEY=VALUE` use; `TrainConfig.from_settings`
checks them and converts their values. Where a setting takes one of a few words, the words are the
`Literal` type of its field, so each enumeration is written once.

Provenance tags: [P] the NRAM paper, [GN] the gradient-noise paper (Neelakantan et al.), [ours] a choice
this project made where both are silent (the paper reports none of its hyperparameters).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from nramdsl import limits
from nramdsl.errors import ErrorList, NramError, Span
from nramdsl.machine.options import ModelOptions, Readout

CurriculumError = Literal["batch", "current"]
StretchMemory = Literal["fit", "range"]
DType = Literal["float32", "float64"]

ENABLED = "enabled"  # the field of a group that the group's own key switches


@dataclass(frozen=True)
class CurriculumSettings:
    """App. B's curriculum [P]; threshold and patience are not reported [ours]."""

    enabled: bool = True
    threshold: float = 0.1  # D rises when the error drops below this …
    patience: int = 20  # … and at least this many batches have passed since the last rise
    # Which examples' error moves D [ours; App. B says only "the error rate"]: "batch" = the whole batch,
    # whose draws reach above D, so D rises only once the model already handles harder cases; "current" =
    # the examples of difficulty ≤ D. Measured on Copy, 8 seeds: 3 solved with "batch", 0 with "current".
    error: CurriculumError = "batch"


@dataclass(frozen=True)
class NoiseSettings:
    """Annealed Gaussian gradient noise [GN]: σ_t² = η / (1 + t)^γ, added after clipping; η = 0 is off.
    [GN] used η = 0.3 for NRAM. The NRAM paper's "decays exponentially" conflicts with [GN]; we follow [GN]."""

    eta: float = 0.0
    gamma: float = 0.55
    # [ours] false: σ_t is absolute, as in [GN], so η's effect depends on the loss's scale and on the clip
    # (after a norm clip of 1, η = 0.3 over Swap's 53,620 weights is noise of norm ≈ 127 against a gradient
    # of at most 1). true: coordinate i's noise has standard deviation σ_t · √v̂_i, v̂_i the member's Adam
    # second moment including this step's gradient (what the update divides by), so η is noise relative to
    # each weight's own gradient scale, the same whatever the loss's scale or the clip.
    relative: bool = False


@dataclass(frozen=True)
class EntropySettings:
    """The entropy bonus on every distribution the controller outputs [P]: coef × decay^step [ours]."""

    coef: float = 0.01
    decay: float = 0.999


@dataclass(frozen=True)
class StretchSettings:
    """The second phase [ours], which turns a solution at the training size into a general, discrete program.

    Once the training error has been 0 for `after` consecutive batches at the top curriculum level, the run
    trains on with `slack` × T steps in the smallest memory that holds each batch: a program that does not
    stop then runs past its output and, wrapping around memory, destroys it, so the loss pays for not
    halting. From then on the footnote-7 penalty on the entropy of register and memory values [P fn. 7]
    replaces the entropy bonus, and the controller's own distributions are penalised the same way, so ties
    the fuzzy machine does not care about are broken before the argmax does. 0 = no second phase.
    Training with the long T from the start makes the task itself much harder to find.
    """

    after: int = 20
    slack: float = 2.0
    # Complexities drawn uniformly from 1 … ⌈complexity × the training complexity⌉ (memory fitted, T
    # scaled with the batch's largest), so a program exact only up to the training size meets longer
    # inputs while its attention is still soft. 1 = the curriculum's draws, as in phase 1.
    complexity: float = 1.0
    # "fit": the smallest memory that holds the batch; "range": uniform between that and the machine's M,
    # per batch, so a program tuned to one exact size (measured: Increment exact with M = n + 1, 100 %
    # wrong with M = 16) meets both, while a loop that does not halt still wraps in the small ones.
    memory: StretchMemory = "fit"
    sharpen: float = 0.1  # the coefficient of the entropy penalties; 0 = off


@dataclass(frozen=True)
class StopSettings:
    """When a run ends before its step budget [ours]: success is a matter of seeds (the paper: about 11 %
    converge), so a search spends its time on seeds that learn, and stops those that have succeeded."""

    # No curriculum rise for this many steps while below the top level (the paper: most runs are "stuck on
    # the starting curriculum level"). 0 = never.
    give_up_after: int = 0
    # The training task not solved (an error-free batch at the top level) within this many steps; the stall
    # rule never fires without a curriculum. 0 = never.
    solve_within: int = 0
    # The training task solved, but no `stop.on_probe` success within this many steps after: a program exact
    # only at the lengths it was trained on, which more steps rarely change (docs/results.md: every Copy and
    # Reverse member that passed did so within 180 steps of solving; Increment's took up to 1,090).
    # 0 = never.
    generalize_within: int = 0
    # Every `probe_every` steps at the top level, the error at twice the largest complexity trained on, with
    # twice the scaled step budget, fuzzy and discretized (the larger counts): selection by generalization,
    # not by training error. 0 = never.
    probe_every: int = 50
    on_probe: bool = True  # stop once two probes in a row are error-free


@dataclass(frozen=True)
class PBTSettings:
    """Population-based training (Jaderberg et al. 2017), for a run of several members (`--population`).

    Every `every` steps the members still training are ranked: curriculum level first (higher is better),
    then the mean training error since the last round. Each member of the bottom `quantile` copies the
    weights, optimizer state, curriculum and phase of a random member of the top `quantile` (exploit), then
    changes its learning rate, entropy coefficient and (with `noise` on) noise η (explore): each is
    multiplied by 1 + `perturb` or 1 − `perturb`, or with probability `resample` drawn afresh from its
    range. Defaults: Ray Tune's PopulationBasedTraining (quantile 0.25, resample probability 0.25, factors
    1.2 / 0.8). 0 = off.
    """

    every: int = 0
    quantile: float = 0.25
    resample: float = 0.25
    perturb: float = 0.2
    # Whether a round explores noise η too. Off (the default), every member keeps the η it was given, so
    # `noise.eta = 0` means no noise in a PBT search as well. On, a ListK search started at η = 0 ended with
    # 12 of 16 members at η 0.01-1 through resampling and stalled at 12 % batch error where the same search
    # without it reached 0 (docs/results.md, "The hard tasks"); noise also stops Swap learning.
    noise: bool = False


def _default_model() -> ModelOptions:
    return ModelOptions(grad_clamp=10.0)


@dataclass(frozen=True)
class TrainConfig:
    task: str = ""  # the task name; the machine's `task` when not given
    # The distribution training draws instances from: "" = the task's own, or one of the task's `samplers`
    # (WalkBST: "leaf"). Evaluation and the bars always use the task's own [ours].
    sampler: str = ""
    seed: int = 0
    steps: int = 3000  # optimizer updates
    batch: int = 32  # [ours]: a plain PyTorch NRAM solved Copy and Reverse with it before any tuning
    lr: float = 3e-3  # Adam [P]; the rate is [ours]
    complexity: int = 0  # the largest training complexity; 0 = the paper's, capped by what fits in M
    grad_norm: float = 1.0  # global L2 clip of the gradient before the update (the paper's C2) [P §4.1]; 0 = off
    # λ · E[t] / T added to the loss: a price on every step taken, so a model whose output is complete learns
    # to halt rather than loop on (after ANC's time penalty; not in the paper) [ours].
    halt_penalty: float = 0.1
    readout: Readout = "halt"  # the read-out rule of the training error and of evaluation [ours]
    log_every: int = 10
    checkpoint_every: int = 100
    max_skips: int = 5  # non-finite loss or gradients: skip the update; after this many in a row, roll back
    # Rollbacks in a row, with no update in between that left the weights finite, after which the run stops:
    # it would only go round the same failure again (an lr far too large, say). 0 = never stop for this.
    max_rollbacks: int = 3
    dtype: DType = "float32"
    device: str = "cpu"
    # torch.compile the circuit step [ours]: about 1.5x faster per step on a CPU after 20-100 s of compiling
    # per memory size, so it pays off in long runs and searches, not in short ones (benchmarks/bench_step.py)
    compile: bool = False
    # The model's options (paper-silent choices, `nramdsl.machine.fuzzy.ModelOptions`); training clamps
    # activation gradients per coordinate at 10 (the paper's C1 [P §4.1]).
    model: ModelOptions = field(default_factory=_default_model)
    curriculum: CurriculumSettings = field(default_factory=CurriculumSettings)
    noise: NoiseSettings = field(default_factory=NoiseSettings)
    entropy: EntropySettings = field(default_factory=EntropySettings)
    stretch: StretchSettings = field(default_factory=StretchSettings)
    stop: StopSettings = field(default_factory=StopSettings)
    pbt: PBTSettings = field(default_factory=PBTSettings)

    def __post_init__(self) -> None:
        for key, spec in SETTINGS.items():
            value = self.get(key)
            if spec.choices and value not in spec.choices:
                raise NramError(f"train setting '{key}' must be one of {', '.join(spec.choices)}, got {value!r}")

    # ---- keys
    def get(self, key: str) -> Any:
        obj: Any = self
        for part in SETTINGS[key].path:
            obj = getattr(obj, part)
        return obj

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with top-level fields changed (`cfg.replace(seed=3)`); `set` takes any key."""
        return dataclasses.replace(self, **changes)

    def set(self, values: Mapping[str, Any]) -> TrainConfig:
        """A copy with settings changed by key (`cfg.set({"noise.eta": 0.3})`), values already typed."""
        cfg = self
        for key, value in values.items():
            path = SETTINGS[key].path
            if len(path) == 1:
                cfg = dataclasses.replace(cfg, **{path[0]: value})
            else:
                group = dataclasses.replace(getattr(cfg, path[0]), **{path[1]: value})
                cfg = dataclasses.replace(cfg, **{path[0]: group})
        return cfg

    def settings(self) -> dict[str, Any]:
        """Every setting by key: what config.json and results record, and what `from_settings` reads back."""
        return {key: self.get(key) for key in SETTINGS}

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], span: Span | None = None, where: str = "train") -> TrainConfig:
        """Check keys and convert values (a `train { … }` block, `--option` pairs, config.json) over the
        defaults; every problem in one error at `span`."""
        return cls().set(coerce_settings(values, span, where))


@dataclass(frozen=True)
class Range:
    """The values a number setting takes: low <= value (low < value when `open_low`) <= high."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False

    def admits(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        low = "" if self.low is None else (f"> {_num(self.low)}" if self.open_low else f">= {_num(self.low)}")
        high = "" if self.high is None else f"<= {_num(self.high)}"
        return " and ".join(p for p in (low, high) if p)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


MAX_SEED = 2**31 - 1  # torch.manual_seed takes more; a seed is a setting, and settings are bounded

# Every number setting's range: a value outside it is refused where it is written (a train block's entry,
# --option), not met later as a ZeroDivisionError or a run that silently does nothing. Floats must also be
# finite. Keys not listed take any finite value of their type.
RANGES: dict[str, Range] = {
    "seed": Range(0, MAX_SEED),
    "steps": Range(1),
    "batch": Range(1),
    "lr": Range(0, open_low=True),
    "complexity": Range(0),
    "grad_norm": Range(0),
    "halt_penalty": Range(0),
    "log_every": Range(1),
    "checkpoint_every": Range(1),
    "max_skips": Range(0),
    "max_rollbacks": Range(0),
    "curriculum.threshold": Range(0, 1),
    "curriculum.patience": Range(0),
    "noise.eta": Range(0),
    "noise.gamma": Range(0),
    "entropy.coef": Range(0),
    "entropy.decay": Range(0, 1),
    "stretch.after": Range(0),
    "stretch.slack": Range(0, 100, open_low=True),
    "stretch.complexity": Range(0, 100, open_low=True),
    "stretch.sharpen": Range(0),
    "stop.give_up_after": Range(0),
    "stop.solve_within": Range(0),
    "stop.generalize_within": Range(0),
    "stop.probe_every": Range(0),
    "model.eps": Range(0, 1, open_low=True),
    "model.grad_clamp": Range(0),
    "pbt.every": Range(0),
    "pbt.quantile": Range(0, 0.5, open_low=True),
    "pbt.resample": Range(0, 1),
    "pbt.perturb": Range(0, 1),
}
LIMITED = {"batch": limits.BATCH, "complexity": limits.COMPLEXITY}  # and below these resource limits
DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class Setting:
    path: tuple[str, ...]  # attribute names from TrainConfig down
    type: type  # bool, int, float or str
    choices: tuple[str, ...] = ()  # the words a Literal-typed setting takes
    optional: bool = False  # None is a value too (`model.grad_clamp`: off)


def _setting(owner: type, name: str, path: tuple[str, ...]) -> Setting:
    hint = typing.get_type_hints(owner)[name]
    if typing.get_origin(hint) is Literal:
        return Setting(path, str, tuple(typing.get_args(hint)))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # `float | None`
        return Setting(path, next(a for a in typing.get_args(hint) if a is not type(None)), optional=True)
    return Setting(path, hint)


def _schema() -> dict[str, Setting]:
    """Every key: the top-level fields, then each group's fields (`GROUP.FIELD`, the switch `GROUP`)."""
    out: dict[str, Setting] = {}
    for f in dataclasses.fields(TrainConfig):
        hint = typing.get_type_hints(TrainConfig)[f.name]
        if not dataclasses.is_dataclass(hint):
            out[f.name] = _setting(TrainConfig, f.name, (f.name,))
            continue
        for g in dataclasses.fields(hint):
            key = f.name if g.name == ENABLED else f"{f.name}.{g.name}"
            out[key] = _setting(hint, g.name, (f.name, g.name))
    return out


SETTINGS: dict[str, Setting] = _schema()

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _convert(value: Any, setting: Setting) -> Any:
    want = setting.type
    if value is None and setting.optional:
        return None
    if want is bool:
        if isinstance(value, str):
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        return bool(value)
    if want is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value)
    if want is float:
        return float(value)
    return str(value)


# Settings removed when the code was reorganised (docs/training.md, "Renamed and retired settings"): naming
# one says what took its place instead of only that it is unknown.
RETIRED: dict[str, str] = {
    "sharpen_after": "sharpening starts with the stretch phase (stretch.after)",
    "sharpen_attention": "attention is always sharpened while sharpening (stretch.sharpen)",
    "probe_examples": "a probe always uses 32 test cases",
    "probe_discrete": "a probe always runs the discretized model",
    "memory_fit": "only the stretch phase fits memory (stretch.memory)",
    "straight_through": "NRAM.forward(..., straight_through=True) remains for Python callers",
    "stop_after_zero": "stop.on_probe ends a solved run",
}


def _unknown(key: str, where: str) -> str:
    if key in RETIRED:
        return f"{where} setting '{key}' was retired: {RETIRED[key]}; `nramdsl train --help` lists the settings"
    close = difflib.get_close_matches(key, list(SETTINGS), n=1, cutoff=0.6)
    if not close:  # a name from before the settings were grouped: `noise_eta` is `noise.eta`
        close = difflib.get_close_matches(key.replace("_", ".", 1), list(SETTINGS), n=1, cutoff=0.8)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {where} setting '{key}'{hint}; `nramdsl train --help` lists the settings"


def coerce_setting(key: str, value: Any, where: str = "train") -> Any:
    """One setting's value converted to its type and checked against its range; ValueError with the
    message otherwise (KeyError for an unknown key)."""
    setting = SETTINGS.get(key)
    if setting is None:
        raise KeyError(_unknown(key, where))
    try:
        out = _convert(value, setting)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where} setting '{key}' must be {setting.type.__name__}, got {value!r}") from None
    if setting.choices and out not in setting.choices:
        raise ValueError(f"{where} setting '{key}' must be one of {', '.join(setting.choices)}, got {value!r}")
    if isinstance(out, float) and not math.isfinite(out):
        raise ValueError(f"{where} setting '{key}' must be a finite number, got {value!r}")
    bounds = RANGES.get(key)
    if bounds is not None and out is not None and not bounds.admits(out):
        raise ValueError(f"{where} setting '{key}' must be {bounds.describe()}, got {value!r}")
    if key in LIMITED and out > LIMITED[key].value:
        limit = LIMITED[key]
        raise ValueError(f"{where} setting '{key}' is {out:,}, over the limit of {limit.value:,}{limit.how_to_raise()}")
    if key == "device" and not DEVICE.match(out):
        raise ValueError(f"{where} setting 'device' must be cpu, cuda, cuda:N or mps, got {value!r}")
    return out


def coerce_settings(values: Mapping[str, Any], span: Span | None = None, where: str = "train",
                    spans: Mapping[str, Span] | None = None) -> dict[str, Any]:
    """Keys checked and values converted to their settings' types and ranges; every problem reported, each
    at its own entry's span when `spans` has it (a train block's entries), else at `span`."""
    out: dict[str, Any] = {}
    problems: list[NramError] = []
    for key, value in values.items():
        try:
            out[key] = coerce_setting(key, value, where)
        except KeyError as exc:
            problems.append(NramError(exc.args[0], (spans or {}).get(key, span)))
        except ValueError as exc:
            problems.append(NramError(str(exc), (spans or {}).get(key, span)))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ErrorList(problems)
    return out


# Settings added with a default that is not what runs from before them did: a run saved without the key
# had this value (PBT explored η until pbt.noise existed). Settings not listed had their default.
IMPLIED_BEFORE: dict[str, Any] = {"pbt.noise": True}


def settings_differ(then: dict[str, Any], now: dict[str, Any], ignore: frozenset[str] = frozenset()) -> list[str]:
    """The keys (sorted, less `ignore`) whose value in saved settings `then` is not their value in `now`. A key
    saved before it existed had its default then (or its `IMPLIED_BEFORE` value), so a new setting does
    not make an earlier run another run."""
    defaults = TrainConfig().settings()
    before = {**defaults, **IMPLIED_BEFORE}
    return sorted(k for k in (set(now) | set(then)) - ignore if then.get(k, before.get(k)) != now.get(k, defaults.get(k)))


def describe_settings() -> str:
    """One line per key with its default and the values it takes (for `--help`)."""
    defaults = TrainConfig()
    lines = []
    for key, setting in SETTINGS.items():
        kind = "|".join(setting.choices) if setting.choices else setting.type.__name__
        bounds = RANGES[key].describe() if key in RANGES else ""
        if key in LIMITED:
            bounds += f" and <= {LIMITED[key].value}"
        lines.append(f"{key} = {defaults.get(key)!r} ({kind}{', ' + bounds if bounds else ''})")
    return "\n".join(lines)
