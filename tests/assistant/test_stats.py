import math

import pytest

from assistant.stats import percentile


def test_percentile_interpolates_between_ranks_like_numpy():
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert percentile([4, 1, 3, 2], 0) == 1 and percentile([4, 1, 3, 2], 100) == 4


def test_percentile_ignores_missing_values_and_says_what_empty_gives():
    assert percentile([None, float("nan"), 7.0], 95) == 7.0
    assert percentile([], 50) is None
    assert math.isnan(percentile([], 50, empty=float("nan")))
