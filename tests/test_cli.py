import json
import subprocess
import sys

from express.cli import main

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
    proc = subprocess.run([sys.executable, "-m", "express.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "validate" in proc.stdout and "exec" in proc.stdout


def test_exec_over_the_express_cap_times_out(tmp_path, capsys):
    f = tmp_path / "wait.asl.json"
    f.write_text(json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}))
    assert main(["exec", str(f), "--virtual-time"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["error"]) == ("TIMED_OUT", "States.Timeout")
