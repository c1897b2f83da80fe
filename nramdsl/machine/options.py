"""The fuzzy machine's options: the choices the paper leaves open, each with its default's reason.

Plain data (no torch), so the training settings (`nramdsl.training.config`) can embed them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nramdsl.kernels.select import FftMode

Readout = Literal["halt", "last", "argmax"]
LossKind = Literal["paper", "footnote4"]


@dataclass(frozen=True)
class ModelOptions:
    # Log clamp ε for the loss: FFT kernels leave ~1e-7 where the exact value is 0, and a tiny ε turns
    # that noise into loss (measured: up to 24 % at 1e-30 in float32); 1e-6 agreed with exact kernels.
    eps: float = 1e-6
    # The paper's renormalisation layer, identity in backward (footnote 5): applied to every gate output
    # and to the new registers, so rounding never drifts off the simplex over hundreds of layers.
    renormalize: bool = True
    # "paper": −Σ_t p_t Σ_i log 𝓜ᵗ[i, y_i]; "footnote4": −Σ_i log Σ_t p_t 𝓜ᵗ[i, y_i].
    loss: LossKind = "paper"
    # Per-coordinate clamp of activation gradients inside backprop (the paper's C1); None or 0 = off.
    grad_clamp: float | None = None
    # Kernel selection: the generic scatter-add lift for every gate (for differential testing), and
    # whether modular add/sub use FFT ("auto" picks by M).
    generic_kernels: bool = False
    fft: FftMode = "auto"
    # Initial bias of the stop logit. The paper is silent; 0 gives f = 0.5, so half the halting mass lands
    # on step 1 before anything can be computed. A negative bias spreads it over the run.
    halt_bias: float = 0.0
