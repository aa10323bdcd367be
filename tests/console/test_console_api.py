"""The console's HTTP routes on a real server: pages, assets, the JSON API, live counters,
validation, authentication; and the service wiring of the recorder."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from consolesupport import ORDERS_EDGES, ORDERS_STATES, QUIET_MACHINES, ConsoleServer

from express.console.ring import ExecutionRing
from express.console.stats import LiveCounters, quantile
from express.serve.config import Settings
from express.serve.registry import Registry


@pytest.fixture(scope="module")
def server() -> Iterator[ConsoleServer]:
    s = ConsoleServer(ring_size=3, failed_size=5).start()
    try:
        yield s
    finally:
        s.stop()


def test_page_and_assets(server: ConsoleServer) -> None:
    for path in ("/console", "/console/", "/console/index.html"):
        status, headers, body = server.request("GET", path)
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b"/console/static/vendor/elk.bundled.js" in body
        assert "script-src 'self'" in headers["content-security-policy"]
    status, headers, body = server.request("GET", "/console/static/vendor/elk.bundled.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript") and len(body) > 1_000_000
    for asset in ("console.js", "graph.js", "console.css", "vendor/elkjs-LICENSE.md", "vendor/VERSION.txt"):
        assert server.request("GET", "/console/static/" + asset)[0] == 200, asset
    assert server.request("HEAD", "/console/static/console.js")[0] == 200
    assert server.request("GET", "/console/static/../app.py")[0] == 404
    assert server.request("GET", "/console/static/%2e%2e/app.py")[0] == 404
    assert server.request("GET", "/console/static/nope.js")[0] == 404
    assert server.request("GET", "/console/elsewhere")[0] == 404
    assert server.request("POST", "/console")[0] == 405
    assert server.request("GET", "/consoleX")[0] == 404  # not ours: the server's own 404


def test_machines_and_graph(server: ConsoleServer) -> None:
    status, body = server.get_json("/console/api/machines")
    assert status == 200 and body["recording"] is True and body["metrics"] is True
    names = [m["name"] for m in body["machines"]]
    assert names == ["orders", "simple"]
    orders = body["machines"][0]
    assert orders["logging"] == {"level": "ALL", "includeExecutionData": True} and orders["states"] == 7
    status, m = server.get_json("/console/api/machines/orders")
    assert status == 200 and m["definition"]["StartAt"] == "Validate"
    assert sum(n["kind"] == "state" for n in m["graph"]["nodes"]) == ORDERS_STATES
    assert len(m["graph"]["edges"]) == sum(ORDERS_EDGES.values())
    assert server.get_json("/console/api/machines/nope")[0] == 404
    assert server.get_json("/console/api/machines/orders/nope")[0] == 404
    assert server.get_json("/console/api/nope")[0] == 404
    assert server.request("POST", "/console/api/machines")[0] == 405


def test_machines_created_over_the_api_are_listed(server: ConsoleServer) -> None:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    status, created = server.api("CreateStateMachine", {
        "name": "made-later", "definition": json.dumps(definition), "type": "EXPRESS",
        "roleArn": "arn:aws:iam::000000000000:role/r"})
    assert status == 200, created
    status, run = server.api("StartSyncExecution", {"stateMachineArn": created["stateMachineArn"], "input": "{}"})
    assert status == 200 and run["status"] == "SUCCEEDED"
    _, body = server.get_json("/console/api/machines")
    assert "made-later" in [m["name"] for m in body["machines"]]
    _, executions = server.get_json("/console/api/machines/made-later/executions")
    assert [e["status"] for e in executions["executions"]] == ["SUCCEEDED"]
    assert server.api("DeleteStateMachine", {"stateMachineArn": created["stateMachineArn"]})[0] == 200
    _, body = server.get_json("/console/api/machines")  # forgets the deleted machine's executions
    assert "made-later" not in [m["name"] for m in body["machines"]]
    assert server.get_json("/console/api/machines/made-later/executions")[1]["executions"] == []


def test_executions(server: ConsoleServer) -> None:
    for _ in range(5):
        server.execute("orders", {"kind": "split"})
    for _ in range(2):
        server.execute("orders", {"kind": "single", "card": "expired"})
    status, body = server.get_json("/console/api/machines/orders/executions")
    assert status == 200 and body["size"] == 3 and body["failed_size"] == 5
    listed = body["executions"]
    assert [e["status"] for e in listed] == ["FAILED", "FAILED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]
    status, d = server.get_json(f"/console/api/machines/orders/executions/{listed[0]['id']}")
    assert status == 200 and d["failed_state"] == "Charge" and d["error"] == "CardExpired"
    assert d["path"] == ["Validate", "Route", "Charge"]
    assert d["events"][0]["type"] == "ExecutionStarted" and json.loads(d["input"]["text"])["card"] == "expired"
    assert server.get_json("/console/api/machines/orders/executions/999999")[0] == 404
    assert server.get_json("/console/api/machines/orders/executions/x")[0] == 404
    # a machine without logging: summaries, but no history
    server.execute("simple", {})
    _, body = server.get_json("/console/api/machines/simple/executions")
    e = body["executions"][0]
    assert e["history"] is False
    _, d = server.get_json(f"/console/api/machines/simple/executions/{e['id']}")
    # only the light trace: state names and times, no data
    assert d["trace"] is True and d["path"] == ["Hello"] and "output" not in d
    assert [e["type"] for e in d["events"]] == ["PassStateEntered", "PassStateExited"]


def test_stats(server: ConsoleServer) -> None:
    server.execute("orders", {"kind": "split"})
    status, first = server.get_json("/console/api/stats")
    assert status == 200 and first["enabled"] is True
    orders = first["machines"]["orders"]
    assert orders["executions"] >= 1 and orders["p99_s"] is not None and orders["p99_s"] > 0
    for _ in range(4):
        server.execute("orders", {"kind": "single", "card": "expired"})
    import time

    time.sleep(0.3)
    _, second = server.get_json("/console/api/stats")
    o2 = second["machines"]["orders"]
    assert o2["failures"] >= orders["failures"] + 4
    assert o2["executions_per_s"] is not None and o2["executions_per_s"] > 0
    assert o2["failures_per_s"] > 0 and o2["recent_p99_s"] is not None
    # the same numbers /metrics shows
    _, _, metrics = server.request("GET", "/metrics")
    failed = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.decode().splitlines()
                 if line.startswith("express_executions_total{") and 'machine="orders"' in line
                 and 'status="SUCCEEDED"' not in line)
    assert failed >= o2["failures"]


def test_validate(server: ConsoleServer) -> None:
    body = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}).encode()
    status, headers, data = server.request("POST", "/console/api/validate", body)
    out = json.loads(data)
    assert status == 200 and out["valid"] is False
    assert {"pointer": "/States/A/Next", "code": "MISSING_TRANSITION_TARGET",
            "message": "Missing 'Next' target: B", "node": "/States/A"} in out["problems"]
    assert headers["cache-control"] == "no-store"
    _, _, data = server.request("POST", "/console/api/validate", b"{nope")
    assert json.loads(data)["problems"][0]["code"] == "INVALID_JSON_DESCRIPTION"
    assert server.request("GET", "/console/api/validate")[0] == 405


def test_without_a_recorder() -> None:
    s = ConsoleServer(recorder=False).start()
    try:
        s.execute("orders", {"kind": "split"})
        _, body = s.get_json("/console/api/machines")
        assert body["recording"] is False
        _, body = s.get_json("/console/api/machines/orders/executions")
        assert body == {"recording": False, "executions": []}
        assert s.get_json("/console/api/machines/orders/executions/1")[0] == 404
    finally:
        s.stop()


TOKEN = "console-token-for-the-tests-0123456789"


def test_the_console_has_a_token_of_its_own_never_the_sigv4_secret() -> None:
    s = ConsoleServer(credentials={"AKIDEXAMPLE": "secret"}, console_token=TOKEN).start()
    try:
        # The page and its assets hold no data: they load, and the page asks for the token.
        assert s.request("GET", "/console")[0] == 200
        assert s.request("GET", "/console/static/console.js")[0] == 200
        status, headers, body = s.request("GET", "/console/api/machines")
        assert status == 401 and json.loads(body)["login"] is True
        # Bearer: a browser must not open its Basic dialog (which would send a password in clear).
        assert headers["www-authenticate"].startswith("Bearer")
        # The SigV4 secret is no console password any more, in any form.
        basic = "Basic " + base64.b64encode(b"AKIDEXAMPLE:secret").decode()
        for auth in (basic, "Bearer secret", "Bearer " + TOKEN[:-1], "Bearer", TOKEN):
            assert s.request("GET", "/console/api/machines", headers={"Authorization": auth})[0] == 401, auth
        assert s.get_json("/console/api/machines", headers={"Authorization": "Bearer " + TOKEN})[0] == 200
        assert s.request("POST", "/console/api/validate", b"{}", {"Authorization": "Bearer nope"})[0] == 401

        # The browser's way: POST the token once, then an HttpOnly, SameSite=Strict session cookie.
        for wrong in (b'{"token": "secret"}', b'{"token": 1}', b"not json", b"[]", b'{"token": "' + b"x" * 5000 + b'"}'):
            assert s.request("POST", "/console/api/login", wrong)[0] == 401
        assert s.request("GET", "/console/api/login")[0] == 405
        status, headers, body = s.request("POST", "/console/api/login", json.dumps({"token": TOKEN}).encode())
        assert status == 200 and json.loads(body) == {"ok": True, "required": True}
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        session = cookie.split(";")[0]
        assert TOKEN not in session  # derived from the token, not the token
        assert s.request("GET", "/console/api/machines", headers={"Cookie": session})[0] == 200
        assert s.request("GET", "/console/api/stats", headers={"Cookie": "a=b; " + session})[0] == 200
        assert s.request("GET", "/console/api/machines", headers={"Cookie": session + "0"})[0] == 401
        status, headers, _ = s.request("POST", "/console/api/logout")
        assert status == 200 and "Max-Age=0" in headers["set-cookie"]

        assert s.request("GET", "/healthz")[0] == 200  # unchanged
        # The API itself still wants SigV4, whatever the console token.
        assert s.api("ListStateMachines", {}, headers={"Authorization": "Bearer " + TOKEN})[0] == 400
    finally:
        s.stop()


def test_a_server_with_credentials_and_no_token_makes_one(capfd: Any) -> None:
    s = ConsoleServer(credentials={"AKIDEXAMPLE": "secret"}).start()
    try:
        assert s.request("GET", "/console/api/machines")[0] == 401
        line = next(x for x in capfd.readouterr().err.splitlines() if "console: login token" in x)
        token = line.split("login token ")[1].split()[0]
        assert len(token) >= 32 and token != "secret"
        assert s.request("GET", "/console/api/machines", headers={"Authorization": "Bearer " + token})[0] == 200
    finally:
        s.stop()


def test_a_token_without_credentials_protects_the_console() -> None:
    s = ConsoleServer(console_token=TOKEN).start()
    try:
        assert s.request("GET", "/console/api/machines")[0] == 401
        assert s.request("GET", "/console/api/machines", headers={"Authorization": "Bearer " + TOKEN})[0] == 200
    finally:
        s.stop()
    open_server = ConsoleServer().start()  # neither: open, as before (loopback development)
    try:
        assert open_server.request("GET", "/console/api/machines")[0] == 200
        status, _, body = open_server.request("POST", "/console/api/login", b"{}")
        assert status == 200 and json.loads(body)["required"] is False
    finally:
        open_server.stop()


def test_registry_passes_the_recorder_to_the_engine(tmp_path: Any) -> None:
    ring = ExecutionRing(1)
    settings = Settings(config_dir=str(tmp_path))
    assert Registry.from_settings(settings, recorder=ring).engine.recorder is ring
    assert Registry.from_settings(settings).engine.recorder is None


async def test_the_service_gives_its_engine_a_ring(tmp_path: Any) -> None:
    from express.serve.config import HttpSettings
    from express.serve.service import Service

    settings = Settings(config_dir=str(tmp_path), http=HttpSettings(host="127.0.0.1", port=0))
    service = Service(settings, kafka=False)
    await service.start()
    try:
        assert service.registry is not None and isinstance(service.registry.engine.recorder, ExecutionRing)
    finally:
        await service.stop()
    quiet = Service(settings, kafka=False, http_enabled=False)
    await quiet.start()
    try:
        assert quiet.registry is not None and quiet.registry.engine.recorder is None
    finally:
        await quiet.stop()


def test_live_counters_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    from express.console import stats

    now = [100.0]
    totals: dict[str, Any] = {}

    def fake_totals() -> dict[str, Any]:
        return {k: v for k, v in totals.items()}

    def make(finished: float, failed: float, buckets: dict[float, float]) -> Any:
        t = stats._Totals()
        t.finished, t.failed, t.buckets = finished, failed, dict(buckets)
        return t

    monkeypatch.setattr(stats, "read_totals", fake_totals)
    counters = LiveCounters(window_s=10.0, clock=lambda: now[0])
    totals["m"] = make(10, 1, {0.1: 10, float("inf"): 10})
    first = counters.snapshot()["machines"]["m"]
    assert first["executions_per_s"] is None and first["executions"] == 10
    now[0] += 2
    totals["m"] = make(30, 5, {0.1: 28, 1.0: 30, float("inf"): 30})
    second = counters.snapshot()["machines"]["m"]
    assert second["executions_per_s"] == pytest.approx(10.0) and second["failures_per_s"] == pytest.approx(2.0)
    assert 0.1 < second["recent_p99_s"] <= 1.0
    now[0] += 30  # much later: the rate is over the last window, from the newest old-enough snapshot
    totals["m"] = make(60, 5, {0.1: 58, 1.0: 60, float("inf"): 60})
    third = counters.snapshot()["machines"]["m"]
    assert third["executions_per_s"] == pytest.approx(30 / 30)
    assert third["failures_per_s"] == 0


def test_quantile() -> None:
    inf = float("inf")
    assert quantile(0.99, {}) is None
    assert quantile(0.99, {0.1: 0, inf: 0}) is None
    assert quantile(0.5, {1.0: 50, 2.0: 100, inf: 100}) == pytest.approx(1.0)
    assert quantile(0.99, {1.0: 50, 2.0: 100, inf: 100}) == pytest.approx(1.98)
    assert quantile(0.99, {1.0: 0, 5.0: 0, inf: 10}) == 5.0  # beyond the last bound


async def test_the_service_gives_the_console_a_generated_token(tmp_path: Any, capfd: Any) -> None:
    import aiohttp

    from express.serve.config import HttpSettings
    from express.serve.service import Service

    settings = Settings(config_dir=str(tmp_path), http=HttpSettings(host="127.0.0.1", port=0),
                        credentials={"AKIDEXAMPLE": "secret"})
    service = Service(settings, kafka=False)
    await service.start()
    try:
        token = service.settings.console.token
        assert len(token) >= 32 and f"console login token: {token}" in capfd.readouterr().err
        url = f"http://127.0.0.1:{service.http.port}/console/api/machines"
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200
            async with session.get(url, headers={"Authorization": "Bearer secret"}) as resp:
                assert resp.status == 401
    finally:
        await service.stop()


# ---------------------------------------------------------------------- start from the console, OFF level
@pytest.fixture(scope="module")
def quiet_server() -> Iterator[ConsoleServer]:
    s = ConsoleServer(extra=QUIET_MACHINES).start()
    try:
        yield s
    finally:
        s.stop()


def _start(s: ConsoleServer, machine: str, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, _, answer = s.request("POST", f"/console/api/machines/{machine}/executions", raw,
                                  headers={"Content-Type": "application/json"})
    return status, json.loads(answer)


def test_start_an_execution_from_the_console(quiet_server: ConsoleServer) -> None:
    status, r = _start(quiet_server, "orders", {"input": '{"kind": "single", "card": "ok"}', "name": "from-console"})
    assert status == 200, r
    assert r["status"] == "SUCCEEDED" and r["name"] == "from-console" and r["error"] is None
    assert json.loads(r["output"]["text"]) == {"charged": True}
    assert isinstance(r["id"], int)
    _, d = quiet_server.get_json(f"/console/api/machines/orders/executions/{r['id']}")
    assert d["name"] == "from-console" and d["path"] == ["Validate", "Route", "Charge", "Done"]
    status, r = _start(quiet_server, "orders", {"input": '{"kind": "single", "card": "expired"}'})
    assert status == 200 and r["status"] == "FAILED" and r["error"] == "CardExpired" and r["output"] is None
    assert r["name"].startswith("console-")


def test_starting_with_bad_input_says_where(quiet_server: ConsoleServer) -> None:
    status, r = _start(quiet_server, "orders", {"input": '{"kind":\n  "single",, }'})
    assert status == 400 and r["field"] == "input" and r["line"] == 2 and "line 2" in r["error"]
    assert _start(quiet_server, "orders", b"not json")[0] == 400
    assert _start(quiet_server, "orders", [1])[0] == 400
    assert _start(quiet_server, "orders", {"input": {"not": "text"}})[0] == 400
    status, r = _start(quiet_server, "orders", {"input": "{}", "name": "no spaces allowed"})
    assert status == 400 and "/name" in r["error"]
    assert _start(quiet_server, "nope", {"input": "{}"})[0] == 404
    assert quiet_server.request("PUT", "/console/api/machines/orders/executions")[0] == 405


def test_the_off_level_view_and_a_machine_timeout(quiet_server: ConsoleServer) -> None:
    quiet_server.execute("quiet", {"kind": "split"})
    quiet_server.execute("sleepy", {})
    _, listed = quiet_server.get_json("/console/api/machines/quiet/executions")
    e = listed["executions"][0]
    assert e["trace"] is True and e["history"] is False
    _, d = quiet_server.get_json(f"/console/api/machines/quiet/executions/{e['id']}")
    assert d["path"] == ["Validate", "Route", "Both", "Ship", "Notify", "Done"]
    assert all(v[0]["duration_ms"] is not None for v in d["states"].values())
    _, listed = quiet_server.get_json("/console/api/machines/sleepy/executions")
    t = listed["executions"][0]
    assert t["status"] == "TIMED_OUT" and t["error"] == "States.Timeout" and t["cause"]


def test_stats_have_percentiles_of_observed_durations(quiet_server: ConsoleServer) -> None:
    quiet_server.execute("simple", {})
    _, stats = quiet_server.get_json("/console/api/stats")
    observed = stats["machines"]["simple"]["observed"]
    assert observed["observed"] >= 1 and 0 <= observed["p50_s"] <= observed["p99_s"]
