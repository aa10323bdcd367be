"""The S3 side of a Distributed Map, as AWS reads and writes it.

ItemReader: ``arn:aws:states:::s3:getObject`` with ReaderConfig ``InputType`` JSON (an array, or the
one ``ItemsPointer`` selects), JSONL, CSV (``CSVHeaderLocation`` FIRST_ROW or GIVEN with
``CSVHeaders``, ``CSVDelimiter`` COMMA, PIPE, SEMICOLON, SPACE or TAB; every value a string) or
MANIFEST (an S3 inventory's manifest.json and its CSV data files; also ``ManifestType`` S3_INVENTORY,
and ATHENA_DATA: a CSV list of data files); ``arn:aws:states:::s3:listObjectsV2``: the objects
(``Etag``, ``Key``, ``LastModified``, ``Size``, ``StorageClass``), page by page, or with
``Transformation`` LOAD_AND_FLATTEN the items of each. Objects whose key ends in ``.gz`` are
gunzipped. PARQUET and zstd-compressed objects are not read here (States.ItemReaderFailed).

ResultWriter: ``arn:aws:states:::s3:putObject``: under ``<Prefix>/<map run id>/``, ``SUCCEEDED_n.json``,
``FAILED_n.json`` and ``PENDING_n.json`` (a JSON array each, or JSON Lines for ``OutputType`` JSONL)
and ``manifest.json`` listing them; the state's output is then ``{"MapRunArn", "ResultWriterDetails":
{"Bucket", "Key"}}`` (made by the Map state).

Bounds: JSONL, CSV and inventory files are parsed from the object's stream as the Map Run asks for
items (a record may be up to 8 MB, as AWS reads them); a JSON document or manifest is read whole,
up to :data:`MAX_DOCUMENT_BYTES`; results are written in parts of at most :data:`RESULT_PART_BYTES`,
so a Map Run holds no more than that per status. Every S3 call is bounded by the execution's deadline.

S3 errors of a reader are named as Step Functions names S3's (``S3.NoSuchKeyException``, ``S3.S3Exception``
for unmodelled codes, cause ``<message> (Service: S3, Status Code: N, Request ID: ...)``); a writer's
fail the state with States.ResultWriterFailed, as AWS documents.
"""
from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import re
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError, ExecutionTimedOut
from express.engine import tasks
from express.engine.frame import Frame
from express.integrations import Integrations
from express.integrations.aws import clients, machine_region

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # a JSON document or a manifest, read whole
MAX_RECORD_BYTES = 8 * 1024 * 1024  # AWS: an item of a CSV, JSON Lines or JSON file may be up to 8 MB
RESULT_PART_BYTES = 16 * 1024 * 1024  # a result file is written (and a new one begun) at this size
CHUNK_BYTES = 1024 * 1024  # read from an object's stream at a time
_PARSE_IN_THREAD_BYTES = 1024 * 1024  # larger documents are parsed off the event loop
MAX_MANIFEST_FILES = 1_000_000  # data files an Athena manifest may list

_ACTION = re.compile(r"^arn:aws[\w-]*:states:::s3:(?P<action>getObject|listObjectsV2|putObject)$")
INPUT_TYPES = ("JSON", "JSONL", "CSV", "MANIFEST", "PARQUET")
DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
# S3's error codes the Java SDK (which Step Functions reports with) has exception classes for;
# every other code is an S3Exception
_MODELLED = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "InvalidObjectState", "ObjectNotInActiveTierError",
                       "ObjectAlreadyInActiveTierError", "BucketAlreadyExists", "BucketAlreadyOwnedByYou",
                       "EncryptionTypeMismatch", "InvalidRequest", "InvalidWriteOffset", "TooManyParts"})


def _action(resource: str) -> str | None:
    m = _ACTION.match(resource)
    return m.group("action") if m else None


# ============================================================================ ItemReader


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    """A ReaderConfig, checked once at compile time."""

    input_type: str | None
    header_location: str
    headers: Any
    delimiter: str
    items_pointer: str | None
    transformation: str
    manifest_type: str | None

    @classmethod
    def parse(cls, config: dict[str, Any]) -> ReaderConfig:
        """ValueError (the definition's problem) for values AWS does not accept."""
        input_type = config.get("InputType")
        if input_type is not None and input_type not in INPUT_TYPES:
            raise ValueError(f"The value for the field 'InputType' must be one of {', '.join(INPUT_TYPES)}")
        location = config.get("CSVHeaderLocation", "FIRST_ROW")
        if location not in ("FIRST_ROW", "GIVEN"):
            raise ValueError("The value for the field 'CSVHeaderLocation' must be one of FIRST_ROW, GIVEN")
        delimiter = config.get("CSVDelimiter", "COMMA")
        if delimiter not in DELIMITERS:
            raise ValueError(f"The value for the field 'CSVDelimiter' must be one of {', '.join(DELIMITERS)}")
        transformation = config.get("Transformation", "NONE")
        if transformation not in ("NONE", "LOAD_AND_FLATTEN"):
            raise ValueError("The value for the field 'Transformation' must be one of NONE, LOAD_AND_FLATTEN")
        manifest = config.get("ManifestType")
        if manifest is not None and manifest not in ("ATHENA_DATA", "S3_INVENTORY"):
            raise ValueError("The value for the field 'ManifestType' must be one of ATHENA_DATA, S3_INVENTORY")
        pointer = config.get("ItemsPointer")
        if pointer is not None and (not isinstance(pointer, str) or (pointer and not pointer.startswith("/"))):
            raise ValueError("The value for the field 'ItemsPointer' must be a JSON Pointer (RFC 6901)")
        return cls(input_type, location, config.get("CSVHeaders"), DELIMITERS[delimiter], pointer,
                   transformation, manifest)


def item_reader(resource: str, reader_config: dict[str, Any], integrations: Integrations) -> tasks.ItemReader | None:
    """The ItemReader of ``resource`` (None: not an S3 read action)."""
    action = _action(resource)
    if action not in ("getObject", "listObjectsV2"):
        return None
    config = ReaderConfig.parse(reader_config)

    async def read(request: dict[str, Any], max_items: int | None, frame: Frame) -> AsyncGenerator[Any, None]:
        reader = _Reader(integrations, frame, config)
        source = reader.list_objects(request) if action == "listObjectsV2" else reader.get_object(request)
        count = 0
        async with contextlib.aclosing(source):
            async for item in source:
                if max_items is not None and count >= max_items:
                    return
                count += 1
                yield item

    return read


class _Reader:
    """The reads of one ItemReader evaluation."""

    def __init__(self, integrations: Integrations, frame: Frame, config: ReaderConfig) -> None:
        self.integrations = integrations
        self.frame = frame
        self.config = config

    async def s3(self) -> Any:
        pool = clients(self.integrations)
        try:
            return await pool.client("s3", pool.region(machine_region(self.frame)))
        except Exception as e:  # botocore's configuration errors: the boundary where they become ASL errors
            raise ASLError(errors.ITEM_READER_FAILED, f"Cannot make an S3 client: {e}", located=True) from None

    async def call(self, operation: str, request: dict[str, Any]) -> Any:
        s3 = await self.s3()
        try:
            return await _within(getattr(s3, operation)(**request), self.frame)
        except (ASLError, ExecutionTimedOut):
            raise
        except Exception as e:
            raise _reader_error(e) from None

    # ---------------------------------------------------------------- getObject
    async def get_object(self, request: dict[str, Any]) -> AsyncGenerator[Any, None]:
        config = self.config
        manifest = config.manifest_type or ("S3_INVENTORY" if config.input_type == "MANIFEST" else None)
        if manifest == "S3_INVENTORY":
            items = self.inventory(request)
        elif manifest == "ATHENA_DATA":
            items = self.athena(request)
        else:
            items = self.parsed(request, config.input_type)
        async with contextlib.aclosing(items):
            async for item in items:
                yield item

    async def parsed(self, request: dict[str, Any], input_type: str | None) -> AsyncGenerator[Any, None]:
        """The items of one object, as ``input_type`` reads them."""
        where = _where(request)
        if input_type is None:
            raise ASLError(errors.ITEM_READER_FAILED, "The ItemReader's ReaderConfig must give an InputType "
                                                      f"to read {where}", located=True)
        if input_type == "PARQUET":
            raise ASLError(errors.ITEM_READER_FAILED, f"Cannot read {where}: PARQUET objects are not read by "
                                                      "express (JSON, JSONL, CSV and MANIFEST are)", located=True)
        if input_type == "JSON":
            document = await self.document(request)
            for item in _json_items(document, self.config.items_pointer, where):
                yield item
            return
        chunks = self.chunks(request)
        if input_type == "JSONL":
            items = _jsonl_items(chunks, where)
        else:  # CSV
            headers = None if self.config.header_location == "FIRST_ROW" else self.given_headers()
            items = _csv_items(chunks, self.config.delimiter, headers, where)
        async with contextlib.aclosing(chunks), contextlib.aclosing(items):
            async for item in items:
                yield item

    def given_headers(self) -> list[str]:
        headers = self.config.headers
        if not isinstance(headers, list) or not headers or not all(isinstance(h, str) for h in headers):
            raise ASLError(errors.ITEM_READER_FAILED, "CSVHeaderLocation GIVEN needs CSVHeaders: an array of "
                                                      "strings", located=True)
        return _unique_headers(headers)

    async def chunks(self, request: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        """The object's bytes (gunzipped for a ``.gz`` key), a chunk at a time."""
        key = str(request.get("Key", ""))
        if key.endswith((".zst", ".zstd")):
            raise ASLError(errors.ITEM_READER_FAILED, f"Cannot read {_where(request)}: zstd-compressed objects "
                                                      "are not read by express (gzip ones are)", located=True)
        response = await self.call("get_object", request)
        inflate = zlib.decompressobj(32 + zlib.MAX_WBITS) if key.endswith(".gz") else None
        async with response["Body"] as body:
            while True:
                try:
                    chunk = await _within(body.read(CHUNK_BYTES), self.frame)
                except (ASLError, ExecutionTimedOut):
                    raise
                except Exception as e:
                    raise _reader_error(e) from None
                if not chunk:
                    break
                if inflate is None:
                    yield chunk
                    continue
                for piece in _inflated(inflate, chunk, _where(request)):
                    yield piece
            if inflate is not None:
                tail = inflate.flush()
                if tail:
                    yield tail

    async def document(self, request: dict[str, Any]) -> Any:
        """A whole JSON object (a document or a manifest), parsed."""
        where = _where(request)
        data = bytearray()
        chunks = self.chunks(request)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                data += chunk
                if len(data) > MAX_DOCUMENT_BYTES:
                    raise ASLError(errors.ITEM_READER_FAILED,
                                   f"{where} is larger than the {MAX_DOCUMENT_BYTES} bytes express reads of a "
                                   "JSON document (JSONL and CSV objects are read as streams)", located=True)
        try:
            if len(data) > _PARSE_IN_THREAD_BYTES:
                return await asyncio.to_thread(orjson.loads, bytes(data))
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise ASLError(errors.ITEM_READER_FAILED, f"{where} is not valid JSON: {e}", located=True) from None

    # ---------------------------------------------------------------- manifests
    async def inventory(self, request: dict[str, Any]) -> AsyncGenerator[Any, None]:
        """An S3 inventory: its manifest.json, then the rows of each CSV data file it lists."""
        where = _where(request)
        manifest = await self.document(request)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
            raise ASLError(errors.ITEM_READER_FAILED, f"{where} is not an S3 inventory manifest (no 'files')",
                           located=True)
        if manifest.get("fileFormat", "CSV") != "CSV":
            raise ASLError(errors.ITEM_READER_FAILED, f"The S3 inventory {where} is in {manifest.get('fileFormat')} "
                                                      "format: Step Functions reads CSV inventories", located=True)
        schema = manifest.get("fileSchema")
        if not isinstance(schema, str) or not schema.strip():
            raise ASLError(errors.ITEM_READER_FAILED, f"The S3 inventory manifest {where} has no fileSchema",
                           located=True)
        headers = _unique_headers([h.strip() for h in schema.split(",")])
        bucket = str(manifest.get("destinationBucket") or request.get("Bucket", ""))
        bucket = bucket.split(":::", 1)[1] if bucket.startswith("arn:") and ":::" in bucket else bucket
        for entry in manifest["files"]:
            key = entry.get("key") if isinstance(entry, dict) else None
            if not isinstance(key, str):
                raise ASLError(errors.ITEM_READER_FAILED, f"An entry of 'files' in {where} has no key", located=True)
            part = {"Bucket": bucket, "Key": key}
            chunks = self.chunks(part)
            items = _csv_items(chunks, self.config.delimiter, headers, _where(part))
            async with contextlib.aclosing(chunks), contextlib.aclosing(items):
                async for item in items:
                    yield item

    async def athena(self, request: dict[str, Any]) -> AsyncGenerator[Any, None]:
        """An Athena UNLOAD manifest: a CSV list of the data files' S3 URIs, each read as InputType."""
        chunks = self.chunks(request)
        uris: list[str] = []
        lines = _lines(chunks, False, _where(request))
        async with contextlib.aclosing(chunks), contextlib.aclosing(lines):
            async for batch in lines:
                uris.extend(line.strip() for line in batch if line.strip())
                if len(uris) > MAX_MANIFEST_FILES:
                    raise ASLError(errors.ITEM_READER_FAILED,
                                   f"{_where(request)} lists more than {MAX_MANIFEST_FILES} files", located=True)
        for uri in uris:
            if not uri.startswith("s3://") or "/" not in uri[5:]:
                raise ASLError(errors.ITEM_READER_FAILED, f"{_where(request)} lists '{uri}', which is not an "
                                                          "s3://bucket/key URI", located=True)
            bucket, key = uri[5:].split("/", 1)
            items = self.parsed({"Bucket": bucket, "Key": key}, self.config.input_type)
            async with contextlib.aclosing(items):
                async for item in items:
                    yield item

    # ---------------------------------------------------------------- listObjectsV2
    async def list_objects(self, request: dict[str, Any]) -> AsyncGenerator[Any, None]:
        """The objects under the request's Prefix, page by page (or their items: LOAD_AND_FLATTEN)."""
        flatten = self.config.transformation == "LOAD_AND_FLATTEN"
        page_request = dict(request)
        while True:
            page = await self.call("list_objects_v2", page_request)
            for obj in page.get("Contents") or []:
                if not flatten:
                    yield _object_item(obj)
                elif not obj["Key"].endswith("/"):  # folders have no items
                    items = self.parsed({"Bucket": request.get("Bucket"), "Key": obj["Key"]}, self.config.input_type)
                    async with contextlib.aclosing(items):
                        async for item in items:
                            yield item
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            page_request["ContinuationToken"] = token


def _object_item(obj: dict[str, Any]) -> dict[str, Any]:
    """A listed object as a Map Run's item, in AWS's shape (``Etag``; ``LastModified`` in epoch seconds)."""
    modified = obj.get("LastModified")
    return {
        "Etag": obj.get("ETag"),
        "Key": obj.get("Key"),
        "LastModified": int(modified.timestamp()) if isinstance(modified, datetime) else modified,
        "Size": obj.get("Size"),
        "StorageClass": obj.get("StorageClass", "STANDARD"),
    }


def _where(request: dict[str, Any]) -> str:
    return f"s3://{request.get('Bucket')}/{request.get('Key', '')}"


def _inflated(inflate: Any, chunk: bytes, where: str) -> Iterable[bytes]:
    """A gzip chunk's bytes, in pieces of at most CHUNK_BYTES (never one huge piece)."""
    data = chunk
    try:
        while data:
            piece = inflate.decompress(data, CHUNK_BYTES)
            if piece:
                yield piece
            data = inflate.unconsumed_tail
    except zlib.error as e:
        raise ASLError(errors.ITEM_READER_FAILED, f"{where} is not valid gzip: {e}", located=True) from None


def _json_items(document: Any, pointer: str | None, where: str) -> list[Any]:
    node = document
    if pointer:
        for token in pointer[1:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise ASLError(errors.ITEM_READER_FAILED, f"The ItemsPointer '{pointer}' selects nothing in {where}",
                               located=True)
    if not isinstance(node, list):
        raise ASLError(errors.ITEM_READER_FAILED, "Attempting to map over non-iterable node.", located=True)
    return node


async def _lines(chunks: AsyncIterator[bytes], quoted: bool, where: str) -> AsyncGenerator[list[str], None]:
    """The text's complete records, a list per chunk: lines, or (``quoted``: CSV) lines joined while a
    double-quoted field spans them. Each keeps its line end."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")("replace")
    pending = ""  # a record not yet ended
    async for chunk in chunks:
        text = pending + decoder.decode(chunk)
        cut = text.rfind("\n") + 1
        if not cut:
            pending = text
        else:
            pending = text[cut:]
            records = text[:cut].split("\n")
            records.pop()  # the empty string after the last line end
            if quoted:
                records, rest = _quoted_records(records)
                pending = rest + pending
            else:
                records = [r + "\n" for r in records]
            if records:
                yield records
        if len(pending) > MAX_RECORD_BYTES:
            raise ASLError(errors.ITEM_READER_FAILED, f"{where} has a record of more than {MAX_RECORD_BYTES} "
                                                      "bytes", located=True)
    tail = pending + decoder.decode(b"", final=True)
    if tail:
        yield [tail]


def _quoted_records(lines: list[str]) -> tuple[list[str], str]:
    """CSV lines grouped into records (a quoted field may hold line ends); the unfinished rest."""
    records: list[str] = []
    current: list[str] = []
    odd = False
    for line in lines:
        if '"' in line:
            quotes = line.count('"') if "\\" not in line else re.sub(r"\\.", "", line).count('"')
            odd ^= bool(quotes & 1)
        current.append(line)
        if not odd:
            records.append("\n".join(current) + "\n")
            current = []
    return records, ("\n".join(current) + "\n" if current else "")


async def _jsonl_items(chunks: AsyncIterator[bytes], where: str) -> AsyncGenerator[Any, None]:
    number = 0
    async for lines in _lines(chunks, False, where):
        for line in lines:
            number += 1
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise ASLError(errors.ITEM_READER_FAILED, f"Line {number} of {where} is not valid JSON: {e}",
                               located=True) from None


async def _csv_items(chunks: AsyncIterator[bytes], delimiter: str, headers: list[str] | None,
                     where: str) -> AsyncGenerator[dict[str, str], None]:
    """Rows as objects of strings, keyed by the headers (None: the first row's): fields missing from
    a row are empty strings, extra ones are dropped, as AWS parses them."""
    async for records in _lines(chunks, True, where):
        try:
            rows = list(csv.reader(records, delimiter=delimiter, quotechar='"', escapechar="\\",
                                   doublequote=True, strict=False))
        except csv.Error as e:
            raise ASLError(errors.ITEM_READER_FAILED, f"{where} is not valid CSV: {e}", located=True) from None
        for row in rows:
            if not row:
                continue  # a blank line
            if headers is None:
                headers = _unique_headers(row)
                continue
            n = len(row)
            yield {h: row[i] if i < n else "" for i, h in enumerate(headers)}


def _unique_headers(headers: list[str]) -> list[str]:
    if len(set(headers)) < len(headers):
        raise ASLError(errors.ITEM_READER_FAILED, "CSV headers cannot contain duplicates.", located=True)
    return headers


# ============================================================================ ResultWriter


def result_writer(resource: str, writer_config: dict[str, Any], integrations: Integrations) -> tasks.ResultWriter | None:
    """The ResultWriter of ``resource`` (None: not s3:putObject)."""
    if _action(resource) != "putObject":
        return None
    lines = writer_config.get("OutputType", "JSON") == "JSONL"

    def bind(request: dict[str, Any], map_run_arn: str, frame: Frame) -> tasks.ResultSink:
        bucket = request.get("Bucket")
        prefix = request.get("Prefix", "")
        if not isinstance(bucket, str) or not bucket:
            raise ASLError(errors.RESULT_WRITER_FAILED, "The ResultWriter's Parameters must give the Bucket to "
                                                        "write the results to", located=True)
        if not isinstance(prefix, str):
            raise ASLError(errors.RESULT_WRITER_FAILED, "The ResultWriter's Prefix must be a string", located=True)
        return S3Results(integrations, frame, bucket, prefix, map_run_arn, lines)

    return bind


class S3Results:
    """One Map Run's results in S3 (a :class:`express.engine.tasks.ResultSink`): the records of each
    status are buffered and written as ``STATUS_n.json`` parts, then ``manifest.json`` lists them."""

    STATUSES = ("SUCCEEDED", "FAILED", "PENDING")

    def __init__(self, integrations: Integrations, frame: Frame, bucket: str, prefix: str, map_run_arn: str,
                 lines: bool) -> None:
        self.integrations = integrations
        self.frame = frame
        self.bucket = bucket
        self.map_run_arn = map_run_arn
        self.lines = lines
        run_id = map_run_arn.rsplit(":", 1)[-1]
        self.folder = f"{prefix}{'' if not prefix or prefix.endswith('/') else '/'}{run_id}/"
        self.buffers: dict[str, list[bytes]] = {s: [] for s in self.STATUSES}
        self.sizes = dict.fromkeys(self.STATUSES, 0)
        self.files: dict[str, list[dict[str, Any]]] = {s: [] for s in self.STATUSES}

    async def add(self, status: str, record: Any) -> None:
        data = orjson.dumps(record)
        self.buffers[status].append(data)
        self.sizes[status] += len(data) + 1
        if self.sizes[status] >= RESULT_PART_BYTES:
            await self._flush(status)

    async def finish(self) -> dict[str, Any]:
        for status in self.STATUSES:
            if self.buffers[status]:
                await self._flush(status)
        manifest = {"DestinationBucket": self.bucket, "MapRunArn": self.map_run_arn,
                    "ResultFiles": {s: self.files[s] for s in sorted(self.STATUSES)}}
        key = self.folder + "manifest.json"
        await self._put(key, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        return {"Bucket": self.bucket, "Key": key}

    async def _flush(self, status: str) -> None:
        # taken before the write, so that records added meanwhile go to the next part
        records, self.buffers[status], self.sizes[status] = self.buffers[status], [], 0
        body = b"\n".join(records) + b"\n" if self.lines else b"[" + b",".join(records) + b"]"
        key = f"{self.folder}{status}_{len(self.files[status])}.json"
        self.files[status].append({"Key": key, "Size": len(body)})
        await self._put(key, body)

    async def _put(self, key: str, body: bytes) -> None:
        pool = clients(self.integrations)
        try:
            s3 = await pool.client("s3", pool.region(machine_region(self.frame)))
            await _within(s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"),
                          self.frame)
        except (ASLError, ExecutionTimedOut):
            raise
        except Exception as e:  # the boundary where botocore's errors become ASL errors
            raise ASLError(errors.RESULT_WRITER_FAILED, _s3_cause(e), located=True) from None


# ============================================================================ shared


async def _within(coro: Any, frame: Frame) -> Any:
    """An S3 call, bounded by the execution's deadline."""
    ex = frame.execution
    return await tasks._race(coro, ex.deadline - ex.clock.now(), ex.clock, False, ex.real_deadline)


def _reader_error(e: Exception) -> ASLError:
    """A botocore failure of a reader's S3 call, as Step Functions names S3's errors."""
    code = _error_code(e)
    if code is None:
        return ASLError(errors.ITEM_READER_FAILED, _s3_cause(e), located=True)
    name = f"{code}Exception" if code in _MODELLED else "S3Exception"
    return ASLError(f"S3.{name}", _s3_cause(e), located=True)


def _error_code(e: Exception) -> str | None:
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return None
    code = (response.get("Error") or {}).get("Code")
    return str(code) if code else None


def _s3_cause(e: Exception) -> str:
    """The cause as the Java SDK words an S3 error: ``<message> (Service: S3, Status Code: N, Request ID: ...)``."""
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return str(e)
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    message = error.get("Message") or error.get("Code") or str(e)
    details = f"Service: S3, Status Code: {meta.get('HTTPStatusCode', 0)}, Request ID: {meta.get('RequestId', '')}"
    if meta.get("HostId"):
        details += f", Extended Request ID: {meta['HostId']}"
    return f"{message} ({details})"
