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
