import math
import pathlib
import re

import orjson
import pytest

from express import Engine, VirtualClock
from express.engine.billing import (
    MINIMUM_BILLED_S,
    MINIMUM_DURATION_MS,
    MINIMUM_GB_SECONDS,
    MINIMUM_MEMORY_MB,
    Billing,
    Prices,
    bill,
    billed,
    billed_duration_ms,
    billed_memory_mb,
    duration_cost,
    gb_seconds,
    memory_used_mb,
    monthly_cost,
)
from tests import support
from tests.support import MAP_OF_PARALLELS, MB


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


# ---------------------------------------------------------------------- the one billing of an execution
def aws_billing(duration_s, definition_bytes, payload_bytes, steps):
    """(billed ms, billed MB) by AWS's Express formula, written out independently in tests.support."""
    details = support.aws_billing(duration_s, definition_bytes, payload_bytes, steps)
    return details["billedDurationInMilliseconds"], details["billedMemoryUsedInMB"]


@pytest.mark.parametrize("duration", [0.0, 0.003, 0.1, 0.1000001, 0.1001, 0.25, 2.301])
@pytest.mark.parametrize(("definition_bytes", "payload_bytes", "steps"), [
    (200, 20, 0), (14 * MB, 0, 0), (14 * MB, 1, 0), (13 * MB, MB, 1), (1000, 200_000, 101), (1000, 200_000, 60),
    (0, 7 * MB, 2), (0, 7 * MB + 1, 2), (50 * 1024, 32 * 1024, 400)])
def test_billed_fast_path_agrees_with_the_formula(duration, definition_bytes, payload_bytes, steps):
    ms, mb = billed(duration, definition_bytes, payload_bytes, steps)
    assert (ms, mb) == aws_billing(duration, definition_bytes, payload_bytes, steps)
    used = memory_used_mb(definition_bytes, payload_bytes, steps)
    assert bill(duration, definition_bytes, payload_bytes, steps) == Billing(ms, mb, used)


def test_exactly_64mb_is_the_minimum_one_byte_more_is_not():
    assert billed(0.01, 14 * MB, 0) == (100, 64)  # 50 MB + 14 MB
    assert billed(0.01, 14 * MB + 1, 0) == (100, 128)
    assert billed(0.01, 0, 7 * MB, 2) == (100, 64) and billed(0.01, 1, 7 * MB, 2) == (100, 128)


async def test_every_result_carries_its_billing_without_any_observer():
    engine = Engine(clock=VirtualClock())  # no metrics, no usage sink, no logs
    big = {"items": list(range(100)), "pad": "x" * 200_000}
    size = len(orjson.dumps(big))
    machine = engine.compile(MAP_OF_PARALLELS, "mapped")
    r = await machine.execute(big)
    assert r.status == "SUCCEEDED"
    # 1 Map step + 100 Parallel steps of a ~200 KB payload: about 69 MB, billed 128
    assert (r.billed_duration_ms, r.billed_memory_mb) == aws_billing(r.duration_s, machine.definition_size, size, 101)
    assert r.billed_memory_mb == 128
    # the input size the caller measured is the one billed (it is not measured again)
    small = {"items": list(range(100)), "pad": "x" * 120_000}  # 50 MB + 101 x 0.115 MB: 61.6 MB
    assert (await machine.execute(small)).billed_memory_mb == 64
    assert (await machine.execute(small, input_size=200_000)).billed_memory_mb == 128
    slow = engine.compile({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 2, "End": True}}})
    r = await slow.execute({})
    assert (r.billed_duration_ms, r.billed_memory_mb) == (2000, 64)
    fail = await engine.compile({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}).execute({})
    assert (fail.status, fail.billed_duration_ms, fail.billed_memory_mb) == ("FAILED", 100, 64)


def test_gb_seconds_are_billed_duration_times_billed_memory() -> None:
    assert gb_seconds(100, 64) == MINIMUM_GB_SECONDS == 0.1 * 64 / 1024
    assert gb_seconds(2300, 192) == 2.3 * 192 / 1024
    assert (MINIMUM_BILLED_S, MINIMUM_DURATION_MS, MINIMUM_MEMORY_MB) == (0.1, 100, 64)
    assert billed(MINIMUM_BILLED_S, 0, 0) == (MINIMUM_DURATION_MS, MINIMUM_MEMORY_MB)
    b = bill(2.25, 20 * MB, 0)
    assert (b.billed_duration_ms, b.billed_memory_mb, b.gb_seconds) == (2300, 128, gb_seconds(2300, 128))


EXPRESS = pathlib.Path(__file__).resolve().parents[2] / "express"
# GB-second arithmetic: the billed figures over 1024 (or the minimum's 64 MB over 1024)
_GB_ARITHMETIC = re.compile(r"(billed|gb).*(/ ?1024|\* ?64 ?/)", re.IGNORECASE)


def test_billing_arithmetic_is_written_only_in_express_engine_billing() -> None:
    # metrics, metering and the answers all use express.engine.billing: a second copy of the formula
    # is how the figures they report come apart
    found = [f"{path.relative_to(EXPRESS.parent)}:{n}: {line.strip()}"
             for path in sorted(EXPRESS.rglob("*.py")) if path.name != "billing.py"
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if _GB_ARITHMETIC.search(line) and not line.lstrip().startswith("#")]
    assert found == []
