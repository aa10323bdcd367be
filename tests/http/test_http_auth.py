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
    # Another region in the credential scope is fine (clients sign with their own region).
    import boto3
    from botocore.config import Config

    other = boto3.client("stepfunctions", endpoint_url=secured.url, region_name="eu-west-1", aws_access_key_id=KEY,
                         aws_secret_access_key=SECRET, config=Config(inject_host_prefix=False))
    assert other.list_state_machines()["stateMachines"]


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
