"""The fields of each state type (Task, Pass, Succeed, Fail, Wait, Choice, Parallel, Map) and of
its Retry and Catch lists: :class:`StateRules`, which the definition walk of
:mod:`express.asl.validation` calls as ``state_<type>`` for every state."""
from __future__ import annotations

import re
from collections.abc import Iterator

from express.asl.definition_fields import (
    BOOLEAN_OPS,
    BRANCH_FIELDS,
    CATCH_FIELDS,
    COMPARISON_OPS,
    ITEM_BATCHER_FIELDS,
    ITEM_READER_FIELDS,
    JSONATA_RULE_FIELDS,
    JSONPATH_RULE_FIELDS,
    MAX_DELAY_SECONDS,
    MAX_LABEL,
    MAX_RETRY_SECONDS,
    PROCESSOR_FIELDS,
    RESULT_WRITER_FIELDS,
    RETRY_FIELDS,
)
from express.asl.errors import ALL
from express.asl.field_checks import SCHEMA, FieldChecks, is_int, is_number, pointer
from express.asl.payload import json_type
from express.asl.query_language import JSONATA, JSONPATH, is_jsonata
from express.asl.timestamps import parse_timestamp

RFC3339_MESSAGE = "String does not match RFC3339 timestamp"

_ACTIVITY_ARN = re.compile(r"^arn:[^:]+:states:[^:]*:[^:]*:activity:")
_LABEL_BAD = re.compile(r"[\s?*<>{}\[\]:;,\\|^~$#%&`\"]|[\x00-\x1f\x7f-\x9f]")


class StateRules(FieldChecks):
    def block(self, d: dict, ptr: str) -> None:
        """A ``{StartAt, States}`` container (a branch, an item processor): the definition walk."""
        raise NotImplementedError

    def state_task(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        if self.require(s, "Resource", p) and self.expect_string(s, "Resource", p):
            res = s["Resource"]
            rp = pointer(p, "Resource")
            if res.endswith(".sync") or res.endswith(".sync:2"):
                self.add(rp, SCHEMA,
                         "Express state machine does not support '.sync' service integration")
            elif res.endswith(".waitForTaskToken"):
                # sic: AWS's message ends with a space
                self.add(rp, SCHEMA, "Express state machine does not support "
                                     "'.waitForTaskToken' service integration ")
            elif _ACTIVITY_ARN.match(res):
                self.add(rp, SCHEMA, "Express state machine does not support Activity ARN")
        self.exclusive(s, "TimeoutSeconds", "TimeoutSecondsPath", p)
        self.exclusive(s, "HeartbeatSeconds", "HeartbeatSecondsPath", p)
        self.expect_int(s, "TimeoutSeconds", p, lo=1, hi=MAX_RETRY_SECONDS, jsonata=lang == JSONATA)
        self.expect_int(s, "HeartbeatSeconds", p, lo=1, hi=MAX_RETRY_SECONDS,
                        jsonata=lang == JSONATA)
        if lang == JSONPATH:
            self.path(s, "TimeoutSecondsPath", p, reference=True)
            self.path(s, "HeartbeatSecondsPath", p, reference=True)
        t, h = s.get("TimeoutSeconds"), s.get("HeartbeatSeconds")
        if isinstance(t, int) and isinstance(h, int) and is_int(t) and is_int(h) and h >= t:
            self.add(pointer(p, "HeartbeatSeconds"), SCHEMA,
                     "The value for the field 'HeartbeatSeconds' must be smaller than the value "
                     "for the field 'TimeoutSeconds'")
        if "Credentials" in s:
            self.template_field(s, "Credentials", p, lang)
            cred = s["Credentials"]
            if isinstance(cred, dict) and "RoleArn" not in cred and (
                    lang == JSONATA or "RoleArn.$" not in cred):
                self.add(pointer(p, "Credentials"), SCHEMA, "The field 'RoleArn' is required but was missing")

    def state_pass(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        pass  # Result is any JSON; Parameters/ResultPath checked in common I/O

    def state_succeed(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        pass

    def state_fail(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        self.exclusive(s, "Error", "ErrorPath", p)
        self.exclusive(s, "Cause", "CausePath", p)
        for f in ("Error", "Cause"):
            if f in s:
                self.expect_string(s, f, p)
        if lang == JSONPATH:
            self.path(s, "ErrorPath", p, reference=True, intrinsic=True)
            self.path(s, "CausePath", p, reference=True, intrinsic=True)

    def state_wait(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        present = [f for f in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if f in s]
        if len(present) != 1:
            self.add(p, SCHEMA, "Exactly one of 'Seconds', 'Timestamp', 'SecondsPath' or "
                                "'TimestampPath' is required" +
                     (f", got {', '.join(present)}" if present else ""))
        jsonata = lang == JSONATA
        self.expect_int(s, "Seconds", p, lo=0, hi=MAX_RETRY_SECONDS, jsonata=jsonata)
        if "Timestamp" in s:
            v = s["Timestamp"]
            if not (jsonata and is_jsonata(v)) and parse_timestamp(v) is None:
                self.add(pointer(p, "Timestamp"), SCHEMA, RFC3339_MESSAGE)
        if lang == JSONPATH:
            self.path(s, "SecondsPath", p, reference=True)
            self.path(s, "TimestampPath", p, reference=True)

    # --- Choice ---

    def state_choice(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        self.target(s, "Default", p, states, targets)
        for rule, rp in self.objects(s, "Choices", p, "A Choice Rule"):
            if self.require(rule, "Next", rp):
                self.target(rule, "Next", rp, states, targets)
            if lang == JSONATA:
                self.jsonata_rule(rule, rp)
            else:
                self.unknown_fields(
                    {k: v for k, v in rule.items() if k not in ("Next", "Assign")},
                    JSONPATH_RULE_FIELDS | {"Condition", "Output"}, rp)
                for k in ("Condition", "Output"):
                    if k in rule:
                        self.add(rp, SCHEMA, f"The QueryLanguage is set to 'JSONPath', but field "
                                             f"'{k}' is only supported for the 'JSONata' "
                                             f"QueryLanguage")
                self.jsonpath_rule(rule, rp, nested=False)
            self.assign(rule, rp, lang)

    def jsonata_rule(self, rule: dict, rp: str) -> None:
        for k in rule:
            if k not in JSONATA_RULE_FIELDS:
                if k in JSONPATH_RULE_FIELDS:
                    self.add(rp, SCHEMA, f"The QueryLanguage is set to 'JSONata', but field '{k}' "
                                         f"is only supported for the 'JSONPath' QueryLanguage")
                else:
                    self.add(rp, SCHEMA, f'The field "{k}" is not supported by Step Functions')
        if self.require(rule, "Condition", rp):
            c = rule["Condition"]
            if not isinstance(c, bool) and not is_jsonata(c):
                self.add(pointer(rp, "Condition"), SCHEMA,
                         "The value for the field 'Condition' must be a BOOLEAN or a JSONata "
                         "expression enclosed in {% %}")

    def jsonpath_rule(self, rule: dict, rp: str, nested: bool) -> None:
        """A JSONPath Choice Rule: a boolean expression or a data-test expression."""
        stack = [(rule, rp, nested)]
        while stack:
            r, p, inner = stack.pop()
            if inner:
                for k in r:
                    if k in ("Next", "Assign"):
                        self.add(p, SCHEMA, f"Field '{k}' is not supported in a nested Choice Rule")
                    elif k not in JSONPATH_RULE_FIELDS:
                        self.add(p, SCHEMA, f'The field "{k}" is not supported by Step Functions')
            ops = [k for k in r if k in COMPARISON_OPS]
            bools = [k for k in r if k in BOOLEAN_OPS]
            if len(ops) + len(bools) != 1:
                if ops or bools:
                    self.add(p, SCHEMA, "A Choice Rule must have exactly one comparison operator "
                                        f"or boolean operator, got {', '.join(bools + ops)}")
                else:
                    self.add(p, SCHEMA, "A Choice Rule must have a comparison operator "
                                        "or a boolean operator (And, Or, Not)")
            if bools:
                if "Variable" in r:
                    self.add(p, SCHEMA, "Field 'Variable' is not supported with "
                                        f"'{bools[0]}'")
                for b in bools:
                    v = r[b]
                    bp = pointer(p, b)
                    if b == "Not":
                        if isinstance(v, dict):
                            stack.append((v, bp, True))
                        else:
                            self.add(bp, SCHEMA, f"The value for the field 'Not' must be an "
                                                 f"OBJECT, got {json_type(v)}")
                    elif not isinstance(v, list) or not v:
                        self.add(bp, SCHEMA, f"The value for the field '{b}' must be a "
                                             f"non-empty ARRAY")
                    else:
                        for j, sub in enumerate(v):
                            if isinstance(sub, dict):
                                stack.append((sub, pointer(bp, j), True))
                            else:
                                self.add(pointer(bp, j), SCHEMA, f"A Choice Rule must be a JSON "
                                                              f"object, got {json_type(sub)}")
            elif ops:
                if self.require(r, "Variable", p):
                    self.path(r, "Variable", p)
                for op in ops:
                    self.operator_value(r, op, p)
            elif "Variable" in r:
                self.path(r, "Variable", p)

    def operator_value(self, r: dict, op: str, p: str) -> None:
        kind = COMPARISON_OPS[op]
        v = r[op]
        ok = {
            "string": isinstance(v, str),
            "number": is_number(v),
            "boolean": isinstance(v, bool),
            "timestamp": isinstance(v, str),
            "path": isinstance(v, str),
        }[kind]
        if not ok:
            want = {"string": "a STRING", "number": "a NUMBER", "boolean": "a BOOLEAN",
                    "timestamp": "a STRING", "path": "a STRING"}[kind]
            self.add(pointer(p, op), SCHEMA,
                     f"The value for the field '{op}' must be {want}, got {json_type(v)}")
            return
        if kind == "path":
            self.path(r, op, p)
        elif kind == "timestamp" and parse_timestamp(v) is None:
            self.add(pointer(p, op), SCHEMA, RFC3339_MESSAGE)

    # --- Parallel / Map ---

    def state_parallel(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        if lang == JSONATA:
            self.template_field(s, "Arguments", p, lang, object_only=False)
        for b, ip in self.objects(s, "Branches", p, "A branch"):
            self.nested_block(b, ip, BRANCH_FIELDS)

    def objects(self, s: dict, field: str, p: str, what: str) -> Iterator[tuple[dict, str]]:
        """The objects of a required, non-empty array field (``Choices``, ``Branches``), each with
        its pointer; the field, or an item, that is not one is reported (in document order)."""
        if not self.require(s, field, p):
            return
        items, fp = s[field], pointer(p, field)
        if not isinstance(items, list) or not items:
            self.add(fp, SCHEMA, f"The value for the field '{field}' must be a non-empty ARRAY")
            return
        for i, item in enumerate(items):
            if isinstance(item, dict):
                yield item, pointer(fp, i)
            else:
                self.add(pointer(fp, i), SCHEMA, f"{what} must be a JSON object, got {json_type(item)}")

    def nested_block(self, b: dict, ptr: str, allowed: frozenset[str]) -> None:
        for k in b:
            if k not in allowed:
                if k == "QueryLanguage":
                    self.add(ptr, SCHEMA, "Field 'QueryLanguage' is not supported")
                else:
                    self.add(ptr, SCHEMA, f'The field "{k}" is not supported by Step Functions')
        if "Comment" in b:
            self.expect_string(b, "Comment", ptr)
        self.block(b, ptr)

    def state_map(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        jsonata = lang == JSONATA
        has_proc, has_iter = "ItemProcessor" in s, "Iterator" in s
        if has_proc and has_iter:
            self.add(p, SCHEMA, "Fields 'ItemProcessor' and 'Iterator' are mutually exclusive")
        elif not has_proc and not has_iter:
            self.add(p, SCHEMA, "Field 'ItemProcessor' is required")
        for f in ("ItemProcessor", "Iterator"):
            if f not in s:
                continue
            proc, pp = s[f], pointer(p, f)
            if not isinstance(proc, dict):
                self.add(pp, SCHEMA, f"The value for the field '{f}' must be an OBJECT, "
                                     f"got {json_type(proc)}")
                continue
            self.nested_block(proc, pp, PROCESSOR_FIELDS)
            cfg = proc.get("ProcessorConfig")
            if cfg is not None:
                cp = pointer(pp, "ProcessorConfig")
                if not isinstance(cfg, dict):
                    self.add(cp, SCHEMA, "The value for the field 'ProcessorConfig' must be an "
                                         f"OBJECT, got {json_type(cfg)}")
                else:
                    self.unknown_fields(cfg, frozenset({"Mode", "ExecutionType"}), cp)
                    self.expect_enum(cfg, "Mode", cp, ("INLINE", "DISTRIBUTED"))
                    self.expect_enum(cfg, "ExecutionType", cp, ("STANDARD", "EXPRESS"))
        self.exclusive(s, "ItemSelector", "Parameters", p)
        self.template_field(s, "ItemSelector", p, lang)
        if jsonata and "Items" in s:
            v = s["Items"]
            if not isinstance(v, list) and not is_jsonata(v):
                self.add(pointer(p, "Items"), SCHEMA, "The value for the field 'Items' must be an "
                                                   "ARRAY or a JSONata expression")
        if not jsonata:
            self.path(s, "ItemsPath", p, reference=True, nullable=True)
            for f in ("MaxConcurrencyPath", "ToleratedFailurePercentagePath",
                      "ToleratedFailureCountPath"):
                self.path(s, f, p, reference=True)
        self.exclusive(s, "MaxConcurrency", "MaxConcurrencyPath", p)
        self.exclusive(s, "ToleratedFailurePercentage", "ToleratedFailurePercentagePath", p)
        self.exclusive(s, "ToleratedFailureCount", "ToleratedFailureCountPath", p)
        self.expect_int(s, "MaxConcurrency", p, lo=0, jsonata=jsonata)
        self.expect_number(s, "ToleratedFailurePercentage", p, lo=0, hi=100, jsonata=jsonata)
        self.expect_int(s, "ToleratedFailureCount", p, lo=0, jsonata=jsonata)
        if "Label" in s and self.expect_string(s, "Label", p):
            label = s["Label"]
            if len(label) > MAX_LABEL:
                self.add(pointer(p, "Label"), SCHEMA,
                         f"The value for the field 'Label' must be at most {MAX_LABEL} characters")
            elif _LABEL_BAD.search(label):
                self.add(pointer(p, "Label"), SCHEMA, "The value for the field 'Label' must not "
                                                   "contain whitespace or special characters")
        for f, fields in (("ItemReader", ITEM_READER_FIELDS), ("ResultWriter", RESULT_WRITER_FIELDS),
                          ("ItemBatcher", ITEM_BATCHER_FIELDS)):
            if f not in s:
                continue
            v, fp = s[f], pointer(p, f)
            if not isinstance(v, dict):
                self.add(fp, SCHEMA, f"The value for the field '{f}' must be an OBJECT, "
                                     f"got {json_type(v)}")
                continue
            self.unknown_fields(v, fields, fp)
            if f != "ItemBatcher":
                # a ResultWriter with only WriterConfig shapes the state's output and exports nothing
                if f == "ResultWriter" and "Resource" not in v and "WriterConfig" in v:
                    pass
                elif self.require(v, "Resource", fp):
                    self.expect_string(v, "Resource", fp)
                if not jsonata:
                    self.template_field(v, "Parameters", fp, lang)
            elif not jsonata:
                self.template_field(v, "BatchInput", fp, lang)

    # --- Retry / Catch ---

    def error_equals(self, obj: dict, p: str, last: bool, what: str) -> list[str]:
        if not self.require(obj, "ErrorEquals", p):
            return []
        v = obj["ErrorEquals"]
        ep = pointer(p, "ErrorEquals")
        if not isinstance(v, list) or not v:
            self.add(ep, SCHEMA, "The value for the field 'ErrorEquals' must be a non-empty ARRAY")
            return []
        for j, e in enumerate(v):
            if not isinstance(e, str):
                self.add(pointer(ep, j), SCHEMA, f"The values in 'ErrorEquals' must be STRINGs, "
                                              f"got {json_type(e)}")
        if ALL in v:
            if len(v) != 1:
                self.add(ep, SCHEMA, f"'{ALL}' must appear alone in 'ErrorEquals'")
            if not last:
                self.add(ep, SCHEMA, f"A {what} with '{ALL}' must be the last {what}")
        return v

    def retry(self, s: dict, p: str) -> None:
        if "Retry" not in s:
            return
        rs, rp = s["Retry"], pointer(p, "Retry")
        if not isinstance(rs, list):
            self.add(rp, SCHEMA, f"The value for the field 'Retry' must be an ARRAY, "
                                 f"got {json_type(rs)}")
            return
        for i, r in enumerate(rs):
            ip = pointer(rp, i)
            if not isinstance(r, dict):
                self.add(ip, SCHEMA, f"A Retrier must be a JSON object, got {json_type(r)}")
                continue
            self.unknown_fields(r, RETRY_FIELDS, ip)
            self.error_equals(r, ip, i == len(rs) - 1, "Retrier")
            self.expect_int(r, "IntervalSeconds", ip, lo=1, hi=MAX_RETRY_SECONDS)
            self.expect_int(r, "MaxAttempts", ip, lo=0, hi=MAX_RETRY_SECONDS)
            self.expect_number(r, "BackoffRate", ip, lo=1.0)
            self.expect_int(r, "MaxDelaySeconds", ip, lo=1, hi=MAX_DELAY_SECONDS)
            self.expect_enum(r, "JitterStrategy", ip, ("FULL", "NONE"))
            if "Comment" in r:
                self.expect_string(r, "Comment", ip)

    def catch(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        if "Catch" not in s:
            return
        cs, cp = s["Catch"], pointer(p, "Catch")
        if not isinstance(cs, list):
            self.add(cp, SCHEMA, f"The value for the field 'Catch' must be an ARRAY, "
                                 f"got {json_type(cs)}")
            return
        for i, c in enumerate(cs):
            ip = pointer(cp, i)
            if not isinstance(c, dict):
                self.add(ip, SCHEMA, f"A Catcher must be a JSON object, got {json_type(c)}")
                continue
            for k in c:
                if k not in CATCH_FIELDS:
                    self.add(ip, SCHEMA, f'The field "{k}" is not supported by Step Functions')
                elif lang == JSONPATH and k == "Output":
                    self.add(ip, SCHEMA, "The QueryLanguage is set to 'JSONPath', but field "
                                         "'Output' is only supported for the 'JSONata' QueryLanguage")
                elif lang == JSONATA and k == "ResultPath":
                    self.add(ip, SCHEMA, "The QueryLanguage is set to 'JSONata', but field "
                                         "'ResultPath' is only supported for the 'JSONPath' "
                                         "QueryLanguage")
            self.error_equals(c, ip, i == len(cs) - 1, "Catcher")
            if self.require(c, "Next", ip):
                self.target(c, "Next", ip, states, targets)
            if lang == JSONPATH and "ResultPath" in c:
                self.result_path(c, ip)
            self.assign(c, ip, lang)
            if "Comment" in c:
                self.expect_string(c, "Comment", ip)

