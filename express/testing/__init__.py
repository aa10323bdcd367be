"""Testing workflows: mocked Task responses in AWS Step Functions Local's MockConfig format, test cases run
against a machine, and the pytest plugin (fixtures ``express_workflow``, ``express_clock``).

May import every layer; nothing in the engine or the transports imports it except to load a mock config.
"""
from express.testing.cases import (
    ANY,
    Attempt,
    CaseResult,
    Run,
    Step,
    Workflow,
    WorkflowAssertionError,
    first_difference,
    format_result,
    junit_xml,
    machine_path,
    summary,
)

__all__ = ["ANY", "Attempt", "CaseResult", "Run", "Step", "Workflow", "WorkflowAssertionError", "first_difference",
           "format_result", "junit_xml", "machine_path", "summary"]
