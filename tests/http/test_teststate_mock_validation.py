"""mock.fieldValidationMode's checks of a mocked result against the service API's output shape
(AWS API reference: MockInput), on botocore's service models."""
from __future__ import annotations

import pytest

from express.http.mock_validation import MockResultInvalid, check, integration_of

PUT_ITEM = "arn:aws:states:::dynamodb:putItem"


def test_integrations_recognised() -> None:
    assert integration_of("arn:aws:states:::dynamodb:putItem") == ("dynamodb", "putItem", True)
    assert integration_of("arn:aws:states:::aws-sdk:s3:listBuckets") == ("s3", "listBuckets", False)
    # callbacks, activities and functions have no response shape to check against
    assert integration_of("arn:aws:states:::sqs:sendMessage.waitForTaskToken") is None
    assert integration_of("arn:aws:states:::states:startExecution.sync:2") is None
    assert integration_of("arn:aws:states:us-east-1:123456789012:activity:a") is None
    assert integration_of("arn:aws:lambda:us-east-1:123456789012:function:f") is None


async def test_modes() -> None:
    wrong = {"ConsumedCapacity": {"CapacityUnits": "2.5"}}
    for mode in ("STRICT", "PRESENT"):
        with pytest.raises(MockResultInvalid) as exc:
            await check(PUT_ITEM, wrong, mode)
        assert exc.value.message == "Mock result schema validation error: Field 'CapacityUnits' must be a number"
    await check(PUT_ITEM, wrong, "NONE")
    await check(PUT_ITEM, {"ConsumedCapacity": {"CapacityUnits": 2.5}, "NotInTheApi": "x"}, "STRICT")


async def test_nested_lists_and_maps() -> None:
    # s3 ListBuckets: Buckets is a list of structures with a string Name
    with pytest.raises(MockResultInvalid) as exc:
        await check("arn:aws:states:::aws-sdk:s3:listBuckets", {"Buckets": [{"Name": "a"}, {"Name": 1}]}, "PRESENT")
    assert exc.value.message.endswith("Field 'Name' must be a string")
    # dynamodb putItem: Attributes is a map of attribute values (structures)
    with pytest.raises(MockResultInvalid) as exc:
        await check(PUT_ITEM, {"Attributes": {"id": "not an attribute value"}}, "PRESENT")
    assert exc.value.message.endswith("Field 'Attributes' must be an object")
    await check(PUT_ITEM, {"Attributes": {"id": {"S": "1"}}}, "STRICT")


async def test_blob_is_text_in_aws_sdk_integrations() -> None:
    with pytest.raises(MockResultInvalid) as exc:
        await check("arn:aws:states:::aws-sdk:kms:encrypt", {"CiphertextBlob": ""}, "PRESENT")
    assert exc.value.message == ("Mock result schema validation error: Field 'CiphertextBlob' is smaller than the "
                                 "minimum length")
    await check("arn:aws:states:::aws-sdk:kms:encrypt", {"CiphertextBlob": "AQID"}, "PRESENT")


async def test_unknown_service_or_action_is_not_checked() -> None:
    await check("arn:aws:states:::nosuchservice:doThing", {"x": 1}, "STRICT")
    await check("arn:aws:states:::dynamodb:noSuchAction", {"x": 1}, "STRICT")
    await check("arn:aws:states:::http:invoke", {"ResponseBody": 1}, "STRICT")
