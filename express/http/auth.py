"""AWS Signature Version 4 verification (service ``states``) with botocore's own signing code.

When the server has credentials (access key id -> secret access key), every API request must
carry ``Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/states/aws4_request,
SignedHeaders=..., Signature=...`` and ``X-Amz-Date``. We rebuild the request as botocore saw it
(method, path, query, the signed headers, the body), let :class:`botocore.auth.SigV4Auth`
compute the canonical request, the string to sign and the signature for the claimed key and
timestamp, and compare with :func:`hmac.compare_digest`. No cryptography of ours.

A signature is only good for the endpoint it was made for, so that a request signed for another
endpoint (AWS itself, or another express sharing the keys) cannot be replayed here:

- the credential scope must name this server's region and the service ``states``;
- ``Host``, ``X-Amz-Date`` and ``X-Amz-Target`` must be among the signed headers (an unsigned
  target would let the operation be swapped under a valid signature);
- the signed ``Host`` must be one this server answers for (:class:`HostAllowList`).

Refused (and nothing runs), with AWS's codes and messages: no Authorization header
(``MissingAuthenticationTokenException``), an unknown access key (``UnrecognizedClientException``),
a malformed header or a required header left unsigned (``IncompleteSignatureException``), a wrong
signature, scope or host, an ``X-Amz-Content-SHA256`` that does not match the body, or a
timestamp more than 5 minutes away from now (``InvalidSignatureException``, "Signature expired",
as AWS says: the replay window). Within those 5 minutes an identical request can be replayed, as
on AWS; execution names give the exactly-once protection for that.

Presigned (query-string) requests and session tokens are not supported.
"""
from __future__ import annotations

import hmac
import re
import socket
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from hashlib import sha256

from express.http.protocol import Request

SERVICE = "states"
MAX_SKEW_S = 300.0
REQUIRED_SIGNED = ("host", "x-amz-date", "x-amz-target")
_ALGORITHM = "AWS4-HMAC-SHA256"
_PARTS = ("Credential", "SignedHeaders", "Signature")
_SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")
_HOST_NAME = re.compile(r"^([a-z0-9_-]+(\.[a-z0-9_-]+)*|[0-9a-f:.]*:[0-9a-f:.]*)$")
# AWS's own endpoints: a request signed for them is never one for us, unless explicitly allowed.
_AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
_WILDCARD_BINDS = ("", "0.0.0.0", "::")
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SYNC_PREFIX = "sync-"  # botocore's host prefix for StartSyncExecution and TestState


class AuthError(Exception):
    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def split_host(value: str, default_port: int = 80) -> tuple[str, int | None]:
    """``Host`` header value -> (lower-case name without brackets or trailing dot, port); the port
    is None when the value is not a valid host[:port]."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else "x")
    elif value.count(":") == 1:
        name, _, port_text = value.partition(":")
    elif ":" in value:  # a bare IPv6 address
        name, port_text = value, ""
    else:
        name, port_text = value, ""
    name = name.rstrip(".")
    if not port_text:
        return name, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return name, None
    return name, int(port_text)


class HostAllowList:
    """The hosts a signed request may name: ``allowed`` entries are ``name`` (any port) or
    ``name:port``; ``*`` allows any host except AWS's own endpoints (``*.amazonaws.com``, which
    an entry must then name explicitly). Every allowed name also allows its ``sync-`` form.

    Without entries, the default is the address the server listens on, at its port: the listening
    host, ``localhost``, ``127.0.0.1`` and ``[::1]`` (for a wildcard bind, ``0.0.0.0``, also this
    machine's host name). A server reached under another name (a DNS name, a mapped container
    port, a proxy) needs ``[http] allowed_hosts``."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.any_host = False
        self._entries: set[tuple[str, int | None]] = set()
        self.configured = False
        for raw in allowed:
            entry = raw.strip()
            if not entry:
                continue
            self.configured = True
            if entry == "*":
                self.any_host = True
                continue
            has_port = entry.startswith("[") and "]:" in entry or (not entry.startswith("[") and entry.count(":") == 1)
            name, port = split_host(entry)
            if port is None or not _HOST_NAME.match(name) or entry.endswith(":"):
                raise ValueError(f"not a host or host:port: {raw!r}")
            self._entries.add((name, port if has_port else None))

    def listening(self, host: str, port: int) -> None:
        """The default entries for a server listening on ``host``:``port`` (no-op if configured)."""
        if self.configured:
            return
        names = set(_LOOPBACK_NAMES)
        names.add(socket.gethostname().lower() if host in _WILDCARD_BINDS else host.lower().strip("[]").rstrip("."))
        self._entries = {(name, port) for name in names}

    def allows(self, host_header: str) -> bool:
        name, port = split_host(host_header)
        if port is None or not name:
            return False
        for candidate in (name, name[len(SYNC_PREFIX):] if name.startswith(SYNC_PREFIX) else None):
            if candidate is None:
                continue
            if (candidate, port) in self._entries or (candidate, None) in self._entries:
                return True
            if self.any_host and not candidate.endswith(_AWS_DOMAINS):
                return True
        return False


def _parse_authorization(header: str) -> dict[str, str]:
    """The Credential, SignedHeaders and Signature parts, or IncompleteSignatureException with
    AWS's messages."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != _ALGORITHM:
        raise AuthError("IncompleteSignatureException",
                        f"Unsupported AWS 'algorithm': '{algorithm[:64]}'", status=400)
    parts: dict[str, str] = {}
    for item in rest.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise AuthError("IncompleteSignatureException",
                            f"'{item[:64]}' not a valid key=value pair (missing equal-sign) in Authorization header: "
                            f"'{header[:256]}'.", status=400)
        parts[key.strip()] = value.strip()
    missing = [p for p in _PARTS if not parts.get(p)]
    if missing:
        raise AuthError("IncompleteSignatureException",
                        " ".join(f"Authorization header requires '{p}' parameter." for p in missing), status=400)
    return parts


class SigV4Verifier:
    def __init__(self, credentials: Mapping[str, str], max_skew_s: float = MAX_SKEW_S, *, region: str = "us-east-1",
                 allowed_hosts: Iterable[str] | HostAllowList = ()) -> None:
        # Imported here: botocore is only needed when authentication is on.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        if not credentials:
            raise ValueError("SigV4Verifier needs at least one access key")
        for key, secret in credentials.items():
            if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
                raise ValueError("credentials must map non-empty access key ids to non-empty secrets")
        self._credentials = {k: Credentials(k, s) for k, s in credentials.items()}
        self._SigV4Auth = SigV4Auth
        self._AWSRequest = AWSRequest
        self.max_skew_s = float(max_skew_s)
        self.region = region
        self.hosts = allowed_hosts if isinstance(allowed_hosts, HostAllowList) else HostAllowList(allowed_hosts)

    def listening(self, host: str, port: int) -> None:
        """Where the server listens: the default allowed hosts (see :class:`HostAllowList`)."""
        self.hosts.listening(host, port)

    def verify(self, request: Request, now: datetime | None = None) -> str:
        """Returns the access key id of a valid request; raises AuthError otherwise."""
        headers = request.headers
        authorization = headers.get("authorization")
        if not authorization:
            raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
        parts = _parse_authorization(authorization)
        credential = parts["Credential"]
        scope = credential.split("/")
        if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
            raise AuthError("IncompleteSignatureException",
                            f"Credential should be scoped with a valid terminator: 'aws4_request', not "
                            f"'{scope[-1][:64]}'. " if len(scope) == 5 else
                            f"Authorization header requires a valid Credential: '{credential[:128]}'.", status=400)
        access_key, date, region, service, _ = scope
        if not _SIGNATURE.match(parts["Signature"]):
            raise AuthError("IncompleteSignatureException",
                            "Authorization header requires a 64-character hexadecimal 'Signature' parameter.",
                            status=400)
        # AWS's messages, trailing space included.
        if region != self.region:
            raise AuthError("InvalidSignatureException",
                            f"Credential should be scoped to a valid region, not '{region[:64]}'. ")
        if service != SERVICE:
            raise AuthError("InvalidSignatureException",
                            f"Credential should be scoped to correct service: '{SERVICE}'. ")
        credentials = self._credentials.get(access_key)
        if credentials is None:
            raise AuthError("UnrecognizedClientException", "The security token included in the request is invalid.")
        amz_date = headers.get("x-amz-date")
        if amz_date is None:
            raise AuthError("IncompleteSignatureException",
                            "Authorization header requires existence of a 'X-Amz-Date' header.", status=400)
        if not _AMZ_DATE.match(amz_date):
            raise AuthError("IncompleteSignatureException", f"Invalid X-Amz-Date: {amz_date[:64]}", status=400)
        if date != amz_date[:8]:
            raise AuthError("InvalidSignatureException",
                            "Credential should be scoped to a valid date matching X-Amz-Date.")
        signed = parts["SignedHeaders"].split(";")
        for name, shown in (("host", "'Host' or ':authority'"), ("x-amz-date", "'X-Amz-Date'"),
                            ("x-amz-target", "'X-Amz-Target'")):
            if name not in signed:
                raise AuthError("IncompleteSignatureException",
                                f"{shown} must be a 'SignedHeader' in the AWS Authorization.", status=400)
        host = headers.get("host", "")
        if not self.hosts.allows(host):
            raise AuthError("InvalidSignatureException",
                            f"The request was signed for host '{host[:128]}', which is not an endpoint of this server "
                            "(see [http] allowed_hosts).")
        try:
            stamp = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise AuthError("IncompleteSignatureException", f"Invalid X-Amz-Date: {amz_date}", status=400) from None
        current = now or datetime.now(UTC)
        skew = (current - stamp).total_seconds()
        if skew > self.max_skew_s:
            raise AuthError("InvalidSignatureException",
                            f"Signature expired: {amz_date} is now earlier than {_fmt(current, -self.max_skew_s)} "
                            f"({_fmt(current, 0)} - 5 min.)")
        if skew < -self.max_skew_s:
            raise AuthError("InvalidSignatureException",
                            f"Signature not yet current: {amz_date} is still later than "
                            f"{_fmt(current, self.max_skew_s)} ({_fmt(current, 0)} + 5 min.)")
        content_sha = headers.get("x-amz-content-sha256")
        if content_sha is not None and not hmac.compare_digest(content_sha.lower(), sha256(request.body).hexdigest()):
            raise AuthError("InvalidSignatureException",
                            "The provided X-Amz-Content-SHA256 header does not match the request body.")
        signed_headers = {}
        for name in signed:
            if name not in headers:
                raise AuthError("InvalidSignatureException", f"Signed header {name[:64]!r} is missing from the request.")
            signed_headers[name] = headers[name]
        url = "http://" + host + request.path + ("?" + request.query if request.query else "")
        aws_request = self._AWSRequest(method=request.method, url=url, headers=signed_headers, data=request.body)
        aws_request.context["timestamp"] = amz_date
        signer = self._SigV4Auth(credentials, SERVICE, region)
        canonical = signer.canonical_request(aws_request)
        expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
        if not hmac.compare_digest(expected, parts["Signature"].lower()):
            raise AuthError("InvalidSignatureException",
                            "The request signature we calculated does not match the signature you provided. "
                            "Check your AWS Secret Access Key and signing method. Consult the service documentation "
                            "for details.")
        return access_key


def _fmt(current: datetime, offset_s: float) -> str:
    return datetime.fromtimestamp(current.timestamp() + offset_s, UTC).strftime("%Y%m%dT%H%M%SZ")
