"""Shared by the load generators: latency percentiles, a progress line, the JSON report and the
PNG chart (throughput over time and latency percentiles; matplotlib with the Agg backend, from
the ``loadtest`` extra)."""
from __future__ import annotations

import json
import math
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return float(sorted_values[k])


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float | None]:
    """p50 .. p99.9, mean and max in milliseconds."""
    ms = sorted(x * 1000.0 for x in latencies_s)
    out: dict[str, float | None] = {}
    for q in PERCENTILES:
        out[f"p{q:g}"] = round(percentile(ms, q), 3) if ms else None
    out["mean"] = round(sum(ms) / len(ms), 3) if ms else None
    out["max"] = round(ms[-1], 3) if ms else None
    return out


def timeline(done_at: Sequence[float], latencies_s: Sequence[float] | None, t0: float,
             bucket_s: float = 0.5) -> list[dict[str, float]]:
    """Completions per second (and p50/p99 latency) in buckets of ``bucket_s`` from ``t0``."""
    if not done_at:
        return []
    n = int((max(done_at) - t0) / bucket_s) + 1
    counts = [0] * n
    lats: list[list[float]] = [[] for _ in range(n)]
    for i, t in enumerate(done_at):
        b = max(0, int((t - t0) / bucket_s))
        counts[b] += 1
        if latencies_s is not None:
            lats[b].append(latencies_s[i])
    rows = []
    for b in range(n):
        row = {"t": round((b + 1) * bucket_s, 3), "per_s": counts[b] / bucket_s}
        if latencies_s is not None and lats[b]:
            s = sorted(lats[b])
            row["p50_ms"] = round(percentile(s, 50) * 1000, 3)
            row["p99_ms"] = round(percentile(s, 99) * 1000, 3)
        rows.append(row)
    return rows


class Progress:
    """One status line per ``interval_s`` on stderr (rewritten in place on a terminal)."""

    def __init__(self, interval_s: float = 1.0, stream: Any = None) -> None:
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next = 0.0
        self._shown = False

    def update(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self.interval_s
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def write_json(path: str | pathlib.Path, report: dict[str, Any]) -> None:
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(report, indent=2, default=str) + "\n")


def draw_chart(path: str | pathlib.Path, title: str, rows: list[dict[str, float]], latency: dict[str, float | None],
               rate_label: str, sent: tuple[str, list[dict[str, float]]] | None = None) -> None:
    """Top: throughput over time (with p50/p99 latency per interval, and optionally the send rate);
    bottom: latency percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7.5), gridspec_kw={"height_ratios": [3, 2]})
    fig.suptitle(title, fontsize=11)
    ts = [r["t"] for r in rows]
    top.plot(ts, [r["per_s"] for r in rows], color="tab:blue", label=rate_label)
    if sent is not None and sent[1]:
        top.plot([r["t"] for r in sent[1]], [r["per_s"] for r in sent[1]], color="tab:gray", ls="--", lw=1,
                 label=sent[0])
    top.set_xlabel("seconds since start")
    top.set_ylabel(rate_label, color="tab:blue")
    top.grid(True, alpha=0.3)
    with_lat = [r for r in rows if "p50_ms" in r]
    if with_lat:
        twin = top.twinx()
        twin.plot([r["t"] for r in with_lat], [r["p50_ms"] for r in with_lat], color="tab:green", lw=1,
                  label="p50 latency")
        twin.plot([r["t"] for r in with_lat], [r["p99_ms"] for r in with_lat], color="tab:red", lw=1,
                  label="p99 latency")
        twin.set_ylabel("latency (ms)")
        twin.legend(loc="upper right", fontsize=8)
    top.legend(loc="upper left", fontsize=8)
    names = [k for k, v in latency.items() if v is not None]
    values = [float(latency[k] or 0.0) for k in names]
    bars = bottom.bar(names, values, color="tab:orange")
    for bar, v in zip(bars, values, strict=True):
        bottom.annotate(f"{v:,.1f}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    bottom.set_ylabel("latency (ms)")
    bottom.set_title("latency percentiles (whole run)", fontsize=10)
    bottom.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=100)
    plt.close(fig)
