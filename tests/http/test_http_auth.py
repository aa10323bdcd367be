"""SigV4 authentication: right key passes; wrong key, wrong secret, no signature, a tampered body
and a replayed old request are refused, and nothing runs for them."""
from __future__ import annotations

import datetime
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from httpsupport import ServerThread, arn

KEY, SECRET = "AKIDTESTKEY", "test-secret-key"


@pytest.fixture
def secured() -> Iterator[ServerThread]:
    s = ServerThread(credentials={KEY: SECRET}).start()
    s.counter.delay = 0
    try:
        yield s
    finally:
        s.stop()


def signed_request(port: int, body: bytes, when: datetime.datetime, secret: str = SECRET) -> AWSRequest:
    """A request signed by botocore as of ``when`` (for the replay test)."""
    url = f"http://127.0.0.1:{port}/"
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions.StartSyncExecution",
        "Host": f"127.0.0.1:{port}", "X-Amz-Date": when.strftime("%Y%m%dT%H%M%SZ")})
    signer = SigV4Auth(Credentials(KEY, secret), "states", "us-east-1")
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={KEY}/{when:%Y%m%d}/us-east-1/states/aws4_request, "
        f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, Signature={signature}")
    return request


def send(port: int, request: AWSRequest, body: bytes | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/", body=request.body if body is None else body, headers=dict(request.headers.items()))
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_right_key_passes(secured: ServerThread) -> None:
    sfn = secured.client(access_key=KEY, secret=SECRET)
    r = sfn.start_sync_execution(stateMachineArn=arn("counted"), input='{"a": 1}')
    assert r["status"] == "SUCCEEDED" and secured.counter.calls == 1
    assert sfn.list_state_machines()["stateMachines"]


@pytest.mark.parametrize("access_key,secret,code", [
    (KEY, "wrong-secret", "InvalidSignatureException"),
    ("AKIDUNKNOWN", SECRET, "UnrecognizedClientException"),
])
def test_wrong_credentials_are_refused(secured: ServerThread, access_key: str, secret: str, code: str) -> None:
    sfn = secured.client(access_key=access_key, secret=secret)
    with pytest.raises(ClientError) as exc:
        sfn.start_sync_execution(stateMachineArn=arn("counted"))
    assert exc.value.response["Error"]["Code"] == code
    assert secured.counter.calls == 0


def test_unsigned_request_is_refused(secured: ServerThread) -> None:
    sfn = secured.client(signature_version=UNSIGNED)
    with pytest.raises(ClientError) as exc:
        sfn.start_sync_execution(stateMachineArn=arn("counted"))
    assert exc.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"
    status, _, body = secured.request("POST", "/", b"{}", {"X-Amz-Target": "AWSStepFunctions.ListStateMachines"})
    assert status == 403 and json.loads(body)["__type"] == "MissingAuthenticationTokenException"
    status, _, body = secured.request("POST", "/", b"{}", {"X-Amz-Target": "AWSStepFunctions.ListStateMachines",
                                                           "Authorization": "AWS4-HMAC-SHA256 garbage"})
    assert status == 400 and json.loads(body)["__type"] == "IncompleteSignatureException"
    assert secured.counter.calls == 0


def test_replayed_old_request_is_refused(secured: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("counted")}).encode()
    now = datetime.datetime.now(datetime.UTC)
    fresh = signed_request(secured.port, body, now)
    status, answer = send(secured.port, fresh)
    assert status == 200 and answer["status"] == "SUCCEEDED"
    assert secured.counter.calls == 1
    old = signed_request(secured.port, body, now - datetime.timedelta(minutes=6))
    status, answer = send(secured.port, old)
    assert status == 403 and answer["__type"] == "InvalidSignatureException"
    assert answer["message"].startswith("Signature expired")
    future = signed_request(secured.port, body, now + datetime.timedelta(minutes=6))
    status, answer = send(secured.port, future)
    assert status == 403 and answer["__type"] == "InvalidSignatureException"
    assert secured.counter.calls == 1


def test_tampered_body_is_refused(secured: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("pass")}).encode()
    request = signed_request(secured.port, body, datetime.datetime.now(datetime.UTC))
    tampered = json.dumps({"stateMachineArn": arn("counted")}).encode()
    status, answer = send(secured.port, request, body=tampered)
    assert status == 403 and answer["__type"] == "InvalidSignatureException"
    assert secured.counter.calls == 0


def test_health_and_metrics_need_no_signature(secured: ServerThread) -> None:
    assert secured.request("GET", "/healthz")[0] == 200
    assert secured.request("GET", "/readyz")[0] == 200
    assert secured.request("GET", "/metrics")[0] == 200


# ---------------------------------------------------------------------- a signature is for one endpoint
def sign(url: str, body: bytes, *, host: str | None = None, region: str = "us-east-1",
         target: str | None = "AWSStepFunctions.StartSyncExecution", secret: str = SECRET) -> dict[str, str]:
    """Headers of a request botocore signs for ``url`` (its Host, unless ``host`` is given): every
    header present when signing is signed, so a ``target`` of None leaves X-Amz-Target unsigned."""
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if host is not None:
        headers["Host"] = host
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(KEY, secret), "states", region).add_auth(request)
    out = dict(request.headers.items())
    out.setdefault("Host", url.split("/")[2])
    return out


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """Sends to 127.0.0.1:port whatever Host the headers name (a replay)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_a_credential_scoped_to_another_region_is_refused(secured: ServerThread) -> None:
    import boto3
    from botocore.config import Config

    other = boto3.client("stepfunctions", endpoint_url=secured.url, region_name="eu-west-1", aws_access_key_id=KEY,
                         aws_secret_access_key=SECRET, config=Config(inject_host_prefix=False,
                                                                     retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as exc:
        other.start_sync_execution(stateMachineArn=arn("counted"))
    error = exc.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert error["Message"] == "Credential should be scoped to a valid region, not 'eu-west-1'. "
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert secured.counter.calls == 0


def test_a_request_signed_for_aws_is_refused_when_replayed_here(secured: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("counted")}).encode()
    for url in ("https://states.us-east-1.amazonaws.com/", "https://sync-states.us-east-1.amazonaws.com/",
                "http://127.0.0.1:1/", f"http://10.1.2.3:{secured.port}/"):  # AWS, another express, another host
        status, answer = post(secured.port, body, sign(url, body))
        assert (status, answer["__type"]) == (403, "InvalidSignatureException"), url
        assert answer["message"].startswith(f"The request was signed for host '{url.split('/')[2]}'"), answer
    assert secured.counter.calls == 0
    # The same request signed for this server runs, also in botocore's sync- form of the host.
    for host in (f"127.0.0.1:{secured.port}", f"localhost:{secured.port}", f"sync-localhost:{secured.port}"):
        status, answer = post(secured.port, body, sign(f"http://{host}/", body))
        assert (status, answer["status"]) == (200, "SUCCEEDED"), host
    assert secured.counter.calls == 3


def test_an_unsigned_target_cannot_swap_the_operation(secured: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("counted")}).encode()
    url = f"http://127.0.0.1:{secured.port}/"
    # A valid signature over everything but X-Amz-Target: the target added afterwards would choose
    # the operation that runs.
    headers = sign(url, body, target=None)
    assert "x-amz-target" not in headers["Authorization"]
    headers["X-Amz-Target"] = "AWSStepFunctions.StartSyncExecution"
    status, answer = post(secured.port, body, headers)
    assert (status, answer["__type"]) == (400, "IncompleteSignatureException")
    assert answer["message"] == "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."
    assert secured.counter.calls == 0


@pytest.mark.parametrize("left_out,message", [
    ("host", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."),
    ("x-amz-date", "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."),
])
def test_host_and_date_must_be_signed(secured: ServerThread, left_out: str, message: str) -> None:
    body = json.dumps({"stateMachineArn": arn("counted")}).encode()
    headers = sign(f"http://127.0.0.1:{secured.port}/", body)
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    headers["Authorization"] = headers["Authorization"].replace(
        signed, ";".join(h for h in signed.split(";") if h != left_out))
    status, answer = post(secured.port, body, headers)
    assert (status, answer["__type"], answer["message"]) == (400, "IncompleteSignatureException", message)
    assert secured.counter.calls == 0


@pytest.mark.parametrize("authorization,message", [
    ("AWS4-HMAC-SHA256 Credential=AKIDTESTKEY/20250101/us-east-1/states/aws4_request",
     "Authorization header requires 'SignedHeaders' parameter. Authorization header requires 'Signature' parameter."),
    ("AWS4-HMAC-SHA256 Credential=AKIDTESTKEY/20250101/us-east-1/states/aws4_request, SignedHeaders=host, "
     "Signature=abc", "Authorization header requires a 64-character hexadecimal 'Signature' parameter."),
    ("AWS4-HMAC-SHA256 Credential=AKIDTESTKEY/20250101/us-east-1/states/aws5_request, SignedHeaders=host, "
     "Signature=" + "0" * 64, "Credential should be scoped with a valid terminator: 'aws4_request', not "
     "'aws5_request'. "),
])
def test_malformed_authorization_gets_aws_messages(secured: ServerThread, authorization: str, message: str) -> None:
    status, _, body = secured.request("POST", "/", b"{}", {"X-Amz-Target": "AWSStepFunctions.ListStateMachines",
                                                           "Authorization": authorization})
    answer = json.loads(body)
    assert (status, answer["__type"], answer["message"]) == (400, "IncompleteSignatureException", message)


def test_a_credential_for_another_service_is_refused(secured: ServerThread) -> None:
    body = b"{}"
    headers = sign(f"http://127.0.0.1:{secured.port}/", body, target="AWSStepFunctions.ListStateMachines")
    headers["Authorization"] = headers["Authorization"].replace("/states/", "/lambda/")
    status, answer = post(secured.port, body, headers)
    assert (status, answer["__type"]) == (403, "InvalidSignatureException")
    assert answer["message"] == "Credential should be scoped to correct service: 'states'. "


def test_allowed_hosts_names_the_endpoints_a_signature_may_name() -> None:
    from httpsupport import replace_settings

    s = ServerThread(credentials={KEY: SECRET})
    s.settings = replace_settings(s.settings, allowed_hosts="express.internal:8443, proxy.example")
    s.start()
    s.counter.delay = 0
    try:
        body = json.dumps({"stateMachineArn": arn("counted")}).encode()
        for host, ok in ((f"127.0.0.1:{s.port}", False),  # the configured list replaces the default
                         ("express.internal:8443", True), ("sync-express.internal:8443", True),
                         ("express.internal:8444", False), ("proxy.example", True), ("proxy.example:9000", True),
                         ("states.us-east-1.amazonaws.com", False)):
            status, answer = post(s.port, body, sign(f"http://{host}/", body))
            assert status == (200 if ok else 403), (host, answer)
        assert s.counter.calls == 4
    finally:
        s.stop()


def test_host_allow_list() -> None:
    from express.http.auth import HostAllowList

    default = HostAllowList()
    default.listening("127.0.0.1", 8080)
    assert default.allows("127.0.0.1:8080") and default.allows("LOCALHOST:8080") and default.allows("[::1]:8080")
    assert default.allows("sync-localhost:8080") and default.allows("localhost.:8080")
    assert not default.allows("127.0.0.1:8081") and not default.allows("127.0.0.1") and not default.allows("")
    assert not default.allows("127.0.0.1:8080:1") and not default.allows("localhost:x")
    on_80 = HostAllowList()
    on_80.listening("::1", 80)
    assert on_80.allows("[::1]") and on_80.allows("localhost") and not on_80.allows("localhost:81")
    anything = HostAllowList(["*"])
    assert anything.allows("express.example:1234") and anything.allows("10.0.0.1")
    assert not anything.allows("states.eu-west-1.amazonaws.com") and not anything.allows("sync-states.us-east-1.amazonaws.com")
    assert not anything.allows("states.cn-north-1.amazonaws.com.cn")
    explicit = HostAllowList(["*", "states.us-east-1.amazonaws.com"])  # AWS's name only when named
    assert explicit.allows("states.us-east-1.amazonaws.com") and explicit.allows("sync-states.us-east-1.amazonaws.com")
    for bad in ("host:99999", "*.example.com", "a b", "host:"):
        with pytest.raises(ValueError):
            HostAllowList([bad])
