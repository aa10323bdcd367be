"""Helpers of the AWS integration tests: unique resource names, boto3 clients on the moto server, Task states."""
from __future__ import annotations

import uuid
from typing import Any

import boto3


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def boto(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def task(resource: str, parameters: Any = None, **fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": resource, **fields}
    if parameters is not None:
        state["Parameters"] = parameters
    if "Next" not in state:
        state["End"] = True
    return state
