"""Express pricing reproduced per execution: billed duration, billed memory, and cost.

AWS bills Express workflows per request and per GB-second, with duration rounded up to the next
100 ms and memory in 64 MB steps; memory is estimated as 50 MB + definition size + payload size
for each Map/Parallel step. Prices are an operator setting (defaults: us-east-1 list prices).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

MB = 1024 * 1024
GB_S_PER_GB_H = 3600.0
MINIMUM_DURATION_MS = 100
MINIMUM_MEMORY_MB = 64
BASE_MEMORY_MB = 50  # AWS's memory estimate before the definition and the payloads
_MINIMUM = (MINIMUM_DURATION_MS, MINIMUM_MEMORY_MB)
MINIMUM_BILLED_S = MINIMUM_DURATION_MS / 1000.0
# Definition + payload x steps up to this many bytes keeps the estimate within the minimum memory.
_MINIMUM_BYTES = (MINIMUM_MEMORY_MB - BASE_MEMORY_MB) * MB


def gb_seconds(billed_duration_ms: int, billed_memory_mb: int) -> float:
    """AWS's unit of Express duration pricing: billed duration x billed memory, in GB-seconds."""
    return billed_duration_ms / 1000.0 * billed_memory_mb / 1024.0


MINIMUM_GB_SECONDS = gb_seconds(MINIMUM_DURATION_MS, MINIMUM_MEMORY_MB)


@dataclass(frozen=True, slots=True)
class Prices:
    per_request: float = 1.00 / 1_000_000
    # (GB-hours in this tier per month, $ per GB-hour); the last tier is unbounded.
    gb_hour_tiers: tuple[tuple[float, float], ...] = ((1000.0, 0.06), (4000.0, 0.03), (math.inf, 0.01642))


DEFAULT_PRICES = Prices()


@dataclass(frozen=True, slots=True)
class Billing:
    billed_duration_ms: int
    billed_memory_mb: int
    memory_used_mb: float

    @property
    def gb_seconds(self) -> float:
        return gb_seconds(self.billed_duration_ms, self.billed_memory_mb)


def billed_duration_ms(duration_s: float) -> int:
    """Rounded up to the next 100 ms, at least 100 ms."""
    ms = duration_s * 1000.0
    return max(MINIMUM_DURATION_MS, int(math.ceil(round(ms, 6) / 100.0)) * 100)


def memory_used_mb(definition_bytes: int, payload_bytes: int, map_or_parallel_steps: int) -> float:
    """AWS's estimate: 50 MB + definition size + payload size per Map/Parallel step (at least one)."""
    return BASE_MEMORY_MB + definition_bytes / MB + payload_bytes / MB * max(1, map_or_parallel_steps)


def billed_memory_mb(used_mb: float) -> int:
    return max(MINIMUM_MEMORY_MB, int(math.ceil(used_mb / 64.0)) * 64)


def bill(duration_s: float, definition_bytes: int, payload_bytes: int, map_or_parallel_steps: int = 0) -> Billing:
    used = memory_used_mb(definition_bytes, payload_bytes, map_or_parallel_steps)
    return Billing(billed_duration_ms(duration_s), billed_memory_mb(used), used)


def billed(duration_s: float, definition_bytes: int, payload_bytes: int, map_or_parallel_steps: int = 0) -> tuple[int, int]:
    """(billed duration ms, billed memory MB) of one execution, as :func:`bill` computes them.

    The engine bills every execution with this once, when it finishes (the result carries the
    figures to the HTTP answer, the Kafka outcome, the usage record and the metrics), so it stays
    cheap: the common case, at most 100 ms within 64 MB, is AWS's minimum without any rounding."""
    if duration_s <= MINIMUM_BILLED_S and definition_bytes + payload_bytes * (map_or_parallel_steps or 1) <= _MINIMUM_BYTES:
        return _MINIMUM
    return (billed_duration_ms(duration_s),
            billed_memory_mb(memory_used_mb(definition_bytes, payload_bytes, map_or_parallel_steps)))


def duration_cost(gb_seconds: float, prices: Prices = DEFAULT_PRICES, already_gb_hours: float = 0.0) -> float:
    """Cost of ``gb_seconds`` given ``already_gb_hours`` consumed earlier in the month (tiers)."""
    hours = gb_seconds / GB_S_PER_GB_H
    cost = 0.0
    floor = 0.0
    start = already_gb_hours
    for size, price in prices.gb_hour_tiers:
        ceiling = floor + size
        if start < ceiling and hours > 0:
            take = min(hours, ceiling - start)
            cost += take * price
            hours -= take
            start += take
        floor = ceiling
    return cost


def monthly_cost(executions: int, gb_seconds: float, prices: Prices = DEFAULT_PRICES) -> float:
    return executions * prices.per_request + duration_cost(gb_seconds, prices)
