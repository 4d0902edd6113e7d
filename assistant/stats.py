"""The one percentile rule used by the evaluator and the benchmarks, so their figures are comparable."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float | None], q: float, empty: float | None = None) -> float | None:
    """The q-th percentile (q in 0-100), linear interpolation between ranks (numpy's default).

    None and NaN values are ignored; with nothing left the result is ``empty``."""
    data = sorted(v for v in values if v is not None and not math.isnan(v))
    if not data:
        return empty
    position = (len(data) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)
