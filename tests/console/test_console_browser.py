"""The console in headless Chromium (Debian's ``chromium``, driven by Playwright's Python client;
no ``playwright install``), against a real server: the graph of a machine with Choice, Parallel,
Map and Catch, a failed execution on the graph, validation as you type. Screenshots go to
artifacts/console/."""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from consolesupport import ORDERS_EDGES, ORDERS_GROUPS, ORDERS_STATES, ORDERS_TERMINALS, ConsoleServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def _chromium() -> str | None:
    for candidate in (os.environ.get("EXPRESS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


sync_api = pytest.importorskip("playwright.sync_api", reason="the console's browser tests need Playwright's Python "
                               "client: pip install -e '.[console]'")
CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def server() -> Iterator[ConsoleServer]:
    s = ConsoleServer().start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"errors in the page: {errors}"


def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    """Polls from here: the console's Content-Security-Policy forbids the string evaluation that
    Playwright's wait_for_function needs."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_graph_of_a_machine_with_choice_parallel_map_and_catch(server: ConsoleServer, page: Any) -> None:
    page.goto(server.url + "/console#/machines/orders")
    page.wait_for_selector("#graph[data-ready=true] svg.graph", timeout=15_000)
    graph = page.locator("#graph svg.graph")
    assert graph.locator("[data-kind=state]").count() == ORDERS_STATES
    assert graph.locator("[data-kind=group]").count() == ORDERS_GROUPS
    assert graph.locator("[data-kind=terminal]").count() == ORDERS_TERMINALS
    assert graph.locator("[data-edge]").count() == sum(ORDERS_EDGES.values())
    for kind, n in ORDERS_EDGES.items():
        assert graph.locator(f"[data-edge-kind={kind}]").count() == n, kind
    assert graph.locator("[data-state-type=Choice]").count() == 1
    assert graph.locator("[data-compound=true]").count() == 2  # the Map and the Parallel
    # nested: the branches and the item processor are drawn inside their state's box
    for inner, outer in (("Ship", "Both"), ("Notify", "Both"), ("Item", "Fanout")):
        ib = graph.locator(f"[data-state-name={inner}] rect").first.bounding_box()
        ob = graph.locator(f"[data-kind=state][data-state-name={outer}] > rect").first.bounding_box()
        assert ob["x"] <= ib["x"] and ib["x"] + ib["width"] <= ob["x"] + ob["width"], (inner, outer)
        assert ob["y"] <= ib["y"] and ib["y"] + ib["height"] <= ob["y"] + ob["height"], (inner, outer)
    # labels: each Choice rule and the Catch
    labels = page.locator("#graph [data-edge-label]").all_text_contents()
    assert '$.kind == "bulk"' in labels and "Default" in labels and "PaymentDeclined" in labels
    # the sidebar lists both machines
    assert page.locator("#machine-list [data-machine]").count() == 2
    shot(page, "graph-orders")


def test_failed_execution_shows_the_failing_state(server: ConsoleServer, page: Any) -> None:
    server.execute("orders", {"kind": "bulk", "items": [1, 2, 3]})
    failed = server.execute("orders", {"kind": "single", "card": "expired"})
    assert failed.status == "FAILED" and failed.error == "CardExpired"
    page.goto(server.url + "/console#/machines/orders")
    page.wait_for_selector("#graph[data-ready=true] svg.graph", timeout=15_000)
    page.wait_for_selector("#executions li.execution[data-status=FAILED]", timeout=10_000)
    page.locator("#executions li.execution[data-status=FAILED]").first.click()
    failing = page.locator("#graph [data-kind=state][data-failed=true]")
    failing.first.wait_for(timeout=10_000)
    assert failing.count() == 1
    assert failing.get_attribute("data-state-name") == "Charge"
    callout = page.locator("#graph [data-callout=Charge]")
    assert "CardExpired" in (callout.text_content() or "")
    detail = page.locator("#detail")
    assert detail.locator("[data-failed-state]").inner_text() == "Charge"
    assert "CardExpired" in detail.locator("[data-error]").inner_text()
    assert "expired in 01/2020" in detail.inner_text()
    # the path taken is highlighted: Validate -> Route -> Charge, not the Map or the Parallel
    visited = set(page.locator("#graph [data-kind=state].visited").evaluate_all(
        "els => els.map(e => e.dataset.stateName)"))
    assert visited == {"Validate", "Route", "Charge"}
    taken = page.locator("#graph [data-edge].taken").evaluate_all(
        "els => els.map(e => e.dataset.edgeKind)")
    assert sorted(taken) == ["default", "next", "start"]
    assert page.locator("#detail tr[data-event=LambdaFunctionFailed]").count() == 1
    assert "card" in page.locator("#detail .io").inner_text()  # input shown: logging includes execution data
    shot(page, "failed-execution")

    # a failure caught by a Catch, then a Fail state: the Fail state is the failing one
    server.execute("orders", {"kind": "single", "card": "declined"})
    page.locator("#executions li.execution[data-status=FAILED]").nth(1).wait_for(timeout=10_000)
    page.locator("#executions li.execution[data-status=FAILED]").first.click()
    page.wait_for_selector("#graph [data-failed=true][data-state-name=Declined]", timeout=10_000)
    taken = page.locator("#graph [data-edge].taken").evaluate_all("els => els.map(e => e.dataset.edgeKind)")
    assert "catch" in taken
    shot(page, "caught-then-failed")


def test_successful_map_execution_highlights_its_path(server: ConsoleServer, page: Any) -> None:
    server.execute("orders", {"kind": "split"})
    page.goto(server.url + "/console#/machines/orders")
    page.wait_for_selector("#graph[data-ready=true] svg.graph", timeout=15_000)
    page.wait_for_selector("#executions li.execution[data-status=SUCCEEDED]", timeout=10_000)
    page.locator("#executions li.execution[data-status=SUCCEEDED]").first.click()
    page.wait_for_selector("#graph [data-state-name=Ship].visited", timeout=10_000)
    visited = set(page.locator("#graph [data-kind=state].visited").evaluate_all(
        "els => els.map(e => e.dataset.stateName)"))
    assert visited == {"Validate", "Route", "Both", "Ship", "Notify", "Done"}
    assert page.locator("#graph [data-failed=true]").count() == 0
    assert page.locator("#graph [data-kind=terminal][data-state-name=End].visited").count() == 1
    shot(page, "succeeded-parallel")


def test_validator_shows_problems_as_you_type(server: ConsoleServer, page: Any) -> None:
    page.goto(server.url + "/console#/validate")
    page.wait_for_selector("#verdict[data-valid=true]", timeout=15_000)
    page.wait_for_selector("#vgraph[data-ready=true] svg.graph", timeout=15_000)
    broken = {"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "work", "Next": "Nowhere"},
        "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "A"}]},
    }}
    area = page.locator("#definition")
    area.fill("")
    area.press_sequentially(json.dumps(broken), delay=0)
    page.wait_for_selector("#verdict[data-valid=false]", timeout=10_000)
    pointers = page.locator("#problems [data-pointer]").evaluate_all("els => els.map(e => e.dataset.pointer)")
    assert "/States/A/Next" in pointers
    assert page.locator("#problems [data-pointer='/States/A/Next']").first.inner_text().count("Nowhere") == 1
    # the graph is drawn as far as it can be, with the problem on its node
    page.wait_for_selector("#vgraph svg.graph [data-node='/States/A'].problem", timeout=10_000)
    assert page.locator("#vgraph [data-kind=state]").count() == 2
    shot(page, "validator-problems")

    area.fill('{"StartAt": "A", "States": {')
    page.wait_for_selector("#problems [data-code=INVALID_JSON_DESCRIPTION]", timeout=10_000)
    area.fill(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}))
    page.wait_for_selector("#verdict[data-valid=true]", timeout=10_000)
    assert page.locator("#problems [data-pointer]").count() == 0


def test_live_counters_in_the_sidebar(server: ConsoleServer, page: Any) -> None:
    page.goto(server.url + "/console#/machines/orders")
    page.wait_for_selector("#graph[data-ready=true] svg.graph", timeout=15_000)
    for _ in range(5):
        server.execute("orders", {"kind": "single", "card": "expired"})
    bad = page.locator("#counters .counter.bad .v")
    wait_until(lambda: bad.count() == 1 and float(bad.text_content() or 0) >= 5)
    text = page.locator("#machine-list [data-counters=orders]").inner_text()
    assert "/s" in text and "p99" in text
    shot(page, "counters")


def test_home_and_machine_list(server: ConsoleServer, page: Any) -> None:
    page.goto(server.url + "/console")
    page.wait_for_selector("#machine-list [data-machine=orders]", timeout=15_000)
    page.locator("#machine-list [data-machine=simple] a").click()
    page.wait_for_selector("#graph[data-ready=true] svg.graph", timeout=15_000)
    assert page.locator("#graph [data-kind=state]").count() == 1
    assert page.locator("#graph [data-edge]").count() == 2
    shot(page, "simple")
