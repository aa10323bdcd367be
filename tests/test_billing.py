import math

import pytest

from express.billing import (
    Prices,
    bill,
    billed_duration_ms,
    billed_memory_mb,
    duration_cost,
    memory_used_mb,
    monthly_cost,
)


@pytest.mark.parametrize(
    ("seconds", "billed"),
    [(0.0, 100), (0.001, 100), (0.1, 100), (0.1001, 200), (0.25, 300), (1.0, 1000), (10.0, 10000)],
)
def test_duration_rounds_up_to_100ms_with_100ms_minimum(seconds, billed):
    assert billed_duration_ms(seconds) == billed


def test_memory_estimate_matches_the_pricing_example():
    # 50 KB definition, 400 Map steps of 32 KB payload: 50 MB + 50 KB + 12,800 KB -> 64 MB billed
    used = memory_used_mb(50 * 1024, 32 * 1024, 400)
    assert used == pytest.approx(50 + 12850 / 1024)
    assert billed_memory_mb(used) == 64


@pytest.mark.parametrize(("used", "billed"), [(1, 64), (50, 64), (64, 64), (64.01, 128), (129, 192)])
def test_memory_is_billed_in_64mb_steps(used, billed):
    assert billed_memory_mb(used) == billed


def test_trivial_execution_bills_the_minimum_aws_reports():
    b = bill(0.003, 200, 20)
    assert (b.billed_duration_ms, b.billed_memory_mb) == (100, 64)
    assert b.gb_seconds == pytest.approx(0.1 * 64 / 1024)


def test_pricing_page_worked_example():
    # 100M executions x 10 s x 64 MB in a month = $482.97
    gb_s = 100_000_000 * 10 * 64 / 1024
    assert monthly_cost(100_000_000, gb_s) == pytest.approx(482.97, abs=0.005)


def test_tiers_apply_to_cumulative_monthly_usage():
    one_tier_1_hour = duration_cost(3600.0)
    assert one_tier_1_hour == pytest.approx(0.06)
    # the same GB-hour after 1,000 GB-hours already used is in the second tier
    assert duration_cost(3600.0, already_gb_hours=1000.0) == pytest.approx(0.03)
    assert duration_cost(3600.0, already_gb_hours=5000.0) == pytest.approx(0.01642)


def test_custom_prices():
    prices = Prices(per_request=2e-6, gb_hour_tiers=((math.inf, 1.0),))
    assert monthly_cost(10, 3600.0, prices) == pytest.approx(10 * 2e-6 + 1.0)
