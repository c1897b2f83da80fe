"""What a training step minimises: the paper's loss with its training aids (a pure function of one forward)."""

from __future__ import annotations

import torch

from nramdsl.machine.fuzzy import NRAMOutput
from nramdsl.training.config import TrainConfig
from nramdsl.training.schedule import Phase


def entropy_coef(cfg: TrainConfig, step: int, phase: Phase) -> float:
    """The entropy bonus's weight [P §4.1], decaying; 0 while sharpening, whose penalty replaces it."""
    return 0.0 if phase.sharpen else cfg.entropy.coef * cfg.entropy.decay**step


def objective(out: NRAMOutput, cfg: TrainConfig, step: int, phase: Phase, n_distributions: int) -> torch.Tensor:
    """loss − bonus · controller entropy + halting price, and, while sharpening, + the footnote-7 penalty on
    register and memory entropy + the same penalty on the controller's mean entropy per distribution.

    While sharpening the bonus becomes a penalty: once the loss is near 0 the bonus dominates it and holds
    choices that are equivalent for the fuzzy machine at 50/50 (two writes that converge over steps), and
    the argmax of such a tie breaks the discretized program (measured: Access fuzzy 0 %, discretized 78 %).
    """
    assert out.loss is not None and out.entropy is not None
    total = out.loss - entropy_coef(cfg, step, phase) * out.entropy
    if cfg.halt_penalty > 0:
        T = out.halting.shape[1]
        steps = torch.arange(1, T + 1, device=out.halting.device, dtype=out.halting.dtype)
        expected_t = (out.halting * steps).sum(dim=1).mean()
        total = total + cfg.halt_penalty * expected_t / T
    if phase.sharpen:
        assert out.value_entropy is not None
        total = total + cfg.stretch.sharpen * out.value_entropy
        total = total + cfg.stretch.sharpen * out.entropy / n_distributions
    return total
