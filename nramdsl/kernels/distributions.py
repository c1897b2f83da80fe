"""Hypothesis strategies that draw probability vectors: the inputs of every lifted-gate property.

The main one draws non-negative floats, adds 1.0 at a drawn index and normalises, so a failing example
shrinks towards a one-hot vector (the easiest counterexample to read); exact one-hots, two-point mixtures
and the uniform distribution are mixed in. Public through `nramdsl.testing`.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st


def _one_hot(index: int, M: int, dtype: torch.dtype) -> torch.Tensor:
    out = torch.zeros(M, dtype=dtype)
    out[index] = 1
    return out


def one_hots(M: int, dtype: torch.dtype = torch.float64) -> st.SearchStrategy[torch.Tensor]:
    """Exact one-hot vectors of size M (integer inputs)."""
    return st.integers(0, M - 1).map(lambda i: _one_hot(i, M, dtype))


# Up to this M every weight is drawn; above it a draw of M floats per vector would outgrow Hypothesis's
# budget for one example (at M = 155 every example was "too large"), so weights are a few drawn spikes
# on top of seeded noise whose scale is drawn (and shrinks to 0).
DENSE_MAX = 32
SPIKES = 8


def _weights(draw: st.DrawFn, M: int) -> np.ndarray:
    if M <= DENSE_MAX:
        return np.array(draw(st.lists(st.floats(0.0, 1.0, allow_subnormal=False), min_size=M, max_size=M)))
    weights = np.zeros(M)
    spikes = draw(st.lists(st.tuples(st.integers(0, M - 1), st.floats(0.0, 1.0, allow_subnormal=False)),
                           max_size=SPIKES))
    for i, w in spikes:
        weights[i] += w
    scale = draw(st.floats(0.0, 1.0, allow_subnormal=False))
    if scale:
        weights += scale * np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random(M)
    return weights


@st.composite
def _distribution(draw: st.DrawFn, M: int, dtype: torch.dtype) -> torch.Tensor:
    # Every kind draws the same weights and index, after one integer that picks the kind (0-2: bumped
    # weights, 3: one-hot, 4: two-point mixture, 5: uniform). The shrinker prefers short, then small,
    # choice sequences, so it ends at kind 0 with zero weights, i.e. one-hot(index), whenever it can.
    kind = draw(st.integers(0, 5))
    weights = _weights(draw, M)
    index = draw(st.integers(0, M - 1))
    if kind <= 2:
        weights[index] += 1.0  # the sum is >= 1: no division by ~0
        return torch.tensor(weights / weights.sum(), dtype=dtype)
    if kind == 3:
        return _one_hot(index, M, dtype)
    if kind == 4:
        other, lam = draw(st.integers(0, M - 1)), draw(st.floats(0.0, 1.0))
        mixture = np.zeros(M)
        mixture[index] += lam
        mixture[other] += 1.0 - lam
        return torch.tensor(mixture, dtype=dtype)
    return torch.full((M,), 1.0 / M, dtype=dtype)


def distributions(M: int, dtype: torch.dtype = torch.float64) -> st.SearchStrategy[torch.Tensor]:
    """Probability vectors of size M (non-negative, summing to 1 up to rounding), as `dtype` tensors.

    Mostly normalised random weights with 1.0 added at a drawn index; also exact one-hots, two-point
    mixtures and the uniform distribution. Failures shrink towards one-hot vectors.
    """
    return _distribution(M, dtype)


def batched_distributions(M: int, batch: int, dtype: torch.dtype = torch.float64) -> st.SearchStrategy[torch.Tensor]:
    """A `[batch, M]` tensor whose rows are drawn by `distributions`."""
    return st.lists(distributions(M, dtype), min_size=batch, max_size=batch).map(torch.stack)
