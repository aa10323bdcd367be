import argparse
import json
import pathlib
import re
import subprocess
import sys
import tomllib

import pytest

from express.serve.cli import build_parser, main

GOOD = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"ok": True}, "ResultPath": "$.r", "End": True}}}
BAD = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}, "B": {"Type": "Succeed"}}}


def test_validate_ok(tmp_path, capsys):
    f = tmp_path / "good.asl.json"
    f.write_text(json.dumps(GOOD))
    assert main(["validate", str(f)]) == 0
    assert "OK" in capsys.readouterr().out


def test_validate_prints_every_problem_with_pointer(tmp_path, capsys):
    f = tmp_path / "bad.asl.json"
    f.write_text(json.dumps(BAD))
    assert main(["validate", str(f)]) == 1
    out = capsys.readouterr().out
    assert "/States/A/Next" in out
    assert "MISSING_TRANSITION_TARGET" in out
    assert out.count("bad.asl.json:") >= 2  # the missing target and the unreachable state


def test_validate_reports_invalid_json(tmp_path, capsys):
    f = tmp_path / "broken.json"
    f.write_text("{nope")
    assert main(["validate", str(f)]) == 1
    assert "invalid JSON" in capsys.readouterr().out


def test_exec_prints_result_json(tmp_path, capsys):
    f = tmp_path / "good.asl.json"
    f.write_text(json.dumps(GOOD))
    assert main(["exec", str(f), "--input", '{"a": 1}']) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "SUCCEEDED"
    assert out["output"] == {"a": 1, "r": {"ok": True}}


def test_exec_input_from_file_and_failure_exit_code(tmp_path, capsys):
    f = tmp_path / "fail.asl.json"
    f.write_text(json.dumps({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "c"}}}))
    inp = tmp_path / "in.json"
    inp.write_text('{"x": 1}')
    assert main(["exec", str(f), "--input", f"@{inp}"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["error"], out["cause"]) == ("FAILED", "E", "c")


def test_exec_virtual_time_skips_waits(tmp_path, capsys):
    f = tmp_path / "wait.asl.json"
    f.write_text(json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 120, "End": True}}}))
    assert main(["exec", str(f), "--virtual-time"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "SUCCEEDED"
    assert out["durationMs"] == 120 * 1000


def test_console_script_is_installed():
    proc = subprocess.run([sys.executable, "-m", "express", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "validate" in proc.stdout and "exec" in proc.stdout


def test_exec_over_the_express_cap_times_out(tmp_path, capsys):
    f = tmp_path / "wait.asl.json"
    f.write_text(json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}))
    assert main(["exec", str(f), "--virtual-time"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["error"]) == ("TIMED_OUT", "States.Timeout")


def test_version_prints_the_package_version(capsys):
    import express

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"express {express.__version__}"
    proc = subprocess.run([sys.executable, "-m", "express", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, f"express {express.__version__}")


def _parsers(parser: argparse.ArgumentParser, path: str = "express"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_option_of_every_command_is_described_in_help():
    parsers = dict(_parsers(build_parser()))
    assert set(parsers) >= {"express", "express validate", "express exec", "express serve", "express demo",
                            "express usage", "express test"}
    undescribed = []
    for path, parser in parsers.items():
        if path != "express":
            assert parser.description and parser.epilog, f"{path}: no description or epilog"
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:  # internal (serve --worker: a supervised worker process)
                continue
            if not (action.help or "").strip():
                undescribed.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not undescribed, f"options without help text: {undescribed}"
    for parser in parsers.values():
        parser.format_help()  # every %(default)s and the like expands


def test_existing_flags_are_kept():
    parsers = dict(_parsers(build_parser()))
    flags = {path: {s for a in p._actions for s in a.option_strings} for path, p in parsers.items()}
    assert flags["express serve"] >= {"--config", "--bootstrap", "--http", "--no-http", "--no-kafka", "--workers",
                                      "--worker", "--mock-config", "--reload"}
    assert flags["express exec"] >= {"--input", "--name", "--virtual-time", "--mock-config", "--test-case"}
    assert flags["express demo"] >= {"--config", "--events", "--bootstrap"}
    assert flags["express usage"] >= {"--since", "--until", "--config", "--json"}
    assert flags["express test"] >= {"--config", "--machine-dir", "--junit"}


def test_help_of_a_command_shows_its_options():
    proc = subprocess.run([sys.executable, "-m", "express", "demo", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert "events to produce to each bound topic (default: 1000)" in proc.stdout


ROOT = pathlib.Path(__file__).resolve().parents[2]


def _top_commands() -> tuple[str, str]:
    """The README's run and test commands: its first two ```bash blocks."""
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    return blocks[0].strip(), blocks[1].strip()


def _extras(command: str) -> set[str]:
    match = re.search(r"pip install -q -e '\.\[([^\]]*)\]'", command)
    assert match, command
    return set(match.group(1).split(","))


def test_the_readme_run_command_installs_only_what_running_needs():
    run, test = _top_commands()
    assert run.endswith("express demo --events 2000")
    assert _extras(run) == {"kafka"}  # the demo's embedded broker and worker; no dev or test tools
    assert test.endswith(".venv/bin/pytest -q") and {"dev", "kafka"} <= _extras(test)
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == test, ".ci/run runs the README's test command"


def test_every_extra_the_install_commands_name_exists_and_test_tools_are_in_dev():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set().union(*map(_extras, _top_commands())) <= set(extras)
    assert not any(dep.startswith("playwright") for dep in extras["console"])  # running the console needs none
    assert any(dep.startswith("playwright") for dep in extras["dev"])
    assert any(dep.startswith("prometheus-client") for dep in project["dependencies"])  # serving records metrics
    assert project["authors"] and project["urls"] and project["keywords"]
    assert any(c.startswith("License :: ") for c in project["classifiers"])


def test_the_package_version_is_the_one_express_reports():
    import express

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == express.__version__


def test_validate_accepts_every_integration_aws_has_and_refuses_unknown_ones(tmp_path, capsys):
    states = {
        "Query": "arn:aws:states:::dynamodb:query",  # not an optimized integration
        "Nope": "arn:aws:states:::aws-sdk:nosuchservice:doIt",
        "Get": "arn:aws:states:::aws-sdk:s3:getObject", "Http": "arn:aws:states:::http:invoke",
        "Put": "arn:aws:states:::dynamodb:putItem", "Send": "arn:aws:states:::sqs:sendMessage",
        "Produce": "arn:express:::kafka:produce", "Fn": "arn:aws:lambda:us-east-1:123456789012:function:f"}
    names = list(states)
    definition = {"StartAt": names[0], "States": {
        n: {"Type": "Task", "Resource": r, **({"Next": names[i + 1]} if i + 1 < len(names) else {"End": True})}
        for i, (n, r) in enumerate(states.items())}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(definition))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    refused = [line.rsplit(" at ", 1)[1] for line in out.splitlines() if "is not recognized" in line]
    assert refused == ["/States/Query/Resource", "/States/Nope/Resource"], out


def test_exec_input_too_deep_or_too_large_fails_as_the_engine_says(tmp_path, capsys):
    # the size as given spares the engine measuring the input; the rare text it must check
    # itself (express.asl.limits.suspect) still reaches its checks
    f = tmp_path / "good.asl.json"
    f.write_text(json.dumps(GOOD))
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' + "[" * 300 + "]" * 300 + "}")
    assert main(["exec", str(f), "--input", f"@{deep}"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["error"]) == ("FAILED", "States.Runtime") and "253 levels" in out["cause"]
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"a": "x" * (256 * 1024)}))
    assert main(["exec", str(f), "--input", f"@{big}"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["error"]) == ("FAILED", "States.DataLimitExceeded")
