"""What an ASL definition may hold: the fields of each of its parts, the limits on their values,
the Choice Rule operators. Read by the validator (:mod:`express.asl.validation`)."""
from __future__ import annotations

MAX_STATE_NAME = 80
MAX_VARIABLE_NAME = 80
MAX_LABEL = 40
MAX_RETRY_SECONDS = 99_999_999
MAX_DELAY_SECONDS = 31_622_400

STATE_TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
AWS_STATE_TYPE_ORDER = ("Task", "Wait", "Pass", "Succeed", "Fail", "Choice", "Parallel", "Map")

# Fields only meaningful under one query language.
JSONPATH_ONLY = frozenset({
    "InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath", "ItemsPath",
    "SecondsPath", "TimestampPath", "ErrorPath", "CausePath", "TimeoutSecondsPath",
    "HeartbeatSecondsPath", "MaxConcurrencyPath", "ToleratedFailurePercentagePath",
    "ToleratedFailureCountPath",
})
JSONATA_ONLY = frozenset({"Arguments", "Output", "Items"})

_COMMON = {"Type", "Comment", "QueryLanguage"}
_IO = {"InputPath", "OutputPath", "Output"}
_TRANS = {"Next", "End"}
_ERR = {"Retry", "Catch"}
STATE_FIELDS: dict[str, frozenset[str]] = {
    "Task": frozenset(_COMMON | _IO | _TRANS | _ERR | {
        "Resource", "Parameters", "ResultSelector", "ResultPath", "Arguments", "Assign",
        "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath",
        "Credentials"}),
    "Pass": frozenset(_COMMON | _IO | _TRANS | {"Result", "Parameters", "ResultPath", "Assign"}),
    "Choice": frozenset(_COMMON | _IO | {"Choices", "Default", "Assign"}),
    "Wait": frozenset(_COMMON | _IO | _TRANS | {
        "Seconds", "Timestamp", "SecondsPath", "TimestampPath", "Assign"}),
    "Succeed": frozenset(_COMMON | _IO),
    "Fail": frozenset(_COMMON | {"Error", "Cause", "ErrorPath", "CausePath"}),
    "Parallel": frozenset(_COMMON | _IO | _TRANS | _ERR | {
        "Branches", "Parameters", "ResultSelector", "ResultPath", "Arguments", "Assign"}),
    "Map": frozenset(_COMMON | _IO | _TRANS | _ERR | {
        "ItemProcessor", "Iterator", "ItemsPath", "Items", "ItemSelector", "Parameters",
        "ItemReader", "ItemBatcher", "ResultWriter", "MaxConcurrency", "MaxConcurrencyPath",
        "ToleratedFailurePercentage", "ToleratedFailurePercentagePath", "ToleratedFailureCount",
        "ToleratedFailureCountPath", "Label", "ResultSelector", "ResultPath", "Assign"}),
}
ALL_STATE_FIELDS = frozenset().union(*STATE_FIELDS.values())

TOP_FIELDS = frozenset({"States", "StartAt", "Comment", "Version", "TimeoutSeconds", "QueryLanguage"})
BRANCH_FIELDS = frozenset({"States", "StartAt", "Comment"})
PROCESSOR_FIELDS = frozenset({"States", "StartAt", "Comment", "ProcessorConfig"})

RETRY_FIELDS = frozenset({
    "ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds",
    "JitterStrategy", "Comment"})
CATCH_FIELDS = frozenset({"ErrorEquals", "Next", "ResultPath", "Output", "Assign", "Comment"})

STRING_OPS = ("StringEquals", "StringLessThan", "StringGreaterThan", "StringLessThanEquals",
              "StringGreaterThanEquals")
NUMERIC_OPS = ("NumericEquals", "NumericLessThan", "NumericGreaterThan", "NumericLessThanEquals",
               "NumericGreaterThanEquals")
TIMESTAMP_OPS = ("TimestampEquals", "TimestampLessThan", "TimestampGreaterThan",
                 "TimestampLessThanEquals", "TimestampGreaterThanEquals")
TYPE_OPS = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")
# operator -> expected value kind
COMPARISON_OPS: dict[str, str] = {}
for _op in STRING_OPS:
    COMPARISON_OPS[_op] = "string"
    COMPARISON_OPS[_op + "Path"] = "path"
COMPARISON_OPS["StringMatches"] = "string"
for _op in NUMERIC_OPS:
    COMPARISON_OPS[_op] = "number"
    COMPARISON_OPS[_op + "Path"] = "path"
COMPARISON_OPS["BooleanEquals"] = "boolean"
COMPARISON_OPS["BooleanEqualsPath"] = "path"
for _op in TIMESTAMP_OPS:
    COMPARISON_OPS[_op] = "timestamp"
    COMPARISON_OPS[_op + "Path"] = "path"
for _op in TYPE_OPS:
    COMPARISON_OPS[_op] = "boolean"
BOOLEAN_OPS = ("And", "Or", "Not")
JSONPATH_RULE_FIELDS = frozenset({"Variable", "Comment", *COMPARISON_OPS, *BOOLEAN_OPS})
JSONATA_RULE_FIELDS = frozenset({"Condition", "Next", "Assign", "Output", "Comment"})

ITEM_READER_FIELDS = frozenset({"Resource", "Parameters", "Arguments", "ReaderConfig"})
RESULT_WRITER_FIELDS = frozenset({"Resource", "Parameters", "Arguments", "WriterConfig"})
ITEM_BATCHER_FIELDS = frozenset({
    "MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch",
    "MaxInputBytesPerBatchPath", "BatchInput"})

# State fields whose values are never JSONata (nested blocks are checked in their own language).
NOT_JSONATA_VALUES = frozenset({
    "Type", "Comment", "QueryLanguage", "Next", "End", "Default", "Resource",
    "ItemProcessor", "Iterator", "Branches", "Result"})
