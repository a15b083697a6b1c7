"""The modified z-score is the textbook one: median and median absolute deviation, however they are computed."""

from __future__ import annotations

import random
import statistics
from decimal import Decimal

import pytest

from domain.insights.anomalies import MAD_CONSTANT, MAD_FLOOR, modified_z


def _textbook(amount: Decimal, history: list[Decimal]) -> Decimal:
    median = statistics.median(history)
    mad = statistics.median([abs(a - median) for a in history])
    return MAD_CONSTANT * (amount - median) / max(mad, MAD_FLOOR * abs(median), Decimal("0.01"))


@pytest.mark.parametrize("seed", range(40))
def test_the_modified_z_score_is_the_median_and_mad_of_the_history(seed: int) -> None:
    """Given histories odd and even, with repeated amounts and amounts of 0, 2 and 4 decimals, in any order, the
    score is exactly (value and digits) what the median and MAD of the textbook give."""
    rng = random.Random(seed)
    size = rng.randint(1, 60)
    pool = [Decimal(rng.randint(0, 9000)).scaleb(-rng.choice((0, 2, 4))) for _ in range(rng.randint(1, 12))]
    history = [rng.choice(pool) if rng.random() < 0.5 else Decimal(rng.randint(1, 99999)).scaleb(-2)
               for _ in range(size)]
    amount = Decimal(rng.randint(0, 200000)).scaleb(-2)
    expected = _textbook(amount, history)
    found = modified_z(amount, history)
    assert (found, str(found)) == (expected, str(expected))
