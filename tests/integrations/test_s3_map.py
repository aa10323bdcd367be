"""express.integrations.s3_map and the Map Run: a Distributed Map reading its items from S3
(ItemReader), batching them (ItemBatcher) and writing its results to S3 (ResultWriter), end to end
through Engine.compile/execute against the session's moto server."""
from __future__ import annotations

import asyncio
import gzip
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest

from express import Engine, VirtualClock
from express.integrations import Integrations, s3_map

GET = "arn:aws:states:::s3:getObject"
LIST = "arn:aws:states:::s3:listObjectsV2"
PUT = "arn:aws:states:::s3:putObject"
MAP_RUN_ARN = re.compile(r"^arn:aws:states:us-east-1:000000000000:mapRun:machine/(?P<label>[^:]+):(?P<id>[0-9a-f-]{36})$")
FACTS = [{"verdict": "true", "source": "speech"}, {"verdict": "false", "source": "television"},
         {"verdict": "mostly-true", "source": "news"}]
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
# fails the child execution of an item whose "fail" is true
FAILING = {"StartAt": "C", "States": {
    "C": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "F"}], "Default": "P"},
    "F": {"Type": "Fail", "Error": "Boom", "Cause": "a bad item"},
    "P": {"Type": "Pass", "End": True}}}


@pytest.fixture
def s3(moto_env: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_env, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"map-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
async def integrations(moto_env: str) -> AsyncIterator[Integrations]:
    integ = Integrations()
    yield integ
    await integ.aclose()


def dmap(reader: dict[str, Any] | None = None, processor: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A one-state machine: a Distributed Map (EXPRESS children) with these fields."""
    state: dict[str, Any] = {"Type": "Map", "End": True, "ItemProcessor": {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}, **(processor or PASS)}}
    if reader is not None:
        state["ItemReader"] = reader
    state.update(fields)
    return {"StartAt": "M", "States": {"M": state}}


def get_object(bucket: str, key: str, **config: Any) -> dict[str, Any]:
    return {"Resource": GET, "ReaderConfig": config, "Parameters": {"Bucket": bucket, "Key": key}}


async def run(integ: Integrations, definition: dict[str, Any], input: Any = None,
              functions: dict[str, Any] | None = None) -> Any:
    engine = Engine(functions=functions, clock=VirtualClock(), integrations=integ)
    return await engine.compile(definition).execute({} if input is None else input)


def body_of(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


# ============================================================================ ItemReader


async def test_json_items_with_max_items_and_parameters_from_the_input(integrations, s3, bucket):
    s3.put_object(Bucket=bucket, Key="facts.json", Body=json.dumps(FACTS).encode())
    reader = {"Resource": GET, "ReaderConfig": {"InputType": "JSON", "MaxItems": 2},
              "Parameters": {"Bucket.$": "$.where.bucket", "Key.$": "$.where.key"}}
    r = await run(integrations, dmap(reader), {"where": {"bucket": bucket, "key": "facts.json"}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == FACTS[:2]


async def test_json_items_pointer_selects_a_nested_array(integrations, s3, bucket):
    doc = {"inventory": {"products": {"featured": [1, 2, 3], "other": [4]}}}
    s3.put_object(Bucket=bucket, Key="doc.json", Body=json.dumps(doc).encode())
    reader = get_object(bucket, "doc.json", InputType="JSON", ItemsPointer="/inventory/products/featured")
    r = await run(integrations, dmap(reader))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [1, 2, 3]


async def test_json_document_that_is_no_array_fails_the_reader(integrations, s3, bucket):
    s3.put_object(Bucket=bucket, Key="object.json", Body=b'{"a": 1}')
    r = await run(integrations, dmap(get_object(bucket, "object.json", InputType="JSON")))
    assert (r.status, r.error, r.cause) == ("FAILED", "States.ItemReaderFailed",
                                            "Attempting to map over non-iterable node.")


async def test_jsonata_arguments_and_max_items_expression(integrations, s3, bucket):
    s3.put_object(Bucket=bucket, Key="facts.json", Body=json.dumps(FACTS).encode())
    definition = dmap({"Resource": GET, "ReaderConfig": {"InputType": "JSON", "MaxItems": "{% $states.input.n %}"},
                       "Arguments": {"Bucket": "{% $states.input.b %}", "Key": "facts.json"}},
                      QueryLanguage="JSONata")
    r = await run(integrations, definition, {"b": bucket, "n": 1})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == FACTS[:1]


async def test_jsonl_items_skip_blank_lines_and_gzip_is_read(integrations, s3, bucket):
    text = "\n".join(json.dumps(f) for f in FACTS) + "\n\n"
    s3.put_object(Bucket=bucket, Key="facts.jsonl", Body=text.encode())
    s3.put_object(Bucket=bucket, Key="facts.jsonl.gz", Body=gzip.compress(text.encode()))
    for key in ("facts.jsonl", "facts.jsonl.gz"):
        r = await run(integrations, dmap(get_object(bucket, key, InputType="JSONL")))
        assert r.status == "SUCCEEDED", r.cause
        assert r.output == FACTS


async def test_jsonl_line_that_is_not_json_names_the_line(integrations, s3, bucket):
    s3.put_object(Bucket=bucket, Key="bad.jsonl", Body=b'{"a": 1}\nnot json\n')
    r = await run(integrations, dmap(get_object(bucket, "bad.jsonl", InputType="JSONL")))
    assert r.status == "FAILED" and r.error == "States.ItemReaderFailed"
    assert r.cause.startswith(f"Line 2 of s3://{bucket}/bad.jsonl is not valid JSON")


CSV_TEXT = ('name,quote,n\n'
            'ann,"hello, world",1\n'
            'bob,"two\nlines",2\n'
            'cy,"say ""hi""",3,extra\n'
            'dee\n'
            '\n'
            'C:\\\\dir,esc\\,aped,4\n')


async def test_csv_first_row_headers_values_are_strings_as_aws_parses_them(integrations, s3, bucket):
    s3.put_object(Bucket=bucket, Key="data.csv", Body=CSV_TEXT.encode())
    r = await run(integrations, dmap(get_object(bucket, "data.csv", InputType="CSV", CSVHeaderLocation="FIRST_ROW")))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [
        {"name": "ann", "quote": "hello, world", "n": "1"},
        {"name": "bob", "quote": "two\nlines", "n": "2"},
        {"name": "cy", "quote": 'say "hi"', "n": "3"},  # the extra field is dropped
        {"name": "dee", "quote": "", "n": ""},  # missing fields are empty strings
        {"name": "C:\\dir", "quote": "esc,aped", "n": "4"},  # backslash escapes
    ]


async def test_csv_records_split_across_read_chunks(integrations, s3, bucket, monkeypatch):
    monkeypatch.setattr(s3_map, "CHUNK_BYTES", 5)  # every record, quoted line ends included, straddles chunks
    s3.put_object(Bucket=bucket, Key="data.csv", Body=CSV_TEXT.encode())
    r = await run(integrations, dmap(get_object(bucket, "data.csv", InputType="CSV")))
    assert r.status == "SUCCEEDED", r.cause
    assert [row["n"] for row in r.output] == ["1", "2", "3", "", "4"]
    assert r.output[1]["quote"] == "two\nlines"


@pytest.mark.parametrize("name,char", [("COMMA", ","), ("PIPE", "|"), ("SEMICOLON", ";"), ("SPACE", " "),
                                       ("TAB", "\t")])
async def test_csv_given_headers_and_each_delimiter(integrations, s3, bucket, name, char):
    s3.put_object(Bucket=bucket, Key="data.csv", Body=f"1{char}307\r\n2{char}481\r\n".encode())
    reader = get_object(bucket, "data.csv", InputType="CSV", CSVHeaderLocation="GIVEN",
                        CSVHeaders=["userId", "movieId"], CSVDelimiter=name)
    r = await run(integrations, dmap(reader))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [{"userId": "1", "movieId": "307"}, {"userId": "2", "movieId": "481"}]


async def test_csv_duplicate_headers_fail_with_aws_cause(integrations, s3, bucket):
    s3.put_object(Bucket=bucket, Key="data.csv", Body=b"a,a\n1,2\n")
    r = await run(integrations, dmap(get_object(bucket, "data.csv", InputType="CSV")))
    assert (r.error, r.cause) == ("States.ItemReaderFailed", "CSV headers cannot contain duplicates.")


async def test_s3_inventory_manifest_reads_its_gzipped_csv_data_files(integrations, s3, bucket):
    rows = [f'"{bucket}","csvDataset/titles.csv","3399671","2022-11-16T00:29:32.000Z"',
            f'"{bucket}","imageDataset/dog.jpg","27034","2022-11-15T20:02:16.000Z"']
    s3.put_object(Bucket=bucket, Key="inv/data/part-1.csv.gz", Body=gzip.compress(("\n".join(rows) + "\n").encode()))
    manifest = {"sourceBucket": bucket, "destinationBucket": f"arn:aws:s3:::{bucket}", "version": "2016-11-30",
                "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size, LastModifiedDate",
                "files": [{"key": "inv/data/part-1.csv.gz", "size": 1, "MD5checksum": "x"}]}
    s3.put_object(Bucket=bucket, Key="inv/manifest.json", Body=json.dumps(manifest).encode())
    r = await run(integrations, dmap(get_object(bucket, "inv/manifest.json", InputType="MANIFEST", MaxItems=1)))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [{"Bucket": bucket, "Key": "csvDataset/titles.csv", "Size": "3399671",
                         "LastModifiedDate": "2022-11-16T00:29:32.000Z"}]


async def test_list_objects_v2_items_as_aws_gives_them_page_by_page(integrations, s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"data/{i}.txt", Body=b"x" * i)
    s3.put_object(Bucket=bucket, Key="other/skip.txt", Body=b"-")
    # MaxKeys 2: the listing comes in three pages
    reader = {"Resource": LIST, "Parameters": {"Bucket": bucket, "Prefix": "data/", "MaxKeys": 2}}
    r = await run(integrations, dmap(reader))
    assert r.status == "SUCCEEDED", r.cause
    assert [o["Key"] for o in r.output] == [f"data/{i}.txt" for i in range(5)]
    first = r.output[1]
    assert list(first) == ["Etag", "Key", "LastModified", "Size", "StorageClass"]
    assert first["Size"] == 1 and first["StorageClass"] == "STANDARD"
    assert isinstance(first["LastModified"], int) and first["Etag"].startswith('"')


async def test_list_objects_v2_load_and_flatten_reads_each_object(integrations, s3, bucket):
    s3.put_object(Bucket=bucket, Key="logs/", Body=b"")  # a console "folder": no items
    s3.put_object(Bucket=bucket, Key="logs/a.json", Body=b"[1, 2]")
    s3.put_object(Bucket=bucket, Key="logs/b.json", Body=b"[3]")
    reader = {"Resource": LIST, "ReaderConfig": {"InputType": "JSON", "Transformation": "LOAD_AND_FLATTEN"},
              "Parameters": {"Bucket": bucket, "Prefix": "logs/"}}
    r = await run(integrations, dmap(reader))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [1, 2, 3]


async def test_max_items_path_takes_a_numeric_string_and_refuses_a_negative(integrations, s3, bucket):
    s3.put_object(Bucket=bucket, Key="facts.json", Body=json.dumps(FACTS).encode())
    definition = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"n": "2"}, "Next": "M"},
        "M": dmap(get_object(bucket, "facts.json", InputType="JSON", MaxItemsPath="$n"))["States"]["M"]}}
    r = await run(integrations, definition)
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == FACTS[:2]
    r = await run(integrations, dmap(get_object(bucket, "facts.json", InputType="JSON", MaxItemsPath="$.n")), {"n": -1})
    assert (r.error, r.cause) == ("States.ItemReaderFailed", "field MaxItems must be positive")


async def test_reader_s3_errors_are_named_as_aws_names_them_and_caught(integrations, s3, bucket):
    definition = dmap(get_object(bucket, "missing.json", InputType="JSON"),
                      Catch=[{"ErrorEquals": ["S3.NoSuchKeyException"], "Next": "Caught"}])
    definition["States"]["M"].pop("End")
    definition["States"]["M"]["Next"] = "Done"
    definition["States"].update({"Done": {"Type": "Succeed"}, "Caught": {"Type": "Pass", "End": True}})
    r = await run(integrations, definition)
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["Error"] == "S3.NoSuchKeyException"
    assert "(Service: S3, Status Code: 404, Request ID: " in r.output["Cause"]
    r = await run(integrations, dmap(get_object(f"no-such-{bucket}", "k.json", InputType="JSON")))
    assert (r.status, r.error) == ("FAILED", "S3.NoSuchBucketException")


# ============================================================================ ItemBatcher


async def test_item_batcher_groups_items_with_batch_input(integrations, s3, bucket):
    s3.put_object(Bucket=bucket, Key="facts.json", Body=json.dumps(FACTS).encode())
    definition = dmap(get_object(bucket, "facts.json", InputType="JSON"),
                      ItemBatcher={"MaxItemsPerBatchPath": "$.per", "BatchInput": {"run.$": "$.run"}})
    r = await run(integrations, definition, {"per": 2, "run": "r1"})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [{"BatchInput": {"run": "r1"}, "Items": FACTS[:2]},
                        {"BatchInput": {"run": "r1"}, "Items": FACTS[2:]}]


async def test_item_batcher_bytes_limit_bounds_each_child_input(integrations):
    items = [{"k": "x" * 40} for _ in range(6)]  # 50 bytes each
    r = await run(integrations, dmap(None, ItemsPath="$.items", ItemBatcher={"MaxInputBytesPerBatch": 120}),
                  {"items": items})
    assert r.status == "SUCCEEDED", r.cause
    assert [len(b["Items"]) for b in r.output] == [2, 2, 2]
    assert all(len(json.dumps(b, separators=(",", ":"))) <= 120 for b in r.output)


# ============================================================================ ResultWriter


async def test_result_writer_layout_manifest_and_records(integrations, s3, bucket):
    definition = dmap(None, ItemsPath="$.items", Label="Orders",
                      ResultWriter={"Resource": PUT, "Parameters": {"Bucket": bucket, "Prefix": "jobs"}})
    r = await run(integrations, definition, {"items": [1, 2, 3]})
    assert r.status == "SUCCEEDED", r.cause
    assert list(r.output) == ["MapRunArn", "ResultWriterDetails"]
    m = MAP_RUN_ARN.match(r.output["MapRunArn"])
    assert m and m.group("label") == "Orders"
    folder = f"jobs/{m.group('id')}/"
    assert r.output["ResultWriterDetails"] == {"Bucket": bucket, "Key": folder + "manifest.json"}
    manifest = json.loads(body_of(s3, bucket, folder + "manifest.json"))
    succeeded = folder + "SUCCEEDED_0.json"
    assert manifest == {"DestinationBucket": bucket, "MapRunArn": r.output["MapRunArn"],
                        "ResultFiles": {"FAILED": [], "PENDING": [],
                                        "SUCCEEDED": [{"Key": succeeded, "Size": len(body_of(s3, bucket, succeeded))}]}}
    records = json.loads(body_of(s3, bucket, succeeded))
    assert sorted(json.loads(rec["Output"]) for rec in records) == [1, 2, 3]
    rec = records[0]
    assert list(rec) == sorted(rec)
    assert rec["Input"] == rec["Output"] and rec["Status"] == "SUCCEEDED"
    assert rec["InputDetails"] == rec["OutputDetails"] == {"Included": True}
    assert rec["RedriveStatus"] == "NOT_REDRIVABLE" and rec["RedriveCount"] == 0
    assert rec["StateMachineArn"] == "arn:aws:states:us-east-1:000000000000:stateMachine:machine/Orders"
    assert rec["ExecutionArn"].startswith("arn:aws:states:us-east-1:000000000000:express:machine/Orders:")
    assert rec["ExecutionArn"].endswith(":" + rec["Name"])


async def test_result_writer_tolerated_failures_go_to_the_failed_file(integrations, s3, bucket):
    items = [{"n": i, "fail": i in (1, 3)} for i in range(5)]
    definition = dmap(None, FAILING, ItemsPath="$.items", ToleratedFailureCount=2,
                      ResultWriter={"Resource": PUT, "Parameters": {"Bucket": bucket, "Prefix": "out/"},
                                    "WriterConfig": {"Transformation": "COMPACT", "OutputType": "JSONL"}})
    r = await run(integrations, definition, {"items": items})
    assert r.status == "SUCCEEDED", r.cause
    manifest = json.loads(body_of(s3, bucket, r.output["ResultWriterDetails"]["Key"]))
    assert manifest["ResultFiles"]["PENDING"] == []
    [ok], [failed] = manifest["ResultFiles"]["SUCCEEDED"], manifest["ResultFiles"]["FAILED"]
    assert re.fullmatch(r"out/[0-9a-f-]{36}/SUCCEEDED_0\.json", ok["Key"])
    outputs = [json.loads(line) for line in body_of(s3, bucket, ok["Key"]).splitlines()]  # COMPACT, JSON Lines
    assert sorted(o["n"] for o in outputs) == [0, 2, 4]
    failures = [json.loads(line) for line in body_of(s3, bucket, failed["Key"]).splitlines()]
    assert sorted(json.loads(f["Input"])["n"] for f in failures) == [1, 3]
    assert {(f["Status"], f["Error"], f["Cause"]) for f in failures} == {("FAILED", "Boom", "a bad item")}


async def test_result_writer_parts_split_and_flatten(integrations, s3, bucket, monkeypatch):
    monkeypatch.setattr(s3_map, "RESULT_PART_BYTES", 10)
    definition = dmap(None, {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "States.Array($, $)"},
                                                               "OutputPath": "$.v", "End": True}}},
                      ItemsPath="$.items", MaxConcurrency=1,
                      ResultWriter={"Resource": PUT, "Parameters": {"Bucket": bucket, "Prefix": ""},
                                    "WriterConfig": {"Transformation": "FLATTEN", "OutputType": "JSON"}})
    r = await run(integrations, definition, {"items": list(range(8))})
    assert r.status == "SUCCEEDED", r.cause
    key = r.output["ResultWriterDetails"]["Key"]
    assert re.fullmatch(r"[0-9a-f-]{36}/manifest\.json", key)  # no prefix: the run's folder at the top
    parts = json.loads(body_of(s3, bucket, key))["ResultFiles"]["SUCCEEDED"]
    assert [p["Key"].rsplit("/", 1)[1] for p in parts] == [f"SUCCEEDED_{i}.json" for i in range(len(parts))]
    assert len(parts) > 1
    values = [v for p in parts for v in json.loads(body_of(s3, bucket, p["Key"]))]
    assert values == [i for i in range(8) for _ in (0, 1)]


async def test_result_writer_s3_failure_is_result_writer_failed(integrations, bucket):
    definition = dmap(None, ItemsPath="$.items",
                      ResultWriter={"Resource": PUT, "Parameters": {"Bucket": f"no-such-{bucket}", "Prefix": "p"}})
    r = await run(integrations, definition, {"items": [1]})
    assert (r.status, r.error) == ("FAILED", "States.ResultWriterFailed")
    assert "(Service: S3, Status Code: 404" in r.cause


# ============================================================================ the Map Run


async def test_failures_beyond_tolerance_fail_the_map_run(integrations, s3, bucket):
    items = [{"n": i, "fail": i < 3} for i in range(4)]
    definition = dmap(None, FAILING, ItemsPath="$.items", ToleratedFailurePercentage=50, MaxConcurrency=1,
                      ResultWriter={"Resource": PUT, "Parameters": {"Bucket": bucket, "Prefix": "p"}})
    r = await run(integrations, definition, {"items": items})
    assert (r.status, r.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert r.cause == "The specified tolerated failure threshold was exceeded"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="p/").get("Contents") or []
    assert any(o["Key"].endswith("/manifest.json") for o in listed)  # the results are written even so
    # no tolerance declared: the child's own failure fails the Map, as an inline Map's does
    s3.put_object(Bucket=bucket, Key="items.jsonl", Body="\n".join(json.dumps(i) for i in items).encode())
    r = await run(integrations, dmap(get_object(bucket, "items.jsonl", InputType="JSONL"), FAILING))
    assert (r.status, r.error, r.cause) == ("FAILED", "Boom", "a bad item")


async def test_tolerated_failures_leave_null_results_in_the_output(integrations, s3, bucket):
    lines = "\n".join(json.dumps({"n": i, "fail": i == 1}) for i in range(3))
    s3.put_object(Bucket=bucket, Key="items.jsonl", Body=lines.encode())
    r = await run(integrations, dmap(get_object(bucket, "items.jsonl", InputType="JSONL"), FAILING,
                                     ToleratedFailureCount=1))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [{"n": 0, "fail": False}, None, {"n": 2, "fail": False}]


async def test_children_in_flight_never_exceed_max_concurrency(integrations, s3, bucket):
    s3.put_object(Bucket=bucket, Key="items.jsonl", Body="\n".join(str(i) for i in range(30)).encode())
    running, peak = 0, 0

    async def work(event: Any) -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(3):
            await asyncio.sleep(0)
        running -= 1
        return event

    processor = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "work", "End": True}}}
    r = await run(integrations, dmap(get_object(bucket, "items.jsonl", InputType="JSONL"), processor,
                                     MaxConcurrency=3), functions={"work": work})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == list(range(30))
    assert 1 < peak <= 3


async def test_results_beyond_the_payload_limit_fail_without_a_result_writer(integrations):
    big = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "x" * 2000, "End": True}}}
    definition = dmap(None, big, ItemsPath="$.items", ItemBatcher={"MaxItemsPerBatch": 1})
    r = await run(integrations, definition, {"items": list(range(200))})  # 400 KB of results
    assert (r.status, r.error) == ("FAILED", "States.DataLimitExceeded")
    r = await run(integrations, definition, {"items": list(range(100))})
    assert r.status == "SUCCEEDED" and len(r.output) == 100


async def test_engine_without_integrations_cannot_read_or_write(s3, bucket):
    engine = Engine(clock=VirtualClock(), integrations=False)
    r = await engine.compile(dmap(get_object(bucket, "k.json", InputType="JSON"))).execute({})
    assert r.error == "States.ItemReaderFailed" and GET in r.cause
    r = await engine.compile(dmap(None, ResultWriter={"Resource": PUT, "Parameters": {"Bucket": bucket}})).execute([1])
    assert r.error == "States.ResultWriterFailed" and PUT in r.cause


def test_reader_configuration_aws_refuses_is_a_definition_problem():
    import express

    engine = Engine(integrations=Integrations())
    with pytest.raises(express.DefinitionError) as e:
        engine.compile(dmap({"Resource": GET, "ReaderConfig": {"InputType": "CSV", "CSVDelimiter": "COLON"},
                             "Parameters": {"Bucket": "b", "Key": "k"}}))
    assert any(p.pointer == "/States/M/ItemReader/ReaderConfig" and "CSVDelimiter" in p.message
               for p in e.value.problems)
