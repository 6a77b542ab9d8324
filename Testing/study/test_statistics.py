"""study/statistics.py on hand-checkable numbers."""

from __future__ import annotations

import math

import pytest

from MedFusionLib.study.statistics import mean_ci, paired_outcome

T_975_4 = 2.7764451051977987  # Student t, 97.5th percentile, 4 degrees of freedom (tables: 2.776)
T_975_2 = 4.302652729911275  # 2 degrees of freedom (tables: 4.303)


def test_mean_ci_is_the_t_interval():
    mean, low, high = mean_ci([1, 2, 3, 4, 5])  # s = sqrt(2.5), s / sqrt(5) = sqrt(0.5)
    assert mean == 3.0
    assert low == pytest.approx(3 - T_975_4 * math.sqrt(0.5), abs=1e-12)
    assert high == pytest.approx(3 + T_975_4 * math.sqrt(0.5), abs=1e-12)


def test_mean_ci_of_one_value_has_no_interval_and_nan_is_ignored():
    mean, low, high = mean_ci([7.0, float("nan")])
    assert mean == 7.0 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in mean_ci([]))


@pytest.mark.parametrize(
    "values, baseline, direction, outcome",
    [
        ([11, 12, 13], [10, 11, 12], "higher", "win"),  # differences 1, 1, 1: CI [1, 1] > 0, 1 >= 1 % of 11
        ([9, 10, 11], [10, 11, 12], "higher", "loss"),
        ([9, 10, 11], [10, 11, 12], "lower", "win"),  # lower is better: -1 everywhere is a win
        ([11, 12, 13], [10, 11, 12], "lower", "loss"),
        ([10.05, 11.05, 12.05], [10, 11, 12], "higher", "tie"),  # +0.05 < 1 % of 11 = 0.11: too small
        ([12, 11, 12], [10, 11, 12], "higher", "tie"),  # differences 2, 0, 0: mean 0.67 >= 0.11 but CI spans 0
        ([12], [10], "higher", "tie"),  # one pair: no interval
    ],
)
def test_paired_outcome_rule(values, baseline, direction, outcome):
    assert paired_outcome(values, baseline, direction).outcome == outcome


def test_paired_outcome_difference_and_interval():
    result = paired_outcome([12, 11, 12], [10, 11, 12])  # d = 2, 0, 0: mean 2/3, s = sqrt(4/3)
    half = T_975_2 * math.sqrt(4 / 3) / math.sqrt(3)
    assert result.n == 3 and result.difference == pytest.approx(2 / 3)
    assert (result.ci_low, result.ci_high) == pytest.approx((2 / 3 - half, 2 / 3 + half))


def test_paired_outcome_checks_its_arguments():
    with pytest.raises(ValueError, match="direction"):
        paired_outcome([1, 2], [1, 2], "up")
    with pytest.raises(ValueError, match="same length"):
        paired_outcome([1, 2], [1])
