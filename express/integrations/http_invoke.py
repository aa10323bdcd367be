"""The HTTP Task, ``arn:aws:states:::http:invoke``, as AWS Step Functions runs it.

The Task's Parameters (or JSONata Arguments): ``ApiEndpoint`` and ``Method`` (GET, POST, PUT, DELETE,
PATCH, OPTIONS, HEAD), the EventBridge connection in ``Authentication.ConnectionArn`` (or
``InvocationConfig.ConnectionArn``), optional ``Headers``, ``QueryParameters``, ``RequestBody`` and
``Transform`` (``RequestBodyEncoding`` NONE or URL_ENCODED, ``RequestEncodingOptions.ArrayFormat``
INDICES, REPEAT, COMMAS or BRACKETS). The connection (:mod:`express.integrations.connections`) adds its
authorization and its headers, query and body parameters, its values winning over the Task's.

What AWS documents, kept here: the request carries ``User-Agent: Amazon|StepFunctions|HttpInvoke|REGION``
and ``Range: bytes=0-262144``; a body goes as JSON (``application/json; charset=UTF-8``) or, with
URL_ENCODED, as form data; the headers AWS sets or refuses fail the Task with States.Runtime, as do
binary responses (``application/octet-stream``, ``image/*``, ``video/*``, ``audio/*``) and bodies that
are no valid text. The result is ``{"Headers": {name: [values]}, "ResponseBody": (parsed when JSON),
"StatusCode", "StatusText"}``; a status outside 2xx fails with ``States.Http.StatusCode.<code>`` (the
cause: that result as JSON), a connection failure or the 60-second request limit with
``States.Http.Socket``, a body above the payload limit with States.DataLimitExceeded; an unknown
connection with ``Events.ConnectionResource.ResourceNotFound``. All but States.Runtime are retried and
caught like any error.

Requests go through one pooled aiohttp session per worker (keep-alive, bounded connections), made on
first use and closed by :meth:`express.integrations.Integrations.aclose`. Redirects are not followed
(a 3xx is a status like any other), cookies are not kept, and the Task's TimeoutSeconds and the
execution's deadline bound every request. OAuth tokens are cached until a minute before they expire,
and fetched again once when the API answers 401 or 407, as EventBridge does.
"""
from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from express.asl import errors
from express.asl.errors import ASLError
from express.engine.frame import Frame
from express.engine.tasks import MAX_PAYLOAD_BYTES, Invoker, _race, _too_large
from express.integrations import connections as conns
from express.integrations.connections import Connection

if TYPE_CHECKING:
    import aiohttp

    from express.integrations import Integrations

_RESOURCE = re.compile(r"^arn:aws[\w-]*:states:::http:invoke$")
REQUEST_TIMEOUT_S = 60.0  # AWS: "HTTP task requests will timeout after 60 seconds"
MAX_CONNECTIONS = 256  # open sockets of one worker's pool, all hosts
MAX_CONNECTIONS_PER_HOST = 64
KEEPALIVE_S = 30.0
MAX_TOKEN_BYTES = 64 * 1024
TOKEN_REFRESH_MARGIN_S = 60.0  # EventBridge renews a token that expires within a minute

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
BODY_ENCODINGS = ("NONE", "URL_ENCODED")
ARRAY_FORMATS = ("INDICES", "REPEAT", "COMMAS", "BRACKETS")
FIELDS = ("ApiEndpoint", "Method", "Authentication", "InvocationConfig", "Headers", "QueryParameters",
          "RequestBody", "Transform")
# AWS: "You can't use the following headers in your HTTP Task definition" (States.Runtime)
FORBIDDEN_HEADERS = frozenset(h.lower() for h in (
    "A-IM", "Accept-Charset", "Accept-Datetime", "Accept-Encoding", "Authorization", "Cache-Control",
    "Connection", "Content-Encoding", "Content-MD5", "Date", "Expect", "Forwarded", "From", "Host",
    "HTTP2-Settings", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
    "Max-Forwards", "Origin", "Pragma", "Proxy-Authorization", "Referer", "Server", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade", "Via", "Warning"))
FORBIDDEN_PREFIXES = ("x-forwarded-", "x-amz-", "x-amzn-")
USER_AGENT = "Amazon|StepFunctions|HttpInvoke|"
RANGE = "bytes=0-262144"
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_BINARY_PREFIXES = ("image/", "video/", "audio/")
_REFRESH_STATUSES = (401, 407)


def build(resource: str, integrations: Integrations) -> Invoker | None:
    """The invoker of ``arn:aws:states:::http:invoke``; None for any other resource."""
    if not _RESOURCE.match(resource):
        return None

    def factory() -> HttpPool:
        return HttpPool(integrations.connections, REQUEST_TIMEOUT_S)

    async def http_invoke(eff: Any, frame: Frame, timeout: float | None) -> Any:
        pool: HttpPool = integrations.pooled("http", factory)
        ex = frame.execution
        call = pool.invoke(eff, ex.machine_arn, ex.limit)
        remaining = ex.deadline - ex.clock.now()
        if timeout is None and not ex.clock.virtual and remaining > 3 * pool.timeout_s:
            return await call  # its requests' own limits (token, request, retried request) end first
        limit = remaining if timeout is None else min(timeout, remaining)
        return await _race(call, limit, ex.clock, timeout is not None and timeout <= remaining, ex.real_deadline)

    return http_invoke


# ---------------------------------------------------------------------------------------------- the request
def _parameters_error(eff: Any, problem: str) -> ASLError:
    """States.Runtime as AWS words a Task whose evaluated Parameters it cannot use (the running state
    adds "An error occurred while executing the state ...")."""
    try:
        shown = orjson.dumps(eff).decode()
    except TypeError:
        shown = str(eff)
    return ASLError(errors.RUNTIME, f"The Parameters '{shown}' could not be used to start the Task: [{problem}]")


def _json_type(v: Any) -> str:
    if isinstance(v, str):
        return "STRING"
    if isinstance(v, bool):
        return "BOOLEAN"
    if isinstance(v, (int, float)):
        return "NUMBER"
    if isinstance(v, dict):
        return "OBJECT"
    if isinstance(v, list):
        return "ARRAY"
    return "NULL"


def _scalar(v: Any) -> str:
    """A JSON scalar as text in a header, query or form value."""
    if isinstance(v, str):
        return v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return ""
    if isinstance(v, int):
        return str(v)
    return orjson.dumps(v).decode()


def _enc(text: str) -> str:
    return quote(text, safe="-_.~")  # RFC 3986 unreserved characters only: a space is %20


def form_encode(value: Mapping[str, Any], array_format: str = "INDICES") -> str:
    """``value`` as URL-encoded form data, nested objects as ``key[sub]``, arrays as AWS's
    ArrayFormat says: INDICES ``a[0]=x&a[1]=y``, REPEAT ``a=x&a=y``, COMMAS ``a=x,y``, BRACKETS
    ``a[]=x&a[]=y``."""
    pairs: list[str] = []

    def add(key: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                add(f"{key}[{k}]", item)
        elif isinstance(v, list):
            if array_format == "COMMAS" and not any(isinstance(x, (dict, list)) for x in v):
                if v:
                    pairs.append(f"{_enc(key)}={','.join(_enc(_scalar(x)) for x in v)}")
                return
            for i, item in enumerate(v):
                if array_format == "REPEAT":
                    add(key, item)
                elif array_format == "BRACKETS":
                    add(f"{key}[]", item)
                else:
                    add(f"{key}[{i}]", item)
        else:
            pairs.append(f"{_enc(key)}={_enc(_scalar(v))}")

    for k, v in value.items():
        add(str(k), v)
    return "&".join(pairs)


def _query(value: Any, eff: Any) -> tuple[dict[str, Any], list[str]]:
    """The Task's QueryParameters: (an object's pairs, raw query text) — a string or an array of
    strings is query text as given, an object (or an array of objects) is encoded."""
    if value is None:
        return {}, []
    if isinstance(value, str):
        return {}, [value.lstrip("?")] if value else []
    if isinstance(value, dict):
        return dict(value), []
    if isinstance(value, list):
        pairs: dict[str, Any] = {}
        raw: list[str] = []
        for item in value:
            if isinstance(item, dict):
                pairs.update(item)
            elif isinstance(item, str):
                raw.append(item.lstrip("?"))
            else:
                raise _parameters_error(eff, "The value for the field 'QueryParameters' must be an OBJECT, "
                                             "a STRING or an ARRAY of them")
        return pairs, raw
    raise _parameters_error(eff, f"The value for the field 'QueryParameters' must be an OBJECT, got {_json_type(value)}")


def _headers(value: Any, eff: Any) -> dict[str, tuple[str, str]]:
    """The Task's Headers: lower-case name -> (name, value); AWS's forbidden headers refused."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _parameters_error(eff, f"The value for the field 'Headers' must be an OBJECT, got {_json_type(value)}")
    out: dict[str, tuple[str, str]] = {}
    for name, v in value.items():
        lower = name.lower()
        if lower in FORBIDDEN_HEADERS or lower.startswith(FORBIDDEN_PREFIXES):
            raise _parameters_error(eff, f"The header '{name}' is not allowed in an HTTP Task: Step Functions "
                                         "sets it or does not support it")
        if isinstance(v, dict):
            raise _parameters_error(eff, f"The value of the header '{name}' must be a STRING, got OBJECT")
        text = ",".join(_scalar(x) for x in v) if isinstance(v, list) else _scalar(v)
        if "\r" in text or "\n" in text or "\r" in name or "\n" in name or not name:
            raise _parameters_error(eff, f"The header '{name}' is not a valid HTTP header")
        out[lower] = (name, text)
    return out


class _Request:
    """A Task's evaluated Parameters, checked: what the request is made of."""

    __slots__ = ("method", "endpoint", "connection_arn", "headers", "query", "raw_query", "body",
                 "url_encoded", "array_format")

    def __init__(self, eff: Any) -> None:
        if not isinstance(eff, dict):
            raise _parameters_error(eff, f"The Parameters must be an OBJECT, got {_json_type(eff)}")
        for key in eff:
            if key not in FIELDS:
                raise _parameters_error(eff, f"The field '{key}' is not supported by Step Functions")
        endpoint = eff.get("ApiEndpoint")
        if endpoint is None:
            raise _parameters_error(eff, "The field 'ApiEndpoint' is required but was missing")
        if not isinstance(endpoint, str):
            raise _parameters_error(eff, f"The value for the field 'ApiEndpoint' must be a STRING, got {_json_type(endpoint)}")
        lowered = endpoint[:8].lower()
        if not (lowered.startswith("https://") or lowered.startswith("http://")) or len(endpoint.split("//", 1)[1]) == 0:
            raise _parameters_error(eff, f"The value for the field 'ApiEndpoint' must be an HTTPS URL, got '{endpoint}'")
        self.endpoint = endpoint
        method = eff.get("Method")
        if method is None:
            raise _parameters_error(eff, "The field 'Method' is required but was missing")
        if method not in METHODS:
            raise _parameters_error(eff, f"The field 'Method' should have one of these values: [{', '.join(METHODS)}]")
        self.method: str = method
        auth = eff.get("Authentication", eff.get("InvocationConfig"))
        if auth is None:
            raise _parameters_error(eff, "The field 'Authentication' is required but was missing")
        if not isinstance(auth, dict):
            raise _parameters_error(eff, f"The value for the field 'Authentication' must be an OBJECT, got {_json_type(auth)}")
        arn = auth.get("ConnectionArn")
        if arn is None:
            raise _parameters_error(eff, "The field 'ConnectionArn' is required but was missing")
        if not isinstance(arn, str):
            raise _parameters_error(eff, f"The value for the field 'ConnectionArn' must be a STRING, got {_json_type(arn)}")
        self.connection_arn = arn
        self.headers = _headers(eff.get("Headers"), eff)
        self.query, self.raw_query = _query(eff.get("QueryParameters"), eff)
        self.body = eff.get("RequestBody")
        self.url_encoded = False
        self.array_format = "INDICES"
        transform = eff.get("Transform")
        if transform is not None:
            if not isinstance(transform, dict):
                raise _parameters_error(eff, f"The value for the field 'Transform' must be an OBJECT, got {_json_type(transform)}")
            encoding = transform.get("RequestBodyEncoding", "NONE")
            if encoding not in BODY_ENCODINGS:
                raise _parameters_error(eff, "The field 'RequestBodyEncoding' should have one of these values: "
                                             f"[{', '.join(BODY_ENCODINGS)}]")
            self.url_encoded = encoding == "URL_ENCODED"
            options = transform.get("RequestEncodingOptions")
            if options is not None:
                fmt = options.get("ArrayFormat", "INDICES") if isinstance(options, dict) else None
                if fmt not in ARRAY_FORMATS:
                    raise _parameters_error(eff, "The field 'ArrayFormat' should have one of these values: "
                                                 f"[{', '.join(ARRAY_FORMATS)}]")
                self.array_format = fmt

    def url(self, connection: Connection) -> str:
        query = self.query
        if connection.query:
            query = {**query, **connection.query}  # the connection's values win
        parts = list(self.raw_query)
        if query:
            parts.append(form_encode(query, "REPEAT"))
        if not parts:
            return self.endpoint
        sep = "&" if "?" in self.endpoint else "?"
        return self.endpoint + sep + "&".join(p for p in parts if p)

    def payload(self, connection: Connection) -> tuple[bytes | None, str | None]:
        """(body bytes, the Content-Type it implies) after merging the connection's body parameters."""
        body = self.body
        if connection.body:
            if body is not None and not isinstance(body, dict):
                raise ASLError(errors.RUNTIME, f"The RequestBody is a {_json_type(body)}, so the body parameters of "
                                               f"the connection '{connection.name}' cannot be merged into it")
            body = {**(body or {}), **connection.body}
        if body is None:
            return None, None
        if isinstance(body, str):
            return body.encode(), FORM_CONTENT_TYPE if self.url_encoded else JSON_CONTENT_TYPE
        if self.url_encoded and isinstance(body, dict):
            return form_encode(body, self.array_format).encode(), FORM_CONTENT_TYPE
        try:
            return orjson.dumps(body), JSON_CONTENT_TYPE
        except TypeError as e:
            raise ASLError(errors.RUNTIME, f"The RequestBody is not JSON: {e}") from None


# --------------------------------------------------------------------------------------------- the pool
class _Authorizer:
    """A connection as the pool uses it: its fixed headers, and its OAuth token when it has one."""

    __slots__ = ("connection", "headers", "token", "expires", "lock")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        headers = {k.lower(): (k, v) for k, v in connection.headers.items()}
        if connection.authorization == conns.API_KEY:
            headers[connection.api_key_name.lower()] = (connection.api_key_name, connection.api_key_value)
        elif connection.authorization == conns.BASIC:
            headers["authorization"] = ("Authorization", _basic(connection.username, connection.password))
        self.headers = headers
        self.token = ""
        self.expires = 0.0
        self.lock = asyncio.Lock()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _socket_error(what: str) -> ASLError:
    return ASLError("States.Http.Socket", what, located=True)


def _connection_error(kind: str, cause: str) -> ASLError:
    return ASLError(f"Events.ConnectionResource.{kind}", cause, located=True)


def _media_type(content_type: str | None) -> str:
    return content_type.split(";", 1)[0].strip().lower() if content_type else ""


class HttpPool:
    """One worker's HTTP client: a keep-alive aiohttp session (made on first use, on the running loop)
    and the resolved connections; ``aclose()`` closes the session."""

    def __init__(self, connections: Mapping[str, Any], timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.connections = connections
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._timeout: Any = None
        self._authorizers: dict[str, _Authorizer] = {}  # connection name -> its authorizer (and token)
        self._by_arn: dict[str, _Authorizer] = {}  # ConnectionArn -> the same, bounded (ARNs come from data)
        self._regions: dict[str, str] = {}  # state machine ARN -> the region in its User-Agent

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            import aiohttp  # only when an HTTP Task first runs

            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=MAX_CONNECTIONS_PER_HOST,
                                             keepalive_timeout=KEEPALIVE_S)
            # AWS's request carries no Accept or Accept-Encoding of its own; User-Agent is set per request
            session = self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent"))
            self._timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        return session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _authorizer(self, arn: str) -> _Authorizer:
        auth = self._by_arn.get(arn)
        if auth is None:
            connection = conns.find(self.connections, arn)
            if connection is None:
                m = conns.CONNECTION_ARN.match(arn)
                if m is None:
                    raise ASLError(errors.RUNTIME, f"The value for the field 'ConnectionArn' is not a valid "
                                                   f"EventBridge connection ARN: '{arn}'")
                raise _connection_error("ResourceNotFound", f"Connection '{m.group('name')}' does not exist.")
            auth = self._authorizers.get(connection.name)
            if auth is None or auth.connection is not connection:
                auth = self._authorizers[connection.name] = _Authorizer(connection)
            if len(self._by_arn) < 1024:
                self._by_arn[arn] = auth
        return auth

    def _region(self, machine_arn: str) -> str:
        region = self._regions.get(machine_arn)
        if region is None:
            parts = machine_arn.split(":")
            region = parts[3] if len(parts) > 3 and parts[3] else "us-east-1"
            if len(self._regions) < 10_000:  # one entry per machine: bounded all the same
                self._regions[machine_arn] = region
        return region

    async def invoke(self, eff: Any, machine_arn: str, limit: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
        """Run one HTTP Task: its result, or the ASLError AWS reports."""
        request = _Request(eff)
        auth = self._authorizer(request.connection_arn)
        connection = auth.connection
        url = request.url(connection)
        body, content_type = request.payload(connection)
        headers = dict(request.headers)  # lower-case name -> (name, value)
        headers.update(auth.headers)  # the connection's headers win, as AWS merges them
        if content_type is not None and "content-type" not in headers:
            headers["content-type"] = ("Content-Type", content_type)
        headers["user-agent"] = ("User-Agent", USER_AGENT + self._region(machine_arn))
        headers["range"] = ("Range", RANGE)
        oauth = connection.authorization == conns.OAUTH_CLIENT_CREDENTIALS
        session = self._client()
        for attempt in (0, 1):
            if oauth:
                token = await self._token(session, auth, refresh=attempt > 0)
                headers["authorization"] = ("Authorization", "Bearer " + token)
            out = dict(headers.values())
            result = await self._send(session, request.method, url, out, body, limit,
                                      retry_statuses=_REFRESH_STATUSES if oauth and attempt == 0 else ())
            if result is not None:
                return result
        raise AssertionError("unreachable: the second attempt always answers")

    async def _send(self, session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str],
                    body: bytes | None, limit: int, retry_statuses: tuple[int, ...]) -> dict[str, Any] | None:
        import aiohttp

        try:
            async with session.request(method, url, headers=headers, data=body, allow_redirects=False,
                                       timeout=self._timeout) as resp:
                status = resp.status
                if status in retry_statuses:
                    return None  # the token was refused: fetch a new one and try once more
                media = _media_type(resp.headers.get("Content-Type"))
                if media == "application/octet-stream" or media.startswith(_BINARY_PREFIXES):
                    raise ASLError(errors.RUNTIME, f"The HTTP response has the content type '{media}', which "
                                                   "the HTTP Task does not support (binary data)")
                length = resp.content_length if method != "HEAD" else 0
                if length is not None and length > limit:
                    raise _too_large("http")
                if length is not None:
                    raw = await resp.read()
                else:
                    raw = await _read_bounded(resp.content, limit)
                if len(raw) > limit:
                    raise _too_large("http")
                response_headers: dict[str, list[str]] = {}
                for name, value in resp.headers.items():
                    response_headers.setdefault(name.lower(), []).append(value)
                reason = resp.reason or ""
                charset = resp.charset
        except (ASLError, asyncio.CancelledError):
            raise
        except TimeoutError:
            raise _socket_error(f"The HTTP request timed out after {self.timeout_s:g} seconds") from None
        except aiohttp.InvalidURL:
            raise ASLError(errors.RUNTIME, f"The value for the field 'ApiEndpoint' is not a valid URL: "
                                           f"'{url.split('?', 1)[0]}'") from None
        except aiohttp.ClientConnectorError as e:
            raise _socket_error(f"Unable to connect to {e.host}:{e.port}: {e.os_error.strerror or e.os_error}") from None
        except aiohttp.ClientError as e:
            raise _socket_error(f"The HTTP request failed: {type(e).__name__}: {e}") from None
        except OSError as e:
            raise _socket_error(f"The HTTP request failed: {e}") from None
        except ValueError as e:  # aiohttp refusing a part of the request (a header value, the URL)
            raise ASLError(errors.RUNTIME, f"The HTTP request cannot be made: {e}") from None
        try:
            text = raw.decode(charset or "utf-8")
        except (UnicodeDecodeError, LookupError):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ASLError(errors.RUNTIME, "The HTTP response body cannot be read as a valid string") from None
        response_body: Any = text
        if text and (media == "application/json" or media.endswith("+json")):
            try:
                response_body = orjson.loads(raw if charset in (None, "utf-8", "UTF-8") else text)
            except orjson.JSONDecodeError:
                pass
        result = {"Headers": response_headers, "ResponseBody": response_body, "StatusCode": status,
                  "StatusText": reason}
        if 200 <= status < 300:
            return result
        raise ASLError(f"States.Http.StatusCode.{status}", orjson.dumps(result).decode(), located=True)

    async def _token(self, session: aiohttp.ClientSession, auth: _Authorizer, refresh: bool) -> str:
        """The connection's OAuth access token: cached, fetched when missing, expiring or refused."""
        stale = auth.token if refresh else None
        if auth.token and auth.token != stale and time.monotonic() < auth.expires - TOKEN_REFRESH_MARGIN_S:
            return auth.token
        async with auth.lock:  # one fetch at a time per connection; the others wait for its token
            if auth.token and auth.token != stale and time.monotonic() < auth.expires - TOKEN_REFRESH_MARGIN_S:
                return auth.token
            auth.token, auth.expires = await self._fetch_token(session, auth.connection)
            return auth.token

    async def _fetch_token(self, session: aiohttp.ClientSession, connection: Connection) -> tuple[str, float]:
        import aiohttp

        form = {"grant_type": "client_credentials"}
        if connection.scope:
            form["scope"] = connection.scope
        encoded = form_encode(form)
        method = connection.token_method
        url = connection.token_endpoint
        data: bytes | None = None
        if method == "GET":
            url += ("&" if "?" in url else "?") + encoded
        else:
            data = encoded.encode()
        headers = {"Authorization": _basic(connection.client_id, connection.client_secret),
                   "Content-Type": FORM_CONTENT_TYPE, "Accept": "application/json"}
        unauthorized = f"The connection '{connection.name}' could not be authorized"
        try:
            async with session.request(method, url, headers=headers, data=data, allow_redirects=False,
                                       timeout=self._timeout) as resp:
                raw = await _read_bounded(resp.content, MAX_TOKEN_BYTES)
                status = resp.status
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            raise _connection_error("InvalidConnectionState", f"{unauthorized}: its token endpoint did not answer "
                                                              f"within {self.timeout_s:g} seconds") from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise _connection_error("InvalidConnectionState",
                                    f"{unauthorized}: its token endpoint cannot be reached ({type(e).__name__})") from None
        if not 200 <= status < 300:
            raise _connection_error("InvalidConnectionState", f"{unauthorized}: its token endpoint answered {status}")
        try:
            answer = orjson.loads(raw) if len(raw) <= MAX_TOKEN_BYTES else None
        except orjson.JSONDecodeError:
            answer = None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise _connection_error("InvalidConnectionState",
                                    f"{unauthorized}: its token endpoint answered no access_token")
        expires_in = answer.get("expires_in") if isinstance(answer, dict) else None
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
            expires = time.monotonic() + float(expires_in)
        else:
            expires = float("inf")  # no lifetime given: kept until the API refuses it
        return token, expires


async def _read_bounded(content: Any, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a response body (one more than allowed tells it is too large)."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = await content.read(limit + 1 - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
