from __future__ import annotations

import itertools
import math

import pytest

from perfguard.startup import stats


def test_median_odd_even() -> None:
    assert stats.median([3, 1, 2]) == 2.0
    assert stats.median([4, 1, 3, 2]) == 2.5
    with pytest.raises(ValueError, match="empty"):
        stats.median([])


def test_mad_and_robust_cv() -> None:
    values = [10, 11, 12, 13, 100]

    assert stats.median_absolute_deviation(values) == 1.0
    assert stats.robust_cv(values) == pytest.approx(stats.MAD_TO_SD / 12)
    assert stats.robust_cv([0, 0, 0]) == 0.0


@pytest.mark.parametrize(
    "n, rank, coverage",
    [
        (5, 1, 1 - 2 / 32),
        (6, 1, 1 - 2 / 64),
        (10, 2, 1 - 2 * 11 / 1024),
        (20, 6, 1 - 2 * sum(math.comb(20, i) for i in range(6)) / 2**20),
    ],
)
def test_order_statistic_rank(n: int, rank: int, coverage: float) -> None:
    assert stats.order_statistic_rank(n, 0.95) == (rank, pytest.approx(coverage))


def test_median_ci_bounds() -> None:
    interval = stats.median_ci([float(v) for v in range(10, 0, -1)])

    assert (interval.low, interval.high) == (2.0, 9.0)
    assert interval.confidence == pytest.approx(0.978515625)
    assert interval.relative_half_width(5.5) == pytest.approx(3.5 / 5.5)


def test_median_ci_small_sample() -> None:
    interval = stats.median_ci([5.0, 1.0, 3.0])

    assert (interval.low, interval.high) == (1.0, 5.0)
    assert interval.confidence == 0.75


def test_u_distribution_matches_enumeration() -> None:
    for m, n in itertools.product(range(1, 5), range(1, 5)):
        counts = [0] * (m * n + 1)
        for chosen in itertools.combinations(range(m + n), m):
            others = set(range(m + n)) - set(chosen)
            counts[sum(1 for c in chosen for o in others if c > o)] += 1
        assert stats._u_distribution(m, n) == counts, (m, n)


def test_mann_whitney_exact() -> None:
    result = stats.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])

    assert result.exact
    assert result.u == 25
    assert result.p_value == pytest.approx(1 / 252)
    assert stats.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], "less").p_value == 1.0
    assert stats.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], "two-sided").p_value == (
        pytest.approx(2 / 252)
    )


def test_mann_whitney_ties_use_normal() -> None:
    result = stats.mann_whitney_u([1, 1, 2, 2], [2, 3, 3, 3])

    assert not result.exact
    assert result.u == 15.0
    assert 0.0 < result.p_value < 0.05


def test_mann_whitney_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        stats.mann_whitney_u([], [1])
    with pytest.raises(ValueError, match="invalid alternative"):
        stats.mann_whitney_u([1], [2], alternative="bigger")


def test_compare_samples_regression() -> None:
    baseline = [100.0 + i for i in range(10)]
    candidate = [120.0 + i for i in range(10)]

    comparison = stats.compare_samples(baseline, candidate, alpha=0.01, min_effect=0.05)

    assert comparison.shift == 20.0
    assert comparison.relative_shift == pytest.approx(20.0 / 104.5)
    assert comparison.is_significant
    assert comparison.is_regression


def test_compare_samples_small_effect() -> None:
    baseline = [100.0 + i / 10 for i in range(10)]
    candidate = [102.0 + i / 10 for i in range(10)]

    comparison = stats.compare_samples(baseline, candidate, alpha=0.01, min_effect=0.05)

    assert comparison.is_significant
    assert not comparison.is_regression


def test_noise_warning() -> None:
    assert stats.find_noise_warning([100, 101, 99, 100, 102]) is None
    warning = stats.find_noise_warning([100, 130, 70, 100, 115])
    assert warning is not None
    assert "22.2%" in warning
    assert stats.find_noise_warning([100]) is None
