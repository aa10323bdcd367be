"""The shipped Grafana dashboard and Prometheus rules, checked against a live scrape of a real server.

promtool comes from Debian's ``prometheus`` package (.ci/run installs it): without it these tests
skip on a developer machine and fail in CI.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from express.engine.machine import Engine
from express.http import HttpServer
from express.observe.metrics import REGISTRY
from express.serve.config import HttpSettings, Settings
from express.serve.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "config" / "grafana" / "express-dashboard.json"
RULES = ROOT / "config" / "prometheus" / "express-rules.yml"
TASKS = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "echo", "Next": "F"},
                                    "F": {"Type": "Fail", "Error": "Custom.Failure"}}}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return path


async def _live_scrape() -> str:
    settings = Settings(http=HttpSettings(host="127.0.0.1", port=0))
    registry = Registry(Engine({"echo": lambda e: e}, metrics=True))
    registry.put("dash_tasks", json.dumps(TASKS))
    server = HttpServer(settings, registry, host="127.0.0.1", port=0)
    await server.start()
    try:
        url = f"http://127.0.0.1:{server.port}"
        headers = {"Content-Type": "application/x-amz-json-1.0",
                   "X-Amz-Target": "AWSStepFunctions.StartSyncExecution"}
        body = json.dumps({"stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:dash_tasks"})
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/", data=body, headers=headers) as resp:
                assert resp.status == 200 and json.loads(await resp.read())["status"] == "FAILED"
            async with session.get(url + "/metrics") as resp:
                assert resp.status == 200
                return await resp.text()
    finally:
        await server.stop()


@pytest.fixture(scope="module", name="scrape")
def live_scrape() -> str:
    return asyncio.run(_live_scrape())


def sample_names(text: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def declared_names() -> set[str]:
    """Every series name the module's metrics can produce, also those without samples yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
                "info": ("_info",)}
    names = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


PROMQL_WORDS = {"sum", "by", "without", "rate", "irate", "increase", "deriv", "changes", "histogram_quantile",
                "avg", "max", "min", "count", "and", "or", "unless", "on", "ignoring", "group_left",
                "group_right", "bool", "offset", "topk", "bottomk", "label_values", "abs", "clamp_min"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: strings, label matchers, grouping clauses, ranges,
    Grafana variables and function names removed."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\$\w+", "", expr)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[m.end():].lstrip()
        if m.group() in PROMQL_WORDS or rest.startswith("("):
            continue
        names.add(m.group())
    return names


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(re.sub(r"^label_values\((\w+),.*\)$", r"\1", var["definition"]))
    return exprs


def test_promql_name_extraction() -> None:
    assert promql_metric_names('histogram_quantile(0.99, sum by (le, integration) '
                               '(rate(express_task_duration_seconds_bucket{machine=~"$machine"}[5m])))') \
        == {"express_task_duration_seconds_bucket"}
    assert promql_metric_names("process_cpu_seconds_total and on (instance, job) express_build_info") \
        == {"process_cpu_seconds_total", "express_build_info"}
    assert promql_metric_names("3600 * ($p * sum(rate(no_such_metric_total[$__rate_interval])))") \
        == {"no_such_metric_total"}


def test_dashboard_queries_name_only_metrics_that_exist(scrape: str) -> None:
    known = sample_names(scrape) | declared_names()
    used = set().union(*(promql_metric_names(e) for e in dashboard_exprs()))
    assert not used - known, f"dashboard queries name metrics nobody exports: {sorted(used - known)}"
    # the panels the issue asks for are there
    for name in ("express_executions_total", "express_execution_duration_seconds_bucket",
                 "express_in_flight_executions", "express_kafka_consumer_lag", "express_kafka_dlq_records_total",
                 "express_executions_throttled_total", "express_task_duration_seconds_bucket",
                 "express_billed_duration_gigabyte_seconds_total"):
        assert name in used, name


def test_dashboard_is_grafana_json() -> None:
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and dash["uid"] and dash["schemaVersion"] >= 30
    for p in dash["panels"]:
        assert p["targets"] and {"x", "y", "w", "h"} <= set(p["gridPos"]), p["title"]
        assert all(t["expr"] and t["refId"] for t in p["targets"]), p["title"]


def test_rules_pass_promtool_and_name_only_metrics_that_exist(scrape: str) -> None:
    proc = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 5 rules found" in proc.stdout
    known = sample_names(scrape) | declared_names()
    exprs = re.findall(r"expr: \|?\n?((?:.+\n)+?)\s+(?:for|labels):", RULES.read_text())
    assert len(exprs) == 5
    used = set().union(*(promql_metric_names(e) for e in exprs))
    assert not used - known, sorted(used - known)


def test_live_scrape_passes_promtool_check_metrics(scrape: str) -> None:
    assert "express_task_duration_seconds_bucket" in scrape  # a populated scrape, not just HELP lines
    proc = subprocess.run([promtool(), "check", "metrics"], input=scrape, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), \
        proc.stdout + proc.stderr


def test_declared_names_follow_the_conventions() -> None:
    names: dict[str, Any] = {f.name: f.type for f in REGISTRY.collect()}
    assert "express_billed_duration_gigabyte_seconds" in names and "express_billed_gb_seconds" not in names
    for name, kind in names.items():
        assert not re.search(r"_(gb|mb|kb|ms|secs?)(_|$)", name), name
        if kind == "gauge":
            assert not name.endswith("_total"), name
