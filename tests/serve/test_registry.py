import json

import pytest

from express.serve.config import ConfigError, load_settings
from express.serve.registry import Registry

PASS = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}


def make_config(tmp_path, machines, toml=""):
    (tmp_path / "machines").mkdir()
    for name, definition in machines.items():
        (tmp_path / "machines" / f"{name}.asl.json").write_text(json.dumps(definition))
    (tmp_path / "express.toml").write_text(toml)
    return load_settings(tmp_path, env={})


async def test_loads_machines_from_the_config_folder(tmp_path):
    registry = Registry.from_settings(make_config(tmp_path, {"one": PASS, "two": PASS}))
    assert list(registry) == ["one", "two"]
    result = await registry.get("one").execute({"x": 1})
    assert (result.status, result.output) == ("SUCCEEDED", {"x": 1})


def test_invalid_machine_file_is_named(tmp_path):
    bad = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}
    with pytest.raises(ConfigError) as e:
        Registry.from_settings(make_config(tmp_path, {"bad": bad}))
    assert "bad.asl.json" in e.value.where
    assert "/States/A/Next" in str(e.value)


def test_binding_to_an_unknown_machine_is_refused(tmp_path):
    with pytest.raises(ConfigError) as e:
        Registry.from_settings(make_config(tmp_path, {"one": PASS}, '[bindings]\norders = "missing"\n'))
    assert e.value.key == "bindings.orders"


def test_function_import_paths(tmp_path):
    settings = make_config(tmp_path, {}, '[functions]\nupper = "string:capwords"\n')
    registry = Registry.from_settings(settings)
    assert registry.engine.functions["upper"]("a b") == "A B"
    (tmp_path / "express.toml").write_text('[functions]\nf = "no_such_module_xyz:f"\n')
    with pytest.raises(ConfigError) as e:
        Registry.from_settings(load_settings(tmp_path, env={}))
    assert e.value.key == "functions.f"


def test_put_and_delete(tmp_path):
    registry = Registry.from_settings(make_config(tmp_path, {}))
    entry = registry.put("m", json.dumps(PASS))
    assert "m" in registry and registry.entry("m") is entry
    assert registry.delete("m") and "m" not in registry
    assert not registry.delete("m")
