"""DescribeStateMachine as AWS answers it (revisionId, encryptionConfiguration, variableReferences,
includedData), and the CreateStateMachine / UpdateStateMachine fields it reports, through boto3."""
from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from httpsupport import PASS, ServerThread, arn, server_fixture, sfn_fixture  # noqa: F401 - fixtures

ROLE = "arn:aws:iam::000000000000:role/r"
# the fields AWS returns for a machine created with only name, definition and roleArn
BASE_FIELDS = {"stateMachineArn", "name", "status", "definition", "roleArn", "type", "creationDate",
               "loggingConfiguration", "tracingConfiguration", "encryptionConfiguration"}
WITH_VARIABLES = {"StartAt": "Set", "States": {
    "Set": {"Type": "Pass", "Assign": {"waitTime": 0, "greeting": "hi"}, "Next": "Wait"},
    "Wait": {"Type": "Wait", "SecondsPath": "$waitTime", "Next": "Each"},
    "Each": {"Type": "Map", "ItemsPath": "$.items", "End": True,
             "ItemSelector": {"text.$": "States.Format('{} {}', $greeting, $$.Map.Item.Value)"},
             "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Inner",
                               "States": {"Inner": {"Type": "Pass", "Parameters": {"g.$": "$greeting"},
                                                    "End": True}}}}}}
CMK = {"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": "arn:aws:kms:us-east-1:000000000000:key/1234",
       "kmsDataKeyReusePeriodSeconds": 120}


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def fields(d: dict[str, Any]) -> set[str]:
    return set(d) - {"ResponseMetadata"}


def create(sfn: Any, name: str, definition: Any = PASS, **kw: Any) -> str:
    kw.setdefault("roleArn", ROLE)
    return str(sfn.create_state_machine(name=name, definition=json.dumps(definition), **kw)["stateMachineArn"])


def test_fresh_machine_has_no_revision_and_the_default_encryption(sfn: Any) -> None:
    d = sfn.describe_state_machine(stateMachineArn=create(sfn, "fresh"))
    assert fields(d) == BASE_FIELDS  # no revisionId until an update, no variableReferences without variables
    assert d["encryptionConfiguration"] == {"type": "AWS_OWNED_KEY"}
    assert d["type"] == "STANDARD" and d["tracingConfiguration"] == {"enabled": False}
    # a machine of the config directory is described the same way
    assert fields(sfn.describe_state_machine(stateMachineArn=arn("pass"))) == BASE_FIELDS


def test_revision_id_appears_with_the_first_change_and_stays_for_the_same_update(sfn: Any) -> None:
    machine = create(sfn, "revised")
    unchanged = sfn.update_state_machine(stateMachineArn=machine, roleArn=ROLE)  # nothing changes
    assert "revisionId" not in unchanged and unchanged["updateDate"]
    assert "revisionId" not in sfn.describe_state_machine(stateMachineArn=machine)

    other_role = "arn:aws:iam::000000000000:role/other"
    r1 = sfn.update_state_machine(stateMachineArn=machine, roleArn=other_role)["revisionId"]
    d1 = sfn.describe_state_machine(stateMachineArn=machine)
    assert d1["revisionId"] == r1 and d1["roleArn"] == other_role
    # the same parameters again: AWS answers the current revision and makes no new one
    assert sfn.update_state_machine(stateMachineArn=machine, roleArn=other_role)["revisionId"] == r1
    same_text = json.dumps(PASS, indent=2)  # another text of the same definition is no change either
    assert sfn.update_state_machine(stateMachineArn=machine, definition=same_text)["revisionId"] == r1

    new_def = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 2, "End": True}}}
    r2 = sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps(new_def))["revisionId"]
    assert r2 != r1 and sfn.describe_state_machine(stateMachineArn=machine)["revisionId"] == r2
    r3 = sfn.update_state_machine(stateMachineArn=machine, tracingConfiguration={"enabled": True})["revisionId"]
    assert r3 not in (r1, r2)


def test_variable_references_of_create_and_update(sfn: Any) -> None:
    machine = create(sfn, "vars", WITH_VARIABLES)
    d = sfn.describe_state_machine(stateMachineArn=machine)
    assert d["variableReferences"] == {"Wait": ["waitTime"], "Each": ["greeting"], "Inner": ["greeting"]}
    sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps(PASS))
    assert "variableReferences" not in sfn.describe_state_machine(stateMachineArn=machine)
    jsonata = {"QueryLanguage": "JSONata", "StartAt": "J", "States": {
        "J": {"Type": "Pass", "Output": "{% $sum($prices) + $states.input.x %}", "End": True}}}
    sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps(jsonata))
    assert sfn.describe_state_machine(stateMachineArn=machine)["variableReferences"] == {"J": ["prices"]}


def test_metadata_only_leaves_out_the_definition_and_what_comes_from_it(sfn: Any) -> None:
    machine = create(sfn, "secret", WITH_VARIABLES, encryptionConfiguration=CMK)
    d = sfn.describe_state_machine(stateMachineArn=machine, includedData="METADATA_ONLY")
    assert d["definition"] == "{}" and "variableReferences" not in d
    assert d["encryptionConfiguration"] == CMK and d["name"] == "secret"
    full = sfn.describe_state_machine(stateMachineArn=machine, includedData="ALL_DATA")
    assert json.loads(full["definition"]) == WITH_VARIABLES and full["variableReferences"]


def test_encryption_configuration_is_kept_and_updated(sfn: Any) -> None:
    machine = create(sfn, "encrypted", encryptionConfiguration=CMK)
    assert sfn.describe_state_machine(stateMachineArn=machine)["encryptionConfiguration"] == CMK
    # the same create again is idempotent; another encryption is another machine
    assert create(sfn, "encrypted", encryptionConfiguration=CMK) == machine
    with pytest.raises(ClientError) as exc:
        create(sfn, "encrypted")
    assert code_of(exc) == "StateMachineAlreadyExists"

    r1 = sfn.update_state_machine(stateMachineArn=machine, encryptionConfiguration={"type": "AWS_OWNED_KEY"})
    d = sfn.describe_state_machine(stateMachineArn=machine)
    assert d["encryptionConfiguration"] == {"type": "AWS_OWNED_KEY"} and d["revisionId"] == r1["revisionId"]
    sfn.update_state_machine(stateMachineArn=machine, roleArn="arn:aws:iam::000000000000:role/x")
    assert sfn.describe_state_machine(stateMachineArn=machine)["encryptionConfiguration"] == {"type": "AWS_OWNED_KEY"}


@pytest.mark.parametrize(("encryption", "code", "says"), [
    ({"type": "CUSTOMER_MANAGED_KMS_KEY"}, "InvalidEncryptionConfiguration", "kmsKeyId is required"),
    ({"type": "AWS_OWNED_KEY", "kmsKeyId": "alias/k"}, "InvalidEncryptionConfiguration", "only be set"),
    ({"type": "AWS_OWNED_KEY", "kmsDataKeyReusePeriodSeconds": 300}, "InvalidEncryptionConfiguration", "only be set"),
    ({"type": "OWN_KEY"}, "ValidationException", "'encryptionConfiguration.type' failed to satisfy constraint: "
                                                 "Member must satisfy enum value set"),
    ({"kmsKeyId": "alias/k"}, "ValidationException", "Value null at 'encryptionConfiguration.type'"),
    ({"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": "k", "kmsDataKeyReusePeriodSeconds": 30},
     "ValidationException", "Member must have value greater than or equal to 60"),
    ({"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": "k", "kmsDataKeyReusePeriodSeconds": 901},
     "ValidationException", "Member must have value less than or equal to 900"),
    ({"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": ""}, "ValidationException",
     "'encryptionConfiguration.kmsKeyId' failed to satisfy constraint: Member must have length greater than"),
    ({"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": "k", "kmsDataKeyReusePeriodSeconds": "60"},
     "SerializationException", "kmsDataKeyReusePeriodSeconds"),
])
def test_invalid_encryption_configuration(server: ServerThread, encryption: dict[str, Any], code: str,
                                          says: str) -> None:
    # raw requests: botocore would refuse some of these before sending them
    body = {"name": "bad-key", "definition": json.dumps(PASS), "roleArn": ROLE, "encryptionConfiguration": encryption}
    status, answer = server.api("CreateStateMachine", body)
    assert (status, answer["__type"]) == (400, code) and says in answer["message"]
    status, _ = server.api("DescribeStateMachine", {"stateMachineArn": arn("bad-key")})
    assert status == 400  # nothing was created
    status, answer = server.api("UpdateStateMachine", {"stateMachineArn": arn("pass"),
                                                       "encryptionConfiguration": encryption})
    assert (status, answer["__type"]) == (400, code)


def test_update_needs_something_to_change_and_version_description_needs_publish(sfn: Any) -> None:
    machine = create(sfn, "needs")
    with pytest.raises(ClientError) as exc:
        sfn.update_state_machine(stateMachineArn=machine)
    assert code_of(exc) == "MissingRequiredParameter"
    assert exc.value.response["Error"]["Message"] == ("Either the definition, the role ARN, the LoggingConfiguration, "
                                                      "or the TracingConfiguration must be specified")
    with pytest.raises(ClientError) as exc:
        create(sfn, "described", versionDescription="HelloWorld!")
    assert code_of(exc) == "ValidationException"
    assert exc.value.response["Error"]["Message"] == "Version description can only be set when publish is true"
    with pytest.raises(ClientError) as exc:
        sfn.update_state_machine(stateMachineArn=machine, roleArn=ROLE, versionDescription="v2")
    assert code_of(exc) == "ValidationException"
    assert create(sfn, "published", publish=True, versionDescription="HelloWorld!") == arn("published")
    assert fields(sfn.describe_state_machine(stateMachineArn=arn("published"))) == BASE_FIELDS
