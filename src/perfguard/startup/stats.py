"""Robust statistics for startup samples: medians, their confidence intervals and A/B tests.

Every function is pure and deterministic: intervals come from exact binomial order statistics
and the Mann-Whitney test is exact when the samples have no ties, so no random resampling is
involved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

# Scales the median absolute deviation to the standard deviation of a normal distribution.
MAD_TO_SD = 1.482602218505602
# pyperf warns when the spread is at least 10% of the mean; the robust CV uses the same bar.
DEFAULT_NOISE_THRESHOLD = 0.10
# Above this many U values the exact distribution gets slow, so the normal approximation is used.
_EXACT_U_LIMIT = 10_000


@dataclass(frozen=True)
class Interval:
    """A confidence interval and the coverage it really achieves (at most the one requested)."""

    low: float
    high: float
    confidence: float

    def relative_half_width(self, center: float) -> float:
        if center == 0:
            return 0.0 if self.low == self.high else math.inf
        return (self.high - self.low) / 2.0 / abs(center)


@dataclass(frozen=True)
class MannWhitney:
    """Result of a Mann-Whitney U test; `u` counts pairs where the candidate is larger."""

    u: float
    p_value: float
    exact: bool


@dataclass(frozen=True)
class Comparison:
    """An A/B comparison of candidate samples against baseline samples.

    `shift` is the Hodges-Lehmann estimate of candidate minus baseline, in the samples' unit,
    and `relative_shift` is that shift divided by the baseline median.
    """

    baseline_median: float
    candidate_median: float
    shift: float
    relative_shift: float
    p_value: float
    alpha: float
    min_effect: float

    @property
    def is_significant(self) -> bool:
        return self.p_value < self.alpha

    @property
    def is_regression(self) -> bool:
        """Return True if the candidate is slower, significantly and by at least min_effect."""
        return self.is_significant and self.relative_shift >= self.min_effect


def median(values: Sequence[float]) -> float:
    """Return the median; raise ValueError on an empty sequence."""
    if not values:
        raise ValueError("median of an empty sample is undefined")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def median_absolute_deviation(values: Sequence[float]) -> float:
    """Return the raw (unscaled) median absolute deviation from the median."""
    center = median(values)
    return median([abs(v - center) for v in values])


def robust_cv(values: Sequence[float]) -> float:
    """Return the robust coefficient of variation: scaled MAD divided by the median."""
    center = median(values)
    if center == 0:
        return 0.0
    return MAD_TO_SD * median_absolute_deviation(values) / abs(center)


def median_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Return the distribution-free confidence interval of the median.

    The bounds are the order statistics x(k) and x(n-k+1) for the largest k whose exact
    binomial coverage is at least `confidence`. Below 6 values no k reaches 95%, so the
    interval is (min, max) and `Interval.confidence` reports the lower coverage achieved.
    """
    if not values:
        raise ValueError("confidence interval of an empty sample is undefined")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    ordered = sorted(values)
    rank, coverage = order_statistic_rank(len(ordered), confidence)
    return Interval(float(ordered[rank - 1]), float(ordered[-rank]), coverage)


def order_statistic_rank(n: int, confidence: float) -> Tuple[int, float]:
    """Return (k, coverage) for the median interval [x(k), x(n-k+1)] of n values."""
    best_rank, best_coverage = 1, 1.0 - 2.0 * binomial_cdf(0, n)
    for rank in range(2, n // 2 + 1):
        coverage = 1.0 - 2.0 * binomial_cdf(rank - 1, n)
        if coverage < confidence:
            break
        best_rank, best_coverage = rank, coverage
    return best_rank, best_coverage


def binomial_cdf(k: int, n: int) -> float:
    """Return P(X <= k) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n


def mann_whitney_u(
    baseline: Sequence[float], candidate: Sequence[float], alternative: str = "greater"
) -> MannWhitney:
    """Test whether candidate values tend to be larger than baseline values.

    `alternative` is "greater" (candidate larger), "less" or "two-sided". The p-value is exact
    when there are no ties and m * n is at most 10,000. Otherwise it comes from the normal
    approximation with tie and continuity corrections.
    """
    if not baseline or not candidate:
        raise ValueError("Mann-Whitney U needs at least one value in each sample")
    if alternative not in ("greater", "less", "two-sided"):
        raise ValueError(f"invalid alternative {alternative!r}: use greater, less or two-sided")
    u = _u_statistic(baseline, candidate)
    m, n = len(candidate), len(baseline)
    has_ties = len(set(baseline) | set(candidate)) < m + n
    if not has_ties and m * n <= _EXACT_U_LIMIT:
        return MannWhitney(u, _exact_p_value(u, m, n, alternative), exact=True)
    return MannWhitney(u, _normal_p_value(u, baseline, candidate, alternative), exact=False)


def hodges_lehmann_shift(baseline: Sequence[float], candidate: Sequence[float]) -> float:
    """Return the median of all pairwise differences candidate[j] - baseline[i]."""
    return median([c - b for c in candidate for b in baseline])


def compare_samples(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    alpha: float = 0.01,
    min_effect: float = 0.05,
) -> Comparison:
    """Compare candidate against baseline with a one-sided Mann-Whitney test and effect size."""
    baseline_median = median(baseline)
    shift = hodges_lehmann_shift(baseline, candidate)
    relative = shift / baseline_median if baseline_median else 0.0
    test = mann_whitney_u(baseline, candidate, alternative="greater")
    return Comparison(
        baseline_median=baseline_median,
        candidate_median=median(candidate),
        shift=shift,
        relative_shift=relative,
        p_value=test.p_value,
        alpha=alpha,
        min_effect=min_effect,
    )


def find_noise_warning(
    values: Sequence[float], threshold: float = DEFAULT_NOISE_THRESHOLD
) -> Optional[str]:
    """Return a warning when the robust CV of the samples is at least `threshold`, else None."""
    if len(values) < 2:
        return None
    cv = robust_cv(values)
    if cv < threshold:
        return None
    return (
        f"timings are noisy: robust coefficient of variation {cv:.1%} is at least "
        f"{threshold:.0%}; run on a quieter machine or raise max_runs"
    )


def _u_statistic(baseline: Sequence[float], candidate: Sequence[float]) -> float:
    u = 0.0
    for c in candidate:
        for b in baseline:
            if c > b:
                u += 1.0
            elif c == b:
                u += 0.5
    return u


def _exact_p_value(u: float, m: int, n: int, alternative: str) -> float:
    counts = _u_distribution(m, n)
    total = sum(counts)
    observed = int(u)
    upper = sum(counts[observed:]) / total
    lower = sum(counts[: observed + 1]) / total
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    return min(1.0, 2.0 * min(upper, lower))


def _u_distribution(m: int, n: int) -> List[int]:
    """Return how many orderings of m + n distinct values give each U from 0 to m * n.

    The counts are the coefficients of the Gaussian binomial coefficient [m + n, m] in q, built
    as the product over i of (1 - q^(n + i)) / (1 - q^i).
    """
    size = m * n + 1
    poly = [1] + [0] * (size - 1)
    for i in range(1, m + 1):
        step = n + i
        for degree in range(size - 1, step - 1, -1):
            poly[degree] -= poly[degree - step]
        for degree in range(i, size):
            poly[degree] += poly[degree - i]
    return poly


def _normal_p_value(
    u: float, baseline: Sequence[float], candidate: Sequence[float], alternative: str
) -> float:
    m, n = len(candidate), len(baseline)
    mean = m * n / 2.0
    tie_term = _tie_correction(list(baseline) + list(candidate))
    variance = m * n / 12.0 * ((m + n + 1) - tie_term / ((m + n) * (m + n - 1) or 1))
    if variance <= 0:
        return 1.0
    sd = math.sqrt(variance)
    upper = _normal_sf((u - mean - 0.5) / sd)
    lower = _normal_sf((mean - u - 0.5) / sd)
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    return min(1.0, 2.0 * min(upper, lower))


def _tie_correction(values: Sequence[float]) -> float:
    counts: dict[float, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return float(sum(t**3 - t for t in counts.values()))


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))
