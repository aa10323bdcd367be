"""The client side of HTTP/1.1: responses read with llhttp (through ``httptools``), as
:mod:`express.http.protocol` reads the requests. :mod:`express.http.routing` reads the answers of
the worker that owns an execution name with it.
"""
from __future__ import annotations

from typing import NamedTuple

import httptools

__all__ = ["ParsedResponse", "ResponseError", "ResponseParser"]


class ResponseError(Exception):
    """An HTTP response that cannot be read."""


class ParsedResponse(NamedTuple):
    status: int
    headers: list[tuple[str, str]]  # as sent, values trimmed
    body: bytes
    keep_alive: bool


class ResponseParser:
    """HTTP/1.1 responses read from one client connection with llhttp, like the requests are.

    ``feed`` returns the responses it completed (informational 1xx answers are skipped), ``feed_eof``
    the one that the end of the connection completes (a body without framing runs to the close).
    A response may not take more than ``max_bytes`` on the wire, nor have more than ``max_headers``
    headers; anything malformed raises :class:`ResponseError`.
    """

    __slots__ = ("_parser", "_max_bytes", "_max_headers", "_raw", "_in_msg", "_headers", "_body", "_body_len",
                 "_status", "_keep_alive", "_until_eof", "_done")

    def __init__(self, max_bytes: int, max_headers: int = 1000) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._max_bytes = max_bytes
        self._max_headers = max_headers
        self._raw = 0
        self._in_msg = False
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._body_len = 0
        self._status = 0
        self._keep_alive = True
        self._until_eof = False
        self._done: list[ParsedResponse] = []

    def feed(self, data: bytes) -> list[ParsedResponse]:
        self._raw += len(data)
        if self._raw > self._max_bytes:
            raise ResponseError(f"the response takes more than {self._max_bytes} bytes")
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise ResponseError("the response switches protocols") from None
        except httptools.HttpParserError as e:
            cause = e.__context__
            raise ResponseError(str(cause) if isinstance(cause, ResponseError) else f"malformed response: {e}") \
                from None
        done = self._done
        if done:
            self._done = []
        return done

    def feed_eof(self) -> list[ParsedResponse]:
        if not self._in_msg:
            return []
        if not self._until_eof:
            raise ResponseError("the connection was closed before the response was complete")
        self._keep_alive = False
        self.on_message_complete()
        return self._done

    def on_message_begin(self) -> None:
        self._in_msg = True
        self._headers = []
        self._body = []
        self._body_len = 0
        self._until_eof = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self._headers) >= self._max_headers:
            raise ResponseError(f"the response has more than {self._max_headers} headers")
        self._headers.append((name.decode("latin-1"), value.decode("latin-1").rstrip(" \t")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._status = status = parser.get_status_code()
        self._keep_alive = parser.should_keep_alive()
        names = {name.lower(): value for name, value in self._headers}
        length = names.get("content-length")
        if length is not None and int(length) > self._max_bytes:
            raise ResponseError(f"the response body is larger than {self._max_bytes} bytes")
        self._until_eof = (length is None and "transfer-encoding" not in names and status >= 200
                           and status not in (204, 304))

    def on_body(self, data: bytes) -> None:
        self._body_len += len(data)
        if self._body_len > self._max_bytes:
            raise ResponseError(f"the response body is larger than {self._max_bytes} bytes")
        self._body.append(data)

    def on_message_complete(self) -> None:
        self._in_msg = False
        self._raw = 0
        if self._status >= 200:
            self._done.append(ParsedResponse(self._status, self._headers, b"".join(self._body), self._keep_alive))
