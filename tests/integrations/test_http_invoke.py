"""The HTTP Task (arn:aws:states:::http:invoke) against a real aiohttp.web server on a loopback port,
through Engine(...).compile(definition).execute(...) end to end."""
from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

import express
from express.integrations import Integrations, http_invoke
from express.integrations.connections import Connection, default_arn, find
from express.integrations.http_invoke import HttpPool, form_encode

RESOURCE = "arn:aws:states:::http:invoke"
MACHINE_ARN = "arn:aws:states:eu-west-3:123456789012:stateMachine:machine"


def arn(name: str) -> str:
    return f"arn:aws:events:us-east-1:123456789012:connection/{name}/0b1b6a7e-9d6e-4b8e-8f5b-3f7d2d5b1c11"


class Api:
    """The server's side: what it saw, and the behaviours a test switches on."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.token_calls = 0
        self.valid_tokens: set[str] = set()
        self.flaky_left = 0
        self.base = ""

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = {"method": request.method, "path": request.path, "query": request.raw_path.partition("?")[2],
                "headers": {k: v for k, v in request.headers.items()}, "body": body.decode(),
                "peer": request.transport.get_extra_info("peername")[1] if request.transport else None}
        self.requests.append(seen)
        return web.json_response(seen, headers={"X-Multi": "a"})

    async def text(self, request: web.Request) -> web.Response:
        return web.Response(text="hello, world", headers={"Set-Cookie": "a=1"})

    async def status(self, request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.json_response({"message": f"answered {code}"}, status=code)

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response(text="late")

    async def big(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})  # chunked: no Content-Length
        await resp.prepare(request)
        for _ in range(300):
            await resp.write(b"x" * 1024)
        await resp.write_eof()
        return resp

    async def big_length(self, request: web.Request) -> web.Response:
        return web.Response(body=b"y" * (256 * 1024 + 1), content_type="text/plain")

    async def binary(self, request: web.Request) -> web.Response:
        return web.Response(body=b"\x00\x01", content_type="application/octet-stream")

    async def invalid_text(self, request: web.Request) -> web.Response:
        return web.Response(body=b"\xff\xfe\xfa", content_type="text/plain", charset="utf-8")

    async def flaky(self, request: web.Request) -> web.Response:
        if self.flaky_left > 0:
            self.flaky_left -= 1
            return web.json_response({"busy": True}, status=503)
        return web.json_response({"ok": True})

    async def redirect(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/json"})

    async def token(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        expected = "Basic " + base64.b64encode(b"cid:csecret").decode()
        form = await request.post()
        if request.headers.get("Authorization") != expected or form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "invalid_client"}, status=401)
        token = f"tok-{self.token_calls}"
        self.valid_tokens.add(token)
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                                  "scope": form.get("scope")})

    async def oauth_api(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            return web.json_response({"message": "bad token"}, status=401)
        return web.json_response({"token": auth[7:]})


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    state = Api()
    app = web.Application()
    app.router.add_route("*", "/json", state.echo)
    app.router.add_route("*", "/json/{tail:.*}", state.echo)
    app.router.add_get("/text", state.text)
    app.router.add_route("*", "/status/{code}", state.status)
    app.router.add_get("/slow", state.slow)
    app.router.add_get("/big", state.big)
    app.router.add_get("/big-length", state.big_length)
    app.router.add_get("/binary", state.binary)
    app.router.add_get("/invalid-text", state.invalid_text)
    app.router.add_get("/flaky", state.flaky)
    app.router.add_get("/redirect", state.redirect)
    app.router.add_post("/token", state.token)
    app.router.add_get("/oauth-api", state.oauth_api)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.base = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


CONNECTIONS = [
    Connection("apikey", "API_KEY", api_key_name="x-api-key", api_key_value="the-key",
               headers={"X-Conn": "from-connection", "Header-Param": "connection_header_param"},
               query={"QueryParam": "connection_query_param"}),
    Connection("basic", "BASIC", username="ann", password="s3cret"),
    Connection("withbody", "API_KEY", api_key_name="ApiKey", api_key_value="key_value",
               body={"BodyParam": "connection_body_param"}),
]


@pytest.fixture
async def integrations(api: Api) -> AsyncIterator[Integrations]:
    oauth = Connection("oauth", "OAUTH_CLIENT_CREDENTIALS", token_endpoint=f"{api.base}/token",
                       client_id="cid", client_secret="csecret", scope="read")
    integ = Integrations(connections={c.name: c for c in [*CONNECTIONS, oauth]})
    try:
        yield integ
    finally:
        await integ.aclose()


def task(parameters: dict[str, Any], **state: Any) -> dict[str, Any]:
    return {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": RESOURCE, "Parameters": parameters,
                                                  "End": True, **state}}}


def params(api: Api, path: str, connection: str = "apikey", method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {"ApiEndpoint": api.base + path, "Method": method, "Authentication": {"ConnectionArn": arn(connection)},
            **extra}


async def run(integ: Integrations, definition: dict[str, Any], inp: Any = None) -> express.ExecutionResult:
    engine = express.Engine(integrations=integ)
    return await engine.compile(definition).execute({} if inp is None else inp)


# ------------------------------------------------------------------------------------------ successes
async def test_json_response_is_parsed_and_the_request_is_as_aws_sends_it(api, integrations):
    r = await run(integrations, task(params(api, "/json", method="POST", Headers={"Request-Id": "my_request_id",
                                                                                  "Header-Param": "mine"},
                                            QueryParameters={"QueryParam": "mine", "page": 2},
                                            RequestBody={"Job": "Software Engineer", "BodyParam": "mine"})))
    assert r.status == "SUCCEEDED", r.cause
    out = r.output
    assert list(out) == ["Headers", "ResponseBody", "StatusCode", "StatusText"]
    assert out["StatusCode"] == 200 and out["StatusText"] == "OK"
    assert out["Headers"]["content-type"] == ["application/json; charset=utf-8"]
    assert out["Headers"]["x-multi"] == ["a"]
    seen = out["ResponseBody"]
    assert seen == api.requests[-1]
    h = seen["headers"]
    assert h["User-Agent"] == "Amazon|StepFunctions|HttpInvoke|us-east-1"
    assert h["Range"] == "bytes=0-262144"
    assert h["Content-Type"] == "application/json; charset=UTF-8"
    assert h["x-api-key"] == "the-key"
    assert h["X-Conn"] == "from-connection"
    assert h["Header-Param"] == "connection_header_param"  # the connection's value wins
    assert h["Request-Id"] == "my_request_id"
    assert "Accept-Encoding" not in h and "Accept" not in h and "Cookie" not in h
    assert seen["query"] == "QueryParam=connection_query_param&page=2"
    assert json.loads(seen["body"]) == {"Job": "Software Engineer", "BodyParam": "mine"}


async def test_user_agent_names_the_region_of_the_machine(api, integrations):
    pool = HttpPool(integrations.connections)
    try:
        out = await pool.invoke(params(api, "/json"), MACHINE_ARN)
    finally:
        await pool.aclose()
    assert out["ResponseBody"]["headers"]["User-Agent"] == "Amazon|StepFunctions|HttpInvoke|eu-west-3"
    assert "Content-Type" not in out["ResponseBody"]["headers"]  # no body, no content type


async def test_text_response_stays_a_string(api, integrations):
    r = await run(integrations, task(params(api, "/text")))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["ResponseBody"] == "hello, world"
    assert r.output["Headers"]["set-cookie"] == ["a=1"]


async def test_parameters_from_the_input_and_a_result_selector(api, integrations):
    definition = task({"ApiEndpoint.$": "States.Format('" + api.base + "/json/{}', $.id)", "Method.$": "$.method",
                       "Authentication": {"ConnectionArn": arn("apikey")}, "Headers.$": "$.headers"},
                      ResultSelector={"path.$": "$.ResponseBody.path", "code.$": "$.StatusCode"})
    r = await run(integrations, definition, {"id": "c-42", "method": "DELETE", "headers": {"X-Trace": "t1"}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"path": "/json/c-42", "code": 200}
    assert api.requests[-1]["method"] == "DELETE" and api.requests[-1]["headers"]["X-Trace"] == "t1"


async def test_jsonata_arguments(api, integrations):
    definition = {"QueryLanguage": "JSONata", "StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": RESOURCE, "End": True,
        "Arguments": {"ApiEndpoint": api.base + "/json", "Method": "POST",
                      "InvocationConfig": {"ConnectionArn": arn("basic")},
                      "RequestBody": "{% {'n': $states.input.n * 2} %}"},
        "Output": "{% $states.result.ResponseBody.body %}"}}}
    r = await run(integrations, definition, {"n": 21})
    assert r.status == "SUCCEEDED", r.cause
    assert json.loads(r.output) == {"n": 42}


# ----------------------------------------------------------------------------------------- encodings
def test_form_encoding_array_formats_as_aws_documents():
    body = {"array": ["a", "b", "c", "d"]}
    assert form_encode(body, "INDICES") == "array%5B0%5D=a&array%5B1%5D=b&array%5B2%5D=c&array%5B3%5D=d"
    assert form_encode(body, "REPEAT") == "array=a&array=b&array=c&array=d"
    assert form_encode(body, "COMMAS") == "array=a,b,c,d"
    assert form_encode(body, "BRACKETS") == "array%5B%5D=a&array%5B%5D=b&array%5B%5D=c&array%5B%5D=d"
    # AWS's Stripe example: spaces as %20, nested objects as key[sub]
    assert form_encode({"description": "Monthly subscription",
                        "metadata": {"order_details": "monthly report data"}, "customer": "1234567890"}) == (
        "description=Monthly%20subscription&metadata%5Border_details%5D=monthly%20report%20data&customer=1234567890")
    assert form_encode({"n": 1, "f": 1.5, "t": True, "z": None, "s": "a&b=c/d"}) == "n=1&f=1.5&t=true&z=&s=a%26b%3Dc%2Fd"


@pytest.mark.parametrize(("fmt", "expected"), [
    ("INDICES", "tags%5B0%5D=x&tags%5B1%5D=y&who=Ann%20Lee"),
    ("REPEAT", "tags=x&tags=y&who=Ann%20Lee"),
    ("COMMAS", "tags=x,y&who=Ann%20Lee"),
    ("BRACKETS", "tags%5B%5D=x&tags%5B%5D=y&who=Ann%20Lee"),
])
async def test_url_encoded_body_reaches_the_server(api, integrations, fmt, expected):
    r = await run(integrations, task(params(
        api, "/json", connection="basic", method="POST", Headers={"Content-Type": "application/x-www-form-urlencoded"},
        RequestBody={"tags": ["x", "y"], "who": "Ann Lee"},
        Transform={"RequestBodyEncoding": "URL_ENCODED", "RequestEncodingOptions": {"ArrayFormat": fmt}})))
    assert r.status == "SUCCEEDED", r.cause
    seen = r.output["ResponseBody"]
    assert seen["body"] == expected
    assert seen["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


async def test_query_parameters_are_url_encoded_and_appended(api, integrations):
    r = await run(integrations, task(params(api, "/json?fixed=1", connection="basic",
                                            QueryParameters={"q": "a b&c", "ids": [1, 2]})))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["ResponseBody"]["query"] == "fixed=1&q=a%20b%26c&ids=1&ids=2"


async def test_connection_body_parameters_merge_into_the_request_body(api, integrations):
    r = await run(integrations, task(params(api, "/json", connection="withbody", method="POST",
                                            RequestBody={"Job": "Engineer", "BodyParam": "state_machine_body_param"})))
    assert r.status == "SUCCEEDED", r.cause
    assert json.loads(r.output["ResponseBody"]["body"]) == {"Job": "Engineer", "BodyParam": "connection_body_param"}
    assert r.output["ResponseBody"]["headers"]["ApiKey"] == "key_value"


async def test_a_string_body_cannot_merge_with_connection_body_parameters(api, integrations):
    r = await run(integrations, task(params(api, "/json", connection="withbody", method="POST", RequestBody="raw")))
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert "cannot be merged" in r.cause and r.cause.startswith("An error occurred while executing the state 'Call'")


# ---------------------------------------------------------------------------------------- authorization
async def test_basic_authorization(api, integrations):
    r = await run(integrations, task(params(api, "/json", connection="basic")))
    assert r.status == "SUCCEEDED", r.cause
    expected = "Basic " + base64.b64encode(b"ann:s3cret").decode()
    assert api.requests[-1]["headers"]["Authorization"] == expected


async def test_oauth_client_credentials_token_is_fetched_once_and_cached(api, integrations):
    definition = task(params(api, "/oauth-api", connection="oauth"))
    first = await run(integrations, definition)
    second = await run(integrations, definition)
    assert first.status == second.status == "SUCCEEDED", first.cause
    assert first.output["ResponseBody"] == second.output["ResponseBody"] == {"token": "tok-1"}
    assert api.token_calls == 1


async def test_oauth_token_refused_by_the_api_is_fetched_again(api, integrations):
    definition = task(params(api, "/oauth-api", connection="oauth"))
    assert (await run(integrations, definition)).output["ResponseBody"] == {"token": "tok-1"}
    api.valid_tokens.clear()  # the API revokes it: the next call gets a 401, then a new token
    r = await run(integrations, definition)
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["ResponseBody"] == {"token": "tok-2"}
    assert api.token_calls == 2


async def test_oauth_bad_client_secret_fails_without_showing_it(api):
    bad = Connection("oauth", "OAUTH_CLIENT_CREDENTIALS", token_endpoint=f"{api.base}/token",
                     client_id="cid", client_secret="wrong-secret-value")
    integ = Integrations(connections={"oauth": bad})
    try:
        r = await run(integ, task(params(api, "/oauth-api", connection="oauth")))
    finally:
        await integ.aclose()
    assert r.status == "FAILED"
    assert r.error == "Events.ConnectionResource.InvalidConnectionState"
    assert "401" in r.cause and "wrong-secret-value" not in r.cause
    assert "wrong-secret-value" not in repr(bad)


async def test_unknown_connection(api, integrations):
    r = await run(integrations, task(params(api, "/json", connection="nope")))
    assert r.status == "FAILED"
    assert r.error == "Events.ConnectionResource.ResourceNotFound"
    assert r.cause == "Connection 'nope' does not exist."


def test_connections_are_found_by_name_whatever_the_region_account_and_id():
    c = Connection("stripe", "BASIC", username="u", password="p")
    assert c.arn == default_arn("stripe")
    assert c.arn.startswith("arn:aws:events:us-east-1:000000000000:connection/stripe/")
    assert find({"stripe": c}, "arn:aws:events:eu-west-1:999999999999:connection/stripe/abc") is c
    assert find({c.arn: c}, "arn:aws:events:eu-west-1:999999999999:connection/stripe/abc") is c
    assert find({"stripe": c}, "arn:aws:events:eu-west-1:999999999999:connection/other/abc") is None
    assert "p'" not in repr(c) and "password=" not in repr(c)


# ------------------------------------------------------------------------------------------- failures
@pytest.mark.parametrize("code", [400, 404, 429, 500, 503])
async def test_non_2xx_fails_with_the_status_code_error(api, integrations, code):
    r = await run(integrations, task(params(api, f"/status/{code}")))
    assert r.status == "FAILED"
    assert r.error == f"States.Http.StatusCode.{code}"
    cause = json.loads(r.cause)
    assert cause["StatusCode"] == code
    assert cause["ResponseBody"] == {"message": f"answered {code}"}
    assert list(cause) == ["Headers", "ResponseBody", "StatusCode", "StatusText"]


async def test_redirects_are_not_followed(api, integrations):
    r = await run(integrations, task(params(api, "/redirect")))
    assert r.error == "States.Http.StatusCode.302"


async def test_status_errors_are_caught(api, integrations):
    definition = {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": RESOURCE, "Parameters": params(api, "/status/404"),
                 "Catch": [{"ErrorEquals": ["States.Http.StatusCode.404"], "ResultPath": "$.err", "Next": "Gone"}],
                 "End": True},
        "Gone": {"Type": "Pass", "End": True}}}
    r = await run(integrations, definition, {"k": 1})
    assert r.status == "SUCCEEDED"
    assert r.output["k"] == 1 and r.output["err"]["Error"] == "States.Http.StatusCode.404"
    assert json.loads(r.output["err"]["Cause"])["StatusCode"] == 404


async def test_status_errors_are_retried(api, integrations):
    api.flaky_left = 2
    definition = task(params(api, "/flaky"), Retry=[{"ErrorEquals": ["States.Http.StatusCode.503"],
                                                     "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1}])
    engine = express.Engine(integrations=integrations, clock=express.VirtualClock())
    r = await engine.compile(definition).execute({})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["ResponseBody"] == {"ok": True} and api.flaky_left == 0


async def test_refused_connection_is_a_socket_error_and_retried_then_caught(api, integrations):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    definition = {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": RESOURCE,
                 "Parameters": {"ApiEndpoint": f"http://127.0.0.1:{port}/x", "Method": "GET",
                                "Authentication": {"ConnectionArn": arn("basic")}},
                 "Retry": [{"ErrorEquals": ["States.Http.Socket"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Down"}], "End": True},
        "Down": {"Type": "Pass", "End": True}}}
    engine = express.Engine(integrations=integrations, clock=express.VirtualClock())
    r = await engine.compile(definition).execute({})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["Error"] == "States.Http.Socket"
    assert str(port) in r.output["Cause"]


async def test_slow_server_fails_with_the_task_timeout(api, integrations):
    r = await run(integrations, task(params(api, "/slow"), TimeoutSeconds=1))
    assert r.status == "FAILED"
    assert r.error == "States.Timeout"


async def test_request_past_the_http_limit_is_a_socket_error(api, integrations, monkeypatch):
    monkeypatch.setattr(http_invoke, "REQUEST_TIMEOUT_S", 0.5)  # AWS's 60 s, shortened
    r = await run(integrations, task(params(api, "/slow")))
    assert r.status == "FAILED"
    assert r.error == "States.Http.Socket"
    assert "timed out" in r.cause


@pytest.mark.parametrize("path", ["/big", "/big-length"])
async def test_body_above_the_payload_limit(api, integrations, path):
    r = await run(integrations, task(params(api, path)))
    assert r.status == "FAILED"
    assert r.error == "States.DataLimitExceeded"


@pytest.mark.parametrize("path", ["/binary", "/invalid-text"])
async def test_unsupported_responses_fail_with_runtime(api, integrations, path):
    definition = task(params(api, path), Catch=[{"ErrorEquals": ["States.ALL"], "Next": "X"}])
    definition["States"]["X"] = {"Type": "Succeed"}
    r = await run(integrations, definition)
    assert r.status == "FAILED"  # States.Runtime is not caught
    assert r.error == "States.Runtime"


@pytest.mark.parametrize("header", ["Host", "authorization", "Accept-Encoding", "X-Forwarded-For", "x-amz-date",
                                    "X-Amzn-Trace-Id", "Transfer-Encoding", "If-None-Match"])
async def test_forbidden_headers_are_refused(api, integrations, header):
    r = await run(integrations, task(params(api, "/json", Headers={header: "v"})))
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert f"The header '{header}' is not allowed" in r.cause
    assert api.requests == []  # nothing was sent


async def test_step_functions_headers_replace_the_tasks_own(api, integrations):
    r = await run(integrations, task(params(api, "/json", connection="basic",
                                            Headers={"user-agent": "mine", "range": "bytes=0-1"})))
    assert r.status == "SUCCEEDED", r.cause
    h = r.output["ResponseBody"]["headers"]
    assert h["User-Agent"] == "Amazon|StepFunctions|HttpInvoke|us-east-1" and h["Range"] == "bytes=0-262144"


@pytest.mark.parametrize(("parameters", "problem"), [
    ({"Method": "GET", "Authentication": {"ConnectionArn": arn("basic")}},
     "The field 'ApiEndpoint' is required but was missing"),
    ({"ApiEndpoint": "http://127.0.0.1:1/", "Authentication": {"ConnectionArn": arn("basic")}},
     "The field 'Method' is required but was missing"),
    ({"ApiEndpoint": "http://127.0.0.1:1/", "Method": "GET"},
     "The field 'Authentication' is required but was missing"),
    ({"ApiEndpoint": "http://127.0.0.1:1/", "Method": "GET", "Authentication": {}},
     "The field 'ConnectionArn' is required but was missing"),
    ({"ApiEndpoint": "http://127.0.0.1:1/", "Method": "FETCH", "Authentication": {"ConnectionArn": arn("basic")}},
     "The field 'Method' should have one of these values: [GET, POST, PUT, DELETE, PATCH, OPTIONS, HEAD]"),
    ({"ApiEndpoint": "ftp://x/", "Method": "GET", "Authentication": {"ConnectionArn": arn("basic")}},
     "The value for the field 'ApiEndpoint' must be an HTTPS URL, got 'ftp://x/'"),
    ({"ApiEndpoint": "http://127.0.0.1:1/", "Method": "POST", "Authentication": {"ConnectionArn": arn("basic")},
      "Transform": {"RequestBodyEncoding": "GZIP"}},
     "The field 'RequestBodyEncoding' should have one of these values: [NONE, URL_ENCODED]"),
    ({"ApiEndpoint": "http://127.0.0.1:1/", "Method": "POST", "Authentication": {"ConnectionArn": arn("basic")},
      "Transform": {"RequestEncodingOptions": {"ArrayFormat": "JSON"}}},
     "The field 'ArrayFormat' should have one of these values: [INDICES, REPEAT, COMMAS, BRACKETS]"),
])
async def test_unusable_parameters_fail_with_runtime_naming_the_field(integrations, parameters, problem):
    r = await run(integrations, task(parameters))
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert r.cause.startswith("An error occurred while executing the state 'Call' (entered at the event id #2). "
                              "The Parameters '{")
    assert r.cause.endswith(f"could not be used to start the Task: [{problem}]")


async def test_head_request(api, integrations):
    r = await run(integrations, task(params(api, "/big-length", connection="basic", method="HEAD")))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["ResponseBody"] == "" and r.output["Headers"]["content-length"] == [str(256 * 1024 + 1)]


async def test_connection_arn_that_is_no_connection_arn(api, integrations):
    p = params(api, "/json")
    p["Authentication"] = {"ConnectionArn": "arn:aws:sqs:us-east-1:123456789012:queue"}
    r = await run(integrations, task(p))
    assert r.status == "FAILED" and r.error == "States.Runtime"
    assert "is not a valid EventBridge connection ARN" in r.cause


async def test_keep_alive_reuses_one_connection(api, integrations):
    definition = task(params(api, "/json", connection="basic"))
    for _ in range(5):
        assert (await run(integrations, definition)).status == "SUCCEEDED"
    assert len(api.requests) == 5
    assert len({r["peer"] for r in api.requests}) == 1  # one client socket, kept alive
    pool = integrations.pooled("http", lambda: None)
    assert isinstance(pool, HttpPool)
    connector = pool._client().connector
    assert connector is not None and connector.limit == http_invoke.MAX_CONNECTIONS
