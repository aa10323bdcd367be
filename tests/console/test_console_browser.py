"""The console in headless Chromium (Debian's ``chromium``, driven by Playwright's Python client;
no ``playwright install``), against a real server: the graph of a machine with Choice, Parallel,
Map and Catch, a failed execution on the graph, validation as you type. Screenshots go to
artifacts/console/."""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from consolesupport import ORDERS_EDGES, ORDERS_GROUPS, ORDERS_STATES, ORDERS_TERMINALS, QUIET_MACHINES, ConsoleServer

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


def test_login_with_the_console_token(browser: Any) -> None:
    """A server with credentials: the page asks for the console token (not the SigV4 secret), a
    wrong one is refused, the right one shows the machines and survives a reload (cookie)."""
    token = "browser-test-console-token-0123456789"
    s = ConsoleServer(credentials={"AKIDEXAMPLE": "the-sigv4-secret"}, console_token=token).start()
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    page_errors: list[str] = []
    pg.on("pageerror", lambda e: page_errors.append(str(e)))  # the 401 answers are logged, they are expected
    try:
        pg.goto(s.url + "/console")
        pg.wait_for_selector("#login #login-token", timeout=15_000)
        assert pg.locator("#machine-list [data-machine]").count() == 0
        pg.fill("#login-token", "the-sigv4-secret")
        pg.click("#login-submit")
        wait_until(lambda: pg.locator("#login-error").text_content() == "Wrong token.")
        shot(pg, "login")
        pg.fill("#login-token", token)
        pg.click("#login-submit")
        pg.wait_for_selector("#machine-list [data-machine=orders]", timeout=15_000)
        assert pg.locator("#login").count() == 0
        cookies = context.cookies()
        assert [c["httpOnly"] for c in cookies if c["name"] == "express_console"] == [True]
        assert all(token not in c["value"] for c in cookies)
        pg.reload()
        pg.wait_for_selector("#machine-list [data-machine=orders]", timeout=15_000)
        assert pg.locator("#login").count() == 0
    finally:
        context.close()
        s.stop()
    assert not page_errors, page_errors


# ---------------------------------------------------------------------- inspector, OFF level, search, start, 800 px
@pytest.fixture(scope="module")
def quiet() -> Iterator[ConsoleServer]:
    """orders (logging ALL with data) and simple as above, plus quiet (the same graph at logging
    OFF) and sleepy (ended by its own TimeoutSeconds)."""
    s = ConsoleServer(extra=QUIET_MACHINES).start()
    try:
        yield s
    finally:
        s.stop()


def open_machine(page: Any, server: ConsoleServer, machine: str, width: int = 1440) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(server.url + "/console#/machines/" + machine)
    page.wait_for_selector("#graph[data-ready=true] svg.graph", timeout=15_000)


def open_execution(page: Any, name: str) -> None:
    row = page.locator(f"#executions li.execution:has(.e-name[title='{name}'])")
    row.wait_for(timeout=10_000)
    row.click()
    page.wait_for_selector(f"#detail[data-execution-detail] .mono:text-is('{name}')", timeout=10_000)


def click_state(page: Any, name: str, compound: bool = False) -> None:
    node = page.locator(f"#graph [data-kind=state][data-state-name={name}]").first
    if compound:  # on its title, not on a state inside it
        node.locator("text.title").first.click()
    else:
        node.click()
    page.wait_for_selector(f"#inspector[data-inspected={name}]", timeout=10_000)


def test_inspector_shows_definition_input_output_events_and_iterations(quiet: ConsoleServer, page: Any) -> None:
    quiet.execute("orders", {"kind": "bulk", "items": ["a", "b", "c"]}, name="bulk-order")
    open_machine(page, quiet, "orders")
    # before any execution: the state's definition
    click_state(page, "Charge")
    inspector = page.locator("#inspector")
    assert '"Resource": "charge"' in inspector.locator("[data-state-definition]").inner_text()
    assert "Select an execution" in inspector.inner_text()
    assert page.locator("#graph [data-state-name=Charge].inspected").count() == 1
    open_execution(page, "bulk-order")
    # the Map's iterations, then one iteration of the state inside it
    click_state(page, "Fanout", compound=True)
    assert page.locator("#inspector-iteration option").count() == 3
    click_state(page, "Item")
    assert "In Fanout › Item processor" in inspector.locator("[data-where]").inner_text()
    options = page.locator("#inspector-visit option")
    assert options.count() == 3 and options.nth(2).inner_text().startswith("Iteration 2")
    page.select_option("#inspector-visit", "2")
    wait_until(lambda: '"c"' in inspector.locator("[data-inspector-input]").inner_text())
    assert '"item": "c"' in inspector.locator("[data-inspector-output]").inner_text()
    assert inspector.locator("tr[data-event=TaskStateEntered]").count() == 1
    assert inspector.locator("tr[data-event=LambdaFunctionSucceeded]").count() == 1
    assert "ms" in inspector.locator("[data-inspector-duration]").inner_text()
    shot(page, "inspector-map-iteration")

    # a failed state: its error and cause
    quiet.execute("orders", {"kind": "single", "card": "expired"}, name="expired-card")
    open_execution(page, "expired-card")
    click_state(page, "Charge")
    error = inspector.locator("[data-inspector-error]")
    assert "CardExpired" in error.inner_text() and "expired in 01/2020" in error.inner_text()
    assert '"card": "expired"' in inspector.locator("[data-inspector-input]").inner_text()
    shot(page, "inspector-failed-state")


def test_logging_off_shows_path_outcome_and_durations(quiet: ConsoleServer, page: Any) -> None:
    quiet.execute("quiet", {"kind": "split"}, name="quiet-split")
    open_machine(page, quiet, "quiet")
    open_execution(page, "quiet-split")
    detail = page.locator("#detail")
    assert detail.locator("[data-trace=true]").count() == 1
    assert "No event history" not in detail.inner_text()
    visited = set(page.locator("#graph [data-kind=state].visited").evaluate_all(
        "els => els.map(e => e.dataset.stateName)"))
    assert visited == {"Validate", "Route", "Both", "Ship", "Notify", "Done"}
    assert page.locator("#graph [data-kind=terminal][data-state-name=End].visited").count() == 1
    rows = page.locator("#timeline tbody tr[data-visit]")
    assert rows.count() == 6
    assert all(t.strip() != "–" for t in page.locator("#timeline [data-duration]").all_inner_texts())
    click_state(page, "Both", compound=True)
    branches = page.locator("#inspector [data-branch]").all_inner_texts()
    assert branches == ["Branch 1: Ship", "Branch 2: Notify"]
    assert "logging is OFF" in page.locator("#inspector").inner_text()
    shot(page, "off-level-trace")


def test_a_timed_out_execution_shows_its_error(quiet: ConsoleServer, page: Any) -> None:
    quiet.execute("sleepy", {}, name="too-slow")
    open_machine(page, quiet, "sleepy")
    open_execution(page, "too-slow")
    failure = page.locator("#detail [data-failure]")
    assert "States.Timeout" in failure.inner_text() and "TimeoutSeconds" in failure.inner_text()
    assert "null" not in failure.inner_text()
    assert page.locator("#graph [data-failed=true][data-state-name=Nap]").count() == 1
    shot(page, "timed-out")


def test_search_filter_dates_and_expandable_event_details(quiet: ConsoleServer, page: Any) -> None:
    quiet.execute("orders", {"kind": "bulk", "items": [{"sku": f"item-{i:03}"} for i in range(30)]}, name="needle-big")
    quiet.execute("orders", {"kind": "single", "card": "declined"}, name="haystack-declined")
    quiet.execute("orders", {"kind": "split"}, name="haystack-split")
    open_machine(page, quiet, "orders")
    page.wait_for_selector("#executions li.execution:has(.e-name[title='haystack-split'])", timeout=10_000)
    first_date = page.locator("#executions .e-time").first.inner_text()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}", first_date), first_date
    page.fill("#exec-search", "needle")
    wait_until(lambda: page.locator("#executions li.execution").count() == 1)
    assert page.locator("#executions .e-name").inner_text() == "needle-big"
    page.fill("#exec-search", "haystack")
    page.select_option("#exec-status", "FAILED")
    wait_until(lambda: page.locator("#executions li.execution").count() == 1)
    assert page.locator("#executions li.execution").get_attribute("data-status") == "FAILED"
    assert "(1 of" in page.locator("#exec-count").inner_text()
    shot(page, "search-and-filter")
    page.select_option("#exec-status", "all")
    page.fill("#exec-search", "")
    open_execution(page, "needle-big")
    # the Map's output is long: cut in the table, whole a click away
    more = page.locator("#detail tr[data-event=MapStateExited] details[data-detail=output]")
    assert more.count() == 1
    assert "item-029" not in more.locator("summary").inner_text()
    assert not more.locator("pre").is_visible()
    more.locator("summary").click()
    wait_until(lambda: more.locator("pre").is_visible())
    assert "item-029" in more.locator("pre").inner_text()
    more.scroll_into_view_if_needed()
    shot(page, "event-details-expanded")


def test_start_an_execution_and_read_the_definition(quiet: ConsoleServer, page: Any) -> None:
    open_machine(page, quiet, "orders")
    page.click("#definition-open")
    page.wait_for_selector("#definition-text", timeout=10_000)
    assert '"StartAt": "Validate"' in page.locator("#definition-text").inner_text()
    shot(page, "definition")
    page.click("#start-open")
    page.wait_for_selector("#start-input", timeout=10_000)
    assert page.locator("#definition-panel").is_hidden()
    page.fill("#start-input", '{"kind": "single", "card": ')
    wait_until(lambda: "✕" in page.locator("#start-verdict").inner_text())
    page.fill("#start-input", '{\n  "kind": "single",\n  "card": "fine"\n}')
    page.fill("#start-name", "started-in-browser")
    page.click("#start-run")
    page.wait_for_selector("#start-result[data-status=SUCCEEDED]", timeout=15_000)
    assert '"charged": true' in page.locator("#start-output").inner_text()
    shot(page, "start-execution")
    page.click("#start-show")
    page.wait_for_selector("#detail .mono:text-is('started-in-browser')", timeout=10_000)
    visited = set(page.locator("#graph [data-kind=state].visited").evaluate_all(
        "els => els.map(e => e.dataset.stateName)"))
    assert visited == {"Validate", "Route", "Charge", "Done"}
    page.fill("#start-input", '{"kind": "single", "card": "declined"}')
    page.fill("#start-name", "")
    page.click("#start-run")
    page.wait_for_selector("#start-result[data-status=FAILED]", timeout=15_000)
    assert "OrderDeclined" in page.locator("#start-result").inner_text()


@pytest.mark.parametrize("width", [800, 1024])
def test_layout_from_800_px(quiet: ConsoleServer, page: Any, width: int) -> None:
    quiet.execute("orders", {"kind": "single", "card": "expired"}, name=f"narrow-{width}")
    open_machine(page, quiet, "orders", width=width)
    open_execution(page, f"narrow-{width}")
    click_state(page, "Charge")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width  # no sideways scrolling
    for box in page.locator("#counters .counter").all():
        b = box.bounding_box()
        assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= width, b
    graph = page.locator("#graph svg.graph").bounding_box()
    assert graph is not None and graph["width"] >= min(520, width * 0.5), graph
    node = page.locator("#graph [data-kind=state][data-state-name=Charge] rect").first.bounding_box()
    assert node is not None and node["height"] >= 30  # drawn at a readable size, not a thumbnail
    executions = page.locator("#executions").bounding_box()
    assert executions is not None and executions["width"] >= 300
    shot(page, f"layout-{width}")
