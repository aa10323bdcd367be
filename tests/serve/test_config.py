import pytest

from express.serve.config import ConfigError, load_settings


def write(tmp_path, text):
    (tmp_path / "express.toml").write_text(text)
    return tmp_path


def test_defaults_without_a_file(tmp_path):
    s = load_settings(tmp_path, env={})
    assert s.engine.max_duration_s == 300.0
    assert s.engine.max_payload_bytes == 262144
    assert s.kafka.bootstrap == ""
    assert s.kafka.max_in_flight == 10_000
    assert dict(s.bindings) == {}


def test_file_values_and_bindings(tmp_path):
    write(tmp_path, '[kafka]\nbootstrap = "k:9092"\nmax_in_flight = 5\n[bindings]\norders = "pipe"\n')
    s = load_settings(tmp_path, env={})
    assert s.kafka.bootstrap == "k:9092"
    assert s.kafka.max_in_flight == 5
    assert dict(s.bindings) == {"orders": "pipe"}


def test_environment_overrides_the_file(tmp_path):
    write(tmp_path, '[kafka]\nbootstrap = "k:9092"\n[http]\nport = 1\n')
    s = load_settings(tmp_path, env={"EXPRESS_KAFKA_BOOTSTRAP": "other:1", "EXPRESS_HTTP_PORT": "9000",
                                     "EXPRESS_ENGINE_VIRTUAL_TIME": "true"})
    assert s.kafka.bootstrap == "other:1"
    assert s.http.port == 9000
    assert s.engine.virtual_time is True


def test_settings_are_frozen(tmp_path):
    s = load_settings(tmp_path, env={})
    with pytest.raises(AttributeError):
        s.kafka.bootstrap = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.bindings["t"] = "m"  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[kafka]\nmax_in_flight = 'many'\n", "kafka.max_in_flight"),
        ("[kafka]\nbootstap = 'x'\n", "kafka.bootstap"),
        ("[nope]\n", "nope"),
        ("[http]\nport = 70000\n", "http.port"),
        ("[engine]\nmax_duration_s = -1\n", "engine.max_duration_s"),
        ("[bindings]\norders = 3\n", "bindings.orders"),
        ("[kafka\n", "(file)"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, key):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env={})
    assert e.value.key == key
    assert str(tmp_path / "express.toml") in str(e.value)


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env={"EXPRESS_HTTP_PORT": "eighty"})
    assert e.value.key == "EXPRESS_HTTP_PORT"


# ---------------------------------------------------------------- [connections.NAME]: the HTTP Task's connections
def test_connections_with_secrets_from_the_environment(tmp_path):
    write(tmp_path, '[connections.stripe]\nauthorization = "API_KEY"\napi_key_name = "Authorization"\n'
                    'api_key_value_env = "STRIPE_KEY"\n[connections.stripe.headers]\nX-Team = "payments"\n'
                    '[connections.stripe.query]\nmode = "live"\n'
                    '[connections.crm]\nauthorization = "BASIC"\nusername = "ann"\npassword_env = "CRM_PASSWORD"\n'
                    'arn = "arn:aws:events:eu-west-1:123456789012:connection/crm/5d1c0f5e"\n'
                    '[connections.idp]\nauthorization = "OAUTH_CLIENT_CREDENTIALS"\n'
                    'token_endpoint = "https://idp.example/token"\nclient_id = "cid"\nclient_secret_env = "IDP_SECRET"\n'
                    'scope = "read write"\n')
    s = load_settings(tmp_path, env={"STRIPE_KEY": "sk_live_1", "CRM_PASSWORD": "pw-2", "IDP_SECRET": "cs-3"})
    stripe, crm, idp = s.connections["stripe"], s.connections["crm"], s.connections["idp"]
    assert (stripe.authorization, stripe.api_key_name, stripe.api_key_value) == ("API_KEY", "Authorization", "sk_live_1")
    assert dict(stripe.headers) == {"X-Team": "payments"} and dict(stripe.query) == {"mode": "live"}
    assert stripe.arn.startswith("arn:aws:events:us-east-1:000000000000:connection/stripe/")
    assert (crm.username, crm.password, crm.arn) == ("ann", "pw-2", "arn:aws:events:eu-west-1:123456789012:connection/crm/5d1c0f5e")
    assert (idp.token_endpoint, idp.client_id, idp.client_secret, idp.scope) == (
        "https://idp.example/token", "cid", "cs-3", "read write")
    shown = repr(s)
    assert "sk_live_1" not in shown and "pw-2" not in shown and "cs-3" not in shown
    with pytest.raises(TypeError):
        s.connections["x"] = stripe  # type: ignore[index]


def test_connection_settings_overridden_by_the_environment(tmp_path):
    write(tmp_path, '[connections.my-api]\nauthorization = "BASIC"\nusername = "ann"\npassword_env = "PW"\n')
    s = load_settings(tmp_path, env={"PW": "x", "EXPRESS_CONNECTIONS_MY_API_USERNAME": "bob"})
    assert s.connections["my-api"].username == "bob"


def test_no_connections_by_default(tmp_path):
    assert dict(load_settings(tmp_path, env={}).connections) == {}


@pytest.mark.parametrize(
    ("text", "env", "key", "reason"),
    [
        ('[connections.a]\nauthorization = "API_KEY"\napi_key_name = "k"\napi_key_value_env = "MISSING"\n', {},
         "connections.a.api_key_value_env", "the environment variable MISSING is not set"),
        ('[connections.a]\nauthorization = "TOKEN"\n', {}, "connections.a.authorization",
         "must be one of API_KEY, BASIC, OAUTH_CLIENT_CREDENTIALS, got 'TOKEN'"),
        ('[connections.a]\nauthorization = "BASIC"\nusername = "u"\npassword = "literal"\n', {},
         "connections.a.password", None),
        ('[connections.a]\nauthorization = "BASIC"\nusername = "u"\n', {}, "connections.a.password_env",
         "required for authorization BASIC"),
        ('[connections.a]\nauthorization = "BASIC"\nusername = "u"\npassword_env = "P"\n'
         'arn = "arn:aws:events:us-east-1:123456789012:connection/b/1"\n', {"P": "p"}, "connections.a.arn", None),
        ('[connections.a]\nauthorization = "BASIC"\nusername = 3\npassword_env = "P"\n', {"P": "p"},
         "connections.a.username", "expected a string, got 3"),
        ('[connections.a]\nauthorization = "BASIC"\nusername = "u"\npassword_env = "P"\n[connections.a.headers]\n'
         'X = 1\n', {"P": "p"}, "connections.a.headers.X", "expected a string, got 1"),
        ('connections = "x"\n', {}, "connections", None),
    ],
)
def test_bad_connection_names_the_key(tmp_path, text, env, key, reason):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env=env)
    assert e.value.key == key
    if reason is not None:
        assert e.value.reason == reason
    assert "literal" not in str(e.value)


# ---------------------------------------------------------------------------------------- [aws]
def test_aws_defaults_to_botocores_own_configuration(tmp_path):
    aws = load_settings(tmp_path, env={}).aws
    assert (aws.region, aws.endpoint_url, aws.profile, dict(aws.endpoints)) == (None, None, None, {})


def test_aws_settings_and_endpoints_from_the_file(tmp_path):
    write(tmp_path, '[aws]\nregion = "eu-west-1"\nendpoint_url = "http://localhost:4566"\nprofile = "dev"\n'
                    '[aws.endpoints]\ns3 = "http://127.0.0.1:9000"\n')
    aws = load_settings(tmp_path, env={}).aws
    assert (aws.region, aws.endpoint_url, aws.profile) == ("eu-west-1", "http://localhost:4566", "dev")
    assert dict(aws.endpoints) == {"s3": "http://127.0.0.1:9000"}


def test_aws_settings_overridden_by_the_environment(tmp_path):
    write(tmp_path, '[aws]\nregion = "eu-west-1"\n[aws.endpoints]\ns3 = "http://127.0.0.1:9000"\n')
    aws = load_settings(tmp_path, env={"EXPRESS_AWS_REGION": "ap-south-1", "EXPRESS_AWS_ENDPOINT_URL": "",
                                       "EXPRESS_AWS_ENDPOINTS": "sqs=http://q:1, lambda=https://l"}).aws
    assert (aws.region, aws.endpoint_url) == ("ap-south-1", None)
    assert dict(aws.endpoints) == {"sqs": "http://q:1", "lambda": "https://l"}


@pytest.mark.parametrize(
    ("text", "env", "where", "key"),
    [
        ('[aws]\nregoin = "x"\n', {}, "file", "aws.regoin"),
        ('[aws]\nregion = 1\n', {}, "file", "aws.region"),
        ('[aws]\nendpoint_url = "localhost:4566"\n', {}, "file", "aws.endpoint_url"),
        ('[aws.endpoints]\ns3 = 9000\n', {}, "file", "aws.endpoints.s3"),
        ('[aws.endpoints]\ns3 = "ftp://x"\n', {}, "file", "aws.endpoints.s3"),
        ('aws = "x"\n', {}, "file", "aws"),
        ("", {"EXPRESS_AWS_ENDPOINTS": "s3"}, "environment", "EXPRESS_AWS_ENDPOINTS"),
        ("", {"EXPRESS_AWS_ENDPOINT_URL": "nope"}, "environment", "EXPRESS_AWS_ENDPOINT_URL"),
    ],
)
def test_bad_aws_settings_name_the_key(tmp_path, text, env, where, key):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env=env)
    assert e.value.key == key
    assert (e.value.where == "environment") == (where == "environment")
