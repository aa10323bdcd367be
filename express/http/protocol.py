"""A small HTTP/1.1 server connection on asyncio protocols (uvloop when the loop is uvloop's): the
parsing, pipelining, limits and timeouts of a connection. The request and response objects are in
:mod:`express.http.messages`, the client-side response parser in :mod:`express.http.response_parser`.

Why our own connection: the API is a handful of fixed routes with small JSON bodies, and the throughput
target (10k requests/s with a p99 under 20 ms on two cores, the client included) leaves no room
for a general framework's per-request machinery. The parsing is not ours: both directions use
llhttp (Node's parser, through ``httptools``, as uvicorn does), which reads a byte once however the
data is split, and keeps nothing but what its callbacks keep. What a framework would otherwise
give us is here, bounded:

- requests are parsed strictly (CRLF line ends, token header names and methods, one framing: a
  ``Content-Length`` or ``Transfer-Encoding: chunked``, never both, HTTP/1.0 and 1.1 only), with
  limits on the head (``max_header_bytes``, ``max_headers``: 431) and on the body
  (``max_body_bytes``: 413). The limits count raw bytes whatever the framing: a message may not
  take more than ``max_header_bytes + max_body_bytes`` bytes on the wire, chunk-size lines,
  extensions and trailers included, nor decode to a body over ``max_body_bytes``; trailers count
  against the head's limits (and are otherwise ignored);
- ``Connection`` is read as a list of tokens (llhttp), an HTTP/1.0 keep-alive is answered with
  ``Connection: keep-alive``, ``Expect: 100-continue`` is honoured for HTTP/1.1 only (ignored for
  1.0, as RFC 9110 says), any other expectation is answered with 417;
- keep-alive and pipelining: requests on a connection are answered one at a time, in order;
  reading stops while a complete request waits behind the one being handled, and while the
  transport's write buffer is above its high-water mark (a client that does not read);
- timeouts: an idle keep-alive connection is closed after ``keepalive_timeout_s``; a request
  that is not complete ``request_timeout_s`` after its first byte gets 408 (slow clients); the
  server's sweeper enforces both, so the hot path sets no timers;
- an error answer is followed by a lingering close: the write side is shut, and what the client
  still sends is read and dropped for up to ``LINGER_S`` seconds, so that a client busy sending a
  refused body reads the answer instead of a connection reset;
- a client that disconnects does not cancel its request's handler: an execution that started
  runs to its end (and its answer is kept for a retry with the same name).

Every error answer is produced by the ``error`` callable the server passes in (AWS JSON error
bodies), so even a malformed request line gets ``{"__type": ..., "message": ...}``.

The raw-byte limits are kept per slice of ``_SLICE`` bytes fed to the parser: exact for a message
that starts a read (the usual case), and at most ``_SLICE`` bytes lenient for a pipelined message
that starts inside a slice, whose first bytes are not located.
"""
from __future__ import annotations

import asyncio
import sys
import time
import types
from collections import deque
from collections.abc import Awaitable, Coroutine, Generator
from email.utils import formatdate
from typing import Any, Protocol

import httptools

# The request and response objects and the client-side parser have their own modules; they are
# also importable from here, where they were first.
from express.http.messages import ErrorBody, Handler, HttpError, Inline, Limits, Request, Response
from express.http.response_parser import ParsedResponse, ResponseError, ResponseParser

__all__ = ["ErrorBody", "Handler", "HttpConnection", "HttpError", "Limits", "ParsedResponse", "Request", "Response",
           "ResponseError", "ResponseParser"]

REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
    415: "Unsupported Media Type", 417: "Expectation Failed", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
LINGER_S = 2.0
_SLICE = 16 * 1024  # bytes given to llhttp at once: the granularity of the raw-byte limits
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Repeated with another value, these would say two things to the signature check and to the routing.
_SINGLE = frozenset({"host", "authorization", "x-amz-date", "x-amz-target"})


class _Date:
    """The Date header, formatted once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def get(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True)
        return self._value


_date = _Date()


class ConnectionOwner(Protocol):
    """What a connection needs from its server (the server implements it)."""

    limits: Limits
    connections: set[HttpConnection]
    closing: bool

    def handler(self, request: Request) -> Awaitable[Response]: ...

    def error(self, status: int, code: str, message: str) -> Response: ...

    def track(self, task: asyncio.Task[Any]) -> None: ...


def _request_parser(callbacks: object) -> httptools.HttpRequestParser:
    parser = httptools.HttpRequestParser(callbacks)
    # Any single-digit version reaches on_headers_complete, which answers 505 for those we do not speak.
    parser.set_dangerous_leniencies(lenient_version=True)
    return parser


_NAMES: dict[bytes, str] = {}  # header names as sent -> lower-case str, for the names clients send
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}


def _header_name(name: bytes) -> str:
    key = name.decode("latin-1").lower()
    if len(_NAMES) < 512 and len(name) <= 64:
        _NAMES[name] = key
    return key


def _malformed(e: httptools.HttpParserError) -> HttpError:
    cause = e.__context__
    if isinstance(cause, HttpError):  # raised by one of our callbacks
        return cause
    return HttpError(400, "SerializationException", f"Malformed HTTP request: {e}")


@types.coroutine
def _continued(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Goes on with ``coro``, already driven by hand up to a suspension that yielded ``yielded``: what
    it yields goes to the Task running this, what the Task sends or throws goes back to it."""
    if yielded is None:  # a bare yield (express.http.messages.in_task): the Task's first step goes on
        try:
            yielded = coro.send(None)
        except StopIteration as done:
            return done.value
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as e:  # noqa: BLE001 - a cancellation, thrown into the coroutine
            try:
                yielded = coro.throw(e)
            except StopIteration as done:
                return done.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as done:
                return done.value


async def _resumed(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _continued(coro, yielded)


class HttpConnection(asyncio.Protocol):
    """One client connection: llhttp's callbacks build each request, complete requests wait in
    ``_queue`` (with a parse error in their place, answered in turn), one is handled at a time, by
    ``handler`` (by default the owner's: a server gives its private routing socket's connections
    another one)."""

    __slots__ = ("_owner", "_handler", "_limits", "_loop", "transport", "_parser", "_queue", "_busy", "_closed", "_bypass",
                 "_lingering", "_write_paused", "_read_paused", "deadline", "_first_byte", "_eof",
                 "_max_header", "_max_headers", "_max_body", "_max_raw",
                 # the message being read
                 "_in_msg", "_headers_done", "_cut", "_raw", "_head_bytes", "_nheaders", "_url", "_headers",
                 "_body", "_body_len", "_expect", "_method", "_path", "_query", "_version", "_keep_alive",
                 "_upgrade_left", "_backlog", "_inline", "_again")

    def __init__(self, owner: ConnectionOwner, handler: Handler | None = None) -> None:
        self._owner = owner
        self._handler = handler if handler is not None else owner.handler
        limits = self._limits = owner.limits
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._parser = _request_parser(self)
        self._queue: deque[Request | HttpError] = deque()
        self._busy = False
        self._inline = False  # _run is being driven by _advance, not by a Task
        self._again = False  # ... and it ended wanting the next request
        self._closed = False
        self._bypass = False  # data does not go to the parser: closed, failed, lingering or an upgrade's body
        self._lingering = False
        self._write_paused = False
        self._read_paused = False
        self._eof = False
        self._first_byte = 0.0
        self.deadline: float | None = None  # monotonic; enforced by the server's sweeper
        self._max_header = limits.max_header_bytes
        self._max_headers = limits.max_headers
        self._max_body = limits.max_body_bytes
        self._max_raw = limits.max_header_bytes + limits.max_body_bytes
        self._in_msg = False
        self._headers_done = False
        self._cut = False  # a message ended inside the slice being parsed
        self._raw = 0
        self._head_bytes = 0
        self._nheaders = 0
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_len = 0
        self._expect = False
        self._method = self._path = self._query = self._version = ""
        self._keep_alive = True
        self._upgrade_left = -1
        self._backlog: bytes | None = None  # read, not parsed yet: behind a complete request

    # ------------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        owner = self._owner
        if len(owner.connections) >= self._limits.max_connections:
            self._send(owner.error(503, "ServiceUnavailable", "Too many connections"), close=True)
            return
        owner.connections.add(self)
        self.deadline = time.monotonic() + self._limits.keepalive_timeout_s

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = self._bypass = True
        self._owner.connections.discard(self)
        self.transport = None

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._busy:
            self._advance()

    def eof_received(self) -> bool:
        self._eof = True
        if self._lingering:
            self._close()
        elif not self._busy:
            self._advance()
        return True  # keep the write side open until our answer is out

    def data_received(self, data: bytes) -> None:
        if self._bypass:
            if not self._data_bypassed(data):
                return
        else:
            self._feed(data)
        if self._busy or self._write_paused:
            if self._queue and not self._read_paused:
                self._read_paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]
            return
        self._advance()

    def _data_bypassed(self, data: bytes) -> bool:
        """Data that the parser does not see; True if it may have completed a request."""
        if self._closed:
            return False
        if self._lingering:
            if self.deadline is not None and time.monotonic() > self.deadline:
                self._close()
            return False
        if self._backlog is not None:
            self._backlog += data
            return False
        if self._upgrade_left >= 0:
            self._upgrade_body(data)
            return True
        return False  # after a parse error: dropped until the error is answered

    # ------------------------------------------------------------------ parsing (llhttp callbacks)
    def _feed(self, data: bytes) -> None:
        if len(data) > _SLICE:
            self._feed_slices(data)
            return
        self._cut = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            self._after_upgrade(data[int(e.args[0]):])
            return
        except httptools.HttpParserError as e:
            self._fail(_malformed(e))
            return
        if self._in_msg and not self._cut:
            self._count_raw(len(data))

    def _feed_slices(self, data: bytes) -> None:
        view = memoryview(data)
        parser = self._parser
        for start in range(0, len(data), _SLICE):
            chunk = view[start:start + _SLICE]
            self._cut = False
            try:
                parser.feed_data(chunk)
            except httptools.HttpParserUpgrade as e:
                self._after_upgrade(data[start + int(e.args[0]):])
                return
            except httptools.HttpParserError as e:
                self._fail(_malformed(e))
                return
            if self._in_msg and not self._cut and not self._count_raw(len(chunk)):
                return
            if self._queue and start + _SLICE < len(data):
                # A request is complete: parse no further ahead (pipelined requests would be held
                # parsed, many times their size) until it is answered.
                self._backlog = data[start + _SLICE:]
                self._bypass = True
                if not self._read_paused:
                    self._read_paused = True
                    self.transport.pause_reading()  # type: ignore[union-attr]
                return

    def _count_raw(self, n: int) -> bool:
        """Count ``n`` more bytes of the message being read against the limits; False if over."""
        raw = self._raw = self._raw + n
        if raw <= self._max_header:
            return True
        if not self._headers_done:
            self._fail(HttpError(431, "RequestHeaderFieldsTooLarge",
                                 f"The request head exceeds {self._max_header} bytes"))
            return False
        error = self._fields_error()  # the trailers so far
        if error is not None:
            self._fail(error)
            return False
        if raw > self._max_raw:
            self._fail(HttpError(413, "RequestEntityTooLarge",
                                 f"The request takes more than {self._max_raw} bytes with its framing"))
            return False
        return True

    def _fail(self, error: HttpError) -> None:
        """Stop reading requests: ``error`` is answered once the requests before it are."""
        self._bypass = True
        self._in_msg = False
        self._queue.append(error)

    def on_message_begin(self) -> None:
        self._in_msg = True
        self._headers_done = False
        self._raw = 0
        self._head_bytes = 0
        self._nheaders = 0
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_len = 0
        self._expect = False
        self._first_byte = time.monotonic()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Counted here, checked once the head (or the trailers) is complete: until then the raw-byte
        # limit of _count_raw bounds what is held.
        self._head_bytes += len(name) + len(value) + 4
        self._nheaders += 1
        if self._headers_done:
            return  # a trailer: counted, not kept
        key = _NAMES.get(name)
        if key is None:
            key = _header_name(name)
        text = value.decode("latin-1").rstrip(" \t")  # llhttp drops the leading whitespace only
        headers = self._headers
        if key in headers:
            text = self._repeated(key, headers[key], text)
        headers[key] = text

    def _fields_error(self) -> HttpError | None:
        if self._nheaders > self._max_headers:
            what = "header and trailer fields" if self._headers_done else "headers"
            return HttpError(431, "RequestHeaderFieldsTooLarge", f"More than {self._max_headers} {what}")
        if self._head_bytes > self._max_header:
            what = "The request's header and trailer fields exceed" if self._headers_done else \
                "The request head exceeds"
            return HttpError(431, "RequestHeaderFieldsTooLarge", f"{what} {self._max_header} bytes")
        return None

    @staticmethod
    def _repeated(key: str, before: str, value: str) -> str:
        if key in _SINGLE and before != value:
            raise HttpError(400, "SerializationException", f"Repeated {key} header")
        return before if key in _SINGLE else before + "," + value

    def on_headers_complete(self) -> None:
        error = self._fields_error()
        if error is not None:
            raise error
        self._headers_done = True
        parser = self._parser
        version = parser.get_http_version()
        if version == "1.1":
            self._version = "HTTP/1.1"
        elif version == "1.0":
            self._version = "HTTP/1.0"
        else:
            raise HttpError(505, "HttpVersionNotSupported", f"HTTP version {version} is not supported")
        headers = self._headers
        if "host" not in headers and version == "1.1":
            raise HttpError(400, "SerializationException", "HTTP/1.1 requests must carry a Host header")
        target = self._url.decode("latin-1")
        if target[:1] != "/":
            target = _origin_form(target)
        path, _, self._query = target.partition("?")
        self._path = path
        te = headers.get("transfer-encoding")
        if te is not None:
            if te.lower() != "chunked" or version != "1.1":
                raise HttpError(501, "NotImplemented", f"Transfer-Encoding {te[:100]!r} is not supported")
        else:
            length = headers.get("content-length")
            if length is not None and int(length) > self._max_body:  # llhttp checked the digits
                raise HttpError(413, "RequestEntityTooLarge", f"The request body exceeds {self._max_body} bytes")
        expect = headers.get("expect")
        if expect is not None:
            if expect.lower() != "100-continue":
                raise HttpError(417, "ExpectationFailed",
                                f"Unsupported expectation {expect[:100]!r}: only 100-continue is supported")
            self._expect = version == "1.1"  # RFC 9110 10.1.1: ignored in an HTTP/1.0 request
        method = parser.get_method()
        self._method = _METHODS.get(method) or method.decode("ascii")
        self._keep_alive = parser.should_keep_alive()
        if parser.should_upgrade():
            # We speak HTTP/1.1 only and ignore the upgrade; httptools makes llhttp skip the body of an
            # upgrade request, so _after_upgrade reads a Content-Length body itself.
            if te is not None:
                raise HttpError(501, "NotImplemented", "A chunked body with an Upgrade header is not supported")
            self._upgrade_left = int(headers.get("content-length") or 0)

    def on_body(self, data: bytes) -> None:
        size = self._body_len = self._body_len + len(data)
        if size > self._max_body:
            raise HttpError(413, "RequestEntityTooLarge", f"The request body exceeds {self._max_body} bytes")
        self._body.append(data)

    def on_message_complete(self) -> None:
        if self._nheaders > self._max_headers or self._head_bytes > self._max_header:  # with the trailers
            raise self._fields_error() or AssertionError
        if self._upgrade_left >= 0:
            return  # the body follows, outside llhttp
        self._in_msg = False
        self._cut = True
        self._queue.append(Request(self._method, self._path, self._query, self._version, self._headers,
                                   b"".join(self._body), self._keep_alive))

    def _after_upgrade(self, rest: bytes) -> None:
        self._parser = _request_parser(self)
        self._bypass = True
        self._upgrade_body(rest)

    def _upgrade_body(self, data: bytes) -> None:
        need = self._upgrade_left
        if data:
            self._body.append(data[:need])
        if len(data) < need:
            self._upgrade_left = need - len(data)
            return
        self._upgrade_left = -1
        self._bypass = False
        self._in_msg = False
        self._queue.append(Request(self._method, self._path, self._query, self._version, self._headers,
                                   b"".join(self._body), self._keep_alive))
        if len(data) > need:
            self._feed(data[need:])

    # ------------------------------------------------------------------ request loop
    def _advance(self) -> None:
        """Start handling the next complete request (or answer the next error), if there is one and we may."""
        while self._advance_once():  # pipelined requests that each ended inline, in a loop, not recursively
            pass

    def _advance_once(self) -> bool:
        """:meth:`_advance`'s step; True when the request it ran inline ended wanting the next one."""
        if self._busy or self._closed or self._write_paused or self._lingering:
            return False
        queue = self._queue
        if not queue and self._backlog is not None:
            data = self._backlog
            self._backlog = None
            self._bypass = False
            self._feed(data)
        if queue:
            item = queue.popleft()
            if isinstance(item, HttpError):
                self._send(self._owner.error(item.status, item.code, item.message), close=True, linger=True)
                return False
            self._busy = True
            self.deadline = None
            if self._read_paused and not queue and self._backlog is None:
                self._read_paused = False
                self.transport.resume_reading()  # type: ignore[union-attr]
            # The handler runs here, inline, up to its first suspension: most requests (a sync
            # execution of a machine that never waits) end without one, so no Task is made, scheduled
            # and tracked for them. One that suspends goes on as a Task from where it stopped.
            coro = self._run(item)
            self._inline = True
            Inline.depth += 1
            try:
                yielded = coro.send(None)
            except StopIteration:
                again, self._again = self._again, False
                return again
            finally:
                self._inline = False
                Inline.depth -= 1
            task = self._loop.create_task(_resumed(coro, yielded))
            self._owner.track(task)
            return False
        if self._eof:
            if self._in_msg:
                self._send(self._owner.error(400, "SerializationException",
                                             "The connection was closed before the request was complete"),
                           close=True)
            else:
                self._close()
            return False
        if self._in_msg:
            self.deadline = self._first_byte + self._limits.request_timeout_s
            if self._expect:
                self._expect = False
                self.transport.write(_CONTINUE)  # type: ignore[union-attr]
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        return False

    async def _run(self, request: Request) -> None:
        owner = self._owner
        try:
            response = await self._handler(request)
        except asyncio.CancelledError:
            self._send(owner.error(503, "ServiceUnavailable", "The server is stopping"), close=True)
            raise
        except Exception as e:  # the boundary: a defect answers 500 and the server lives on
            print(f"express: http: internal error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            response = owner.error(500, "InternalFailure", "The server encountered an internal error")
        close = response.close or not request.keep_alive or owner.closing
        self._send(response, close=close, head_only=request.method == "HEAD",
                   keep_alive_10=request.version == "HTTP/1.0")
        self._busy = False
        if not close and not self._closed:
            if self._in_msg:
                self._first_byte = time.monotonic()  # a pipelined request's clock starts when it is its turn
            elif not self._queue:
                self.deadline = time.monotonic() + self._limits.keepalive_timeout_s
            if self._inline:  # run inline by _advance: it takes the next one (no recursion per request)
                self._again = True
            else:
                self._advance()

    def timed_out(self) -> None:
        """Called by the sweeper once ``deadline`` has passed."""
        if self._busy or self._closed:
            return
        if self._in_msg and not self._lingering:
            self._send(self._owner.error(408, "RequestTimeout", "The request was not received in time"), close=True)
        else:
            self._close()

    def close_now(self) -> None:
        """Server shutdown, after the drain."""
        self._close()

    # ------------------------------------------------------------------ output
    def _send(self, response: Response, *, close: bool = False, head_only: bool = False,
              keep_alive_10: bool = False, linger: bool = False) -> None:
        transport = self.transport
        if transport is None or self._closed or self._lingering:
            return
        body = response.body
        parts = [
            "HTTP/1.1 ", str(response.status), " ", REASONS.get(response.status, "Unknown"),
            "\r\nContent-Type: ", response.content_type,
            "\r\nContent-Length: ", str(len(body)),
            "\r\nDate: ", _date.get(),
        ]
        if response.headers:
            for name, value in response.headers:
                parts += ("\r\n", name, ": ", value)
        if close:
            parts.append("\r\nConnection: close")
        elif keep_alive_10:
            parts.append("\r\nConnection: keep-alive")  # an HTTP/1.0 client closes unless told otherwise
        parts.append("\r\n\r\n")
        head = "".join(parts).encode("latin-1", "replace")
        if head_only or not body:
            transport.write(head)
        elif len(body) < 16384:
            transport.write(head + body)
        else:
            transport.writelines((head, body))
        if close:
            if (linger or self._queue or self._in_msg or self._backlog is not None) and not self._eof:
                self._linger()
            else:
                self._close()

    def _linger(self) -> None:
        """Close our side and drop what the client still sends for a while, so that the answer reaches a
        client that is still sending (closing with unread data would reset the connection)."""
        transport = self.transport
        if transport is None or not transport.can_write_eof():
            self._close()
            return
        self._lingering = self._bypass = True
        self._queue.clear()
        self._backlog = None
        self._in_msg = False
        self._upgrade_left = -1
        transport.write_eof()
        self.deadline = time.monotonic() + LINGER_S
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = self._bypass = True
        self._owner.connections.discard(self)
        if self.transport is not None:
            self.transport.close()


def _origin_form(target: str) -> str:
    """The path of an absolute-form target (RFC 9112 3.2.2); anything else but an origin-form one is refused."""
    if target.startswith(("http://", "https://")):
        slash = target.find("/", target.find("//") + 2)
        return target[slash:] if slash >= 0 else "/"
    raise HttpError(400, "SerializationException", "Malformed request target")

