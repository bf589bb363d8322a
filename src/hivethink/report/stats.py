"""95% intervals for the report's points and table cells.

A *rate* (:func:`rate_ci`: accuracy, agreement, timeouts, a score; one 0-or-1 value per sample)
gets the Wilson score interval (good coverage at small n, never outside [0, 1], sensible at 0/n
and n/n); a *mean* (:func:`mean_ci`: passes, tokens, redundancy, references per agent) gets a
percentile bootstrap interval (2000 resamples, a fixed seed so a report is reproducible). A rate
column whose values are not all 0 or 1 (a partial-credit score) is a mean. A mean of one value
has no interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
NOTE = (
    "95% intervals in brackets: Wilson for rates (one 0-or-1 value per sample), percentile "
    f"bootstrap ({RESAMPLES} resamples) for means; none for a mean of one value."
)


@dataclass(frozen=True)
class Estimate:
    """A mean (or rate) of ``n`` values with its 95% interval (``low``/``high`` None: none)."""

    value: float
    low: float | None
    high: float | None
    n: int
    method: str  # "wilson", "bootstrap", or "" when there is no interval

    def __str__(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.value:.3f}"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"

    @property
    def below(self) -> float:
        """Distance from the value down to the interval's low end (0 without an interval)."""
        return 0.0 if self.low is None else self.value - self.low

    @property
    def above(self) -> float:
        return 0.0 if self.high is None else self.high - self.value


def numbers(values: Iterable[Any]) -> list[float]:
    """The finite numbers among ``values`` (None, bools, strings and NaN left out)."""
    return [
        float(v)
        for v in values
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The Wilson score interval of a rate ``successes / n`` (n >= 1)."""
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


def bootstrap(values: list[float]) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``values`` (two or more)."""
    if min(values) == max(values):  # every resample has the same mean
        return values[0], values[0]
    result = stats.bootstrap(
        (np.asarray(values),),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mean_ci(values: Iterable[Any]) -> Estimate | None:
    """The mean of the numbers in ``values`` with its bootstrap interval; None without numbers."""
    nums = numbers(values)
    if not nums:
        return None
    mean = sum(nums) / len(nums)
    if len(nums) == 1:
        return Estimate(mean, None, None, 1, "")
    low, high = bootstrap(nums)
    return Estimate(mean, low, high, len(nums), "bootstrap")


def rate_ci(values: Iterable[Any]) -> Estimate | None:
    """The rate of the numbers in ``values`` with its Wilson interval when they are all 0 or 1,
    else their mean with its bootstrap interval; None without numbers."""
    nums = numbers(values)
    if nums and all(v in (0.0, 1.0) for v in nums):
        low, high = wilson(int(sum(nums)), len(nums))
        return Estimate(sum(nums) / len(nums), low, high, len(nums), "wilson")
    return mean_ci(nums)
