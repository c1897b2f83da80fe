"""The App. B curriculum: the sampled mixture, the rise rule and resuming."""

from __future__ import annotations

import math

import pytest
import torch

from nramdsl.training.curriculum import Curriculum


def exact_distribution(levels: list[int], level: int) -> dict[int, float]:
    """P(d) by construction: 10 % uniform over all, 25 % uniform over [first, D+e], 65 % D+e, with
    e ~ Geometric(1/2) on {0, 1, ...} and D+e clipped to the last level (positions in `levels`)."""
    top = len(levels) - 1
    probs = [0.0] * len(levels)
    for i in range(len(levels)):
        probs[i] += 0.10 / len(levels)
    for e in range(200):  # the tail past 200 is below 2^-200
        pe = 0.5 ** (e + 1)
        reach = min(level + e, top)
        probs[reach] += 0.65 * pe
        for i in range(reach + 1):
            probs[i] += 0.25 * pe / (reach + 1)
    return {levels[i]: p for i, p in enumerate(probs)}


@pytest.mark.parametrize(
    ("levels", "level"),
    [(list(range(1, 11)), 0), (list(range(1, 11)), 4), (list(range(1, 11)), 9), ([2, 4, 8, 16, 32], 1)],
)
def test_mixture_matches_exact_distribution(levels: list[int], level: int) -> None:
    curriculum = Curriculum(levels=levels, level=level)
    n = 200_000
    draws = curriculum.sample(n, torch.Generator().manual_seed(level))
    assert draws.dtype == torch.int64 and draws.shape == (n,)
    expected = exact_distribution(levels, level)
    assert abs(sum(expected.values()) - 1.0) < 1e-12
    assert set(draws.unique().tolist()) <= set(levels)
    for d, p in expected.items():
        observed = (draws == d).sum().item() / n
        sigma = math.sqrt(p * (1 - p) / n)
        assert abs(observed - p) <= 3 * sigma + 1e-9, (d, observed, p)


def test_mode_is_current_level() -> None:
    # P(d = D) = 0.65 * 1/2 + 0.25 * sum_e 2^-(e+1)/(D+e) + 0.10/len: D itself is the most likely draw.
    curriculum = Curriculum.up_to(20, level=5)
    draws = curriculum.sample(50_000, torch.Generator().manual_seed(0))
    assert torch.bincount(draws).argmax().item() == curriculum.difficulty == 6


def test_sampling_is_deterministic() -> None:
    curriculum = Curriculum.up_to(10, level=3)
    first = curriculum.sample(64, torch.Generator().manual_seed(1))
    again = curriculum.sample(64, torch.Generator().manual_seed(1))
    other = curriculum.sample(64, torch.Generator().manual_seed(2))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_rises_only_after_patience_and_below_threshold() -> None:
    curriculum = Curriculum.up_to(4, threshold=0.1, patience=5)
    rises = []
    for step in range(1, 40):
        error = 0.5 if step < 8 else 0.05  # no rise while the error is high, whatever the patience
        if curriculum.update(error, step):
            rises.append(step)
    assert rises == [8, 13, 18]  # at most one rise per `patience` batches, and never past the last level
    assert curriculum.level == 3 and curriculum.difficulty == 4 and curriculum.at_max


def test_no_rise_at_threshold() -> None:
    curriculum = Curriculum.up_to(3, threshold=0.1, patience=0)
    assert not curriculum.update(0.1, 1)
    assert curriculum.update(0.0999, 2)


def test_first_rise_waits_patience_from_start() -> None:
    curriculum = Curriculum.up_to(3, patience=20)
    assert not any(curriculum.update(0.0, step) for step in range(20))
    assert curriculum.update(0.0, 20)


def test_state_round_trip_resumes_exactly() -> None:
    original = Curriculum([1, 3, 5, 7], threshold=0.2, patience=3)
    for step in range(10):
        original.update(0.0, step)
    restored = Curriculum.up_to(1)
    restored.load_state_dict(original.state_dict())
    assert restored == original
    for step in range(10, 20):
        assert original.update(0.1, step) == restored.update(0.1, step)
    generator_a = torch.Generator().manual_seed(4)
    generator_b = torch.Generator().manual_seed(4)
    assert torch.equal(original.sample(100, generator_a), restored.sample(100, generator_b))


def test_invalid_curricula() -> None:
    with pytest.raises(ValueError, match="empty"):
        Curriculum([])
    with pytest.raises(ValueError, match="increasing"):
        Curriculum([1, 1, 2])
    with pytest.raises(ValueError, match="increasing"):
        Curriculum([0, 1])
    with pytest.raises(ValueError, match="index"):
        Curriculum([1, 2], level=2)
