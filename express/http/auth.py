"""AWS Signature Version 4 verification (service ``states``) with botocore's own signing code.

When the server has credentials (access key id -> secret access key), every API request must
carry ``Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/states/aws4_request,
SignedHeaders=..., Signature=...`` and ``X-Amz-Date``. We rebuild the request as botocore saw it
(method, path, query, the signed headers, the body), let :class:`botocore.auth.SigV4Auth`
compute the canonical request, the string to sign and the signature for the claimed key and
timestamp, and compare with :func:`hmac.compare_digest`. No cryptography of ours.

Refused (and nothing runs): no Authorization header (``MissingAuthenticationTokenException``),
an unknown access key (``UnrecognizedClientException``), a wrong signature, a malformed header, a
``Host`` or ``X-Amz-Date`` left out of the signature, an ``X-Amz-Content-SHA256`` that does not
match the body, or a timestamp more than 5 minutes away from now (``InvalidSignatureException``,
"Signature expired", as AWS says: the replay window). Within those 5 minutes an identical request
can be replayed, as on AWS; execution names give the exactly-once protection for that.

Presigned (query-string) requests and session tokens are not supported. The region in the
credential scope may be any region (clients sign with their own configured region).
"""
from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from hashlib import sha256

from express.http.protocol import Request

SERVICE = "states"
MAX_SKEW_S = 300.0
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)\s*,"
    r"\s*Signature=(?P<sig>[0-9a-fA-F]{64})\s*$")
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")


class AuthError(Exception):
    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class SigV4Verifier:
    def __init__(self, credentials: Mapping[str, str], max_skew_s: float = MAX_SKEW_S) -> None:
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

    def verify(self, request: Request, now: datetime | None = None) -> str:
        """Returns the access key id of a valid request; raises AuthError otherwise."""
        headers = request.headers
        authorization = headers.get("authorization")
        if not authorization:
            raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
        m = _AUTH.match(authorization)
        if m is None:
            raise AuthError("IncompleteSignatureException",
                            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                            "for AWS4-HMAC-SHA256", status=400)
        scope = m.group("cred").split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise AuthError("IncompleteSignatureException", f"Malformed credential scope: {m.group('cred')}",
                            status=400)
        access_key, date, region, service, _ = scope
        credentials = self._credentials.get(access_key)
        if credentials is None:
            raise AuthError("UnrecognizedClientException", "The security token included in the request is invalid.")
        amz_date = headers.get("x-amz-date", "")
        if not _AMZ_DATE.match(amz_date):
            raise AuthError("IncompleteSignatureException", "Authorization requires a valid X-Amz-Date header",
                            status=400)
        if service != SERVICE:
            raise AuthError("InvalidSignatureException",
                            f"Credential should be scoped to correct service: '{SERVICE}'.")
        if date != amz_date[:8]:
            raise AuthError("InvalidSignatureException",
                            "Credential should be scoped to a valid date matching X-Amz-Date.")
        signed = m.group("signed").split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            raise AuthError("InvalidSignatureException", "The Host and X-Amz-Date headers must be signed.")
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
                raise AuthError("InvalidSignatureException", f"Signed header {name!r} is missing from the request.")
            signed_headers[name] = headers[name]
        url = "http://" + headers.get("host", "localhost") + request.path + ("?" + request.query if request.query else "")
        aws_request = self._AWSRequest(method=request.method, url=url, headers=signed_headers, data=request.body)
        aws_request.context["timestamp"] = amz_date
        signer = self._SigV4Auth(credentials, SERVICE, region)
        canonical = signer.canonical_request(aws_request)
        expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
        if not hmac.compare_digest(expected, m.group("sig").lower()):
            raise AuthError("InvalidSignatureException",
                            "The request signature we calculated does not match the signature you provided. "
                            "Check your AWS Secret Access Key and signing method.")
        return access_key


def _fmt(current: datetime, offset_s: float) -> str:
    return datetime.fromtimestamp(current.timestamp() + offset_s, UTC).strftime("%Y%m%dT%H%M%SZ")
