"""The pytest plugin (registered through the ``pytest11`` entry point ``express``): fixtures to
test state machines with mocked Task states on a virtual clock.

``express_workflow`` loads machines (a path, or a name looked up in the ``express_machines``
folder, default ``config/machines``) and runs them; ``express_clock`` is the test's
:class:`express.VirtualClock`. See :mod:`express.testing.cases` for what a run can assert.

    def test_retry_path(express_workflow):
        run = express_workflow.run("LambdaSQSIntegration", test_case="RetryPath",
                                   mock_config="tests/MockConfigFile.json")
        run.assert_succeeded().assert_path(["LambdaState", "SQSState"]).assert_attempts("LambdaState", 4)
"""
from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from express.engine.clock import VirtualClock
from express.serve.registry import MACHINE_SUFFIX
from express.testing.cases import Run, Workflow
from express.testing.mocking import MockConfig


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("express_machines", "folder of NAME.asl.json that express_workflow finds machines in by name "
                                      "(relative to the rootdir)", default="config/machines")
    parser.addini("express_mock_config", "the Step Functions Local mock config express_workflow uses by default "
                                         "(relative to the rootdir)", default="")


class Workflows:
    """The ``express_workflow`` fixture: compiles machines for one test, all on its clock."""

    def __init__(self, root: pathlib.Path, machines: str, mock_config: str, clock: VirtualClock) -> None:
        self.root = root
        self.machines_dir = root / machines
        self.default_mock_config = root / mock_config if mock_config else None
        self.clock = clock
        self._mock_configs: dict[pathlib.Path, MockConfig] = {}

    def load(self, machine: str | os.PathLike[str] | Mapping[str, Any], *, test_case: str | None = None,
             mock_config: str | os.PathLike[str] | MockConfig | None = None,
             functions: Mapping[str, Callable[..., Any]] | None = None, name: str | None = None,
             max_duration_s: float | None = None) -> Workflow:
        """A machine compiled for testing: ``machine`` is a definition (dict), a file, or a name
        in the machines folder; with ``test_case``, the mock config's test case is applied."""
        definition: Any = machine
        if isinstance(machine, (str, os.PathLike)):
            path = pathlib.Path(machine)
            if not path.suffix and os.sep not in str(machine) and "/" not in str(machine):
                name = name or str(machine)
                path = self.machines_dir / f"{machine}{MACHINE_SUFFIX}"
            elif not path.is_absolute():
                path = self.root / path if not path.exists() else path
            if name is None:
                name = path.name[: -len(MACHINE_SUFFIX)] if path.name.endswith(MACHINE_SUFFIX) else path.stem
            definition = path.read_bytes()
        config = None
        if test_case is not None:
            config = self._mock_config(mock_config)
        return Workflow(definition, name=name or "machine", mock_config=config, test_case=test_case,
                        functions=functions, clock=self.clock, max_duration_s=max_duration_s)

    def run(self, machine: str | os.PathLike[str] | Mapping[str, Any], input: Any = None, **load: Any) -> Run:
        """``load(machine, **load).run(input)``."""
        return self.load(machine, **load).run(input)

    def _mock_config(self, given: str | os.PathLike[str] | MockConfig | None) -> MockConfig:
        if isinstance(given, MockConfig):
            return given
        if given is None:
            if self.default_mock_config is None:
                raise ValueError("a test case needs a mock config: pass mock_config=... or set the "
                                 "express_mock_config ini option")
            path = self.default_mock_config
        else:
            path = pathlib.Path(given)
            if not path.is_absolute() and not path.exists():
                path = self.root / path
        config = self._mock_configs.get(path)
        if config is None:
            config = self._mock_configs[path] = MockConfig.load(path)
        return config


@pytest.fixture
def express_clock() -> VirtualClock:
    """The test's virtual clock: Wait states, retry intervals and timeouts take no real time."""
    return VirtualClock()


@pytest.fixture
def express_workflow(request: pytest.FixtureRequest, express_clock: VirtualClock) -> Workflows:
    """Load and run state machines with mocked Task states on the test's virtual clock."""
    config = request.config
    return Workflows(config.rootpath, str(config.getini("express_machines")),
                     str(config.getini("express_mock_config")), express_clock)
