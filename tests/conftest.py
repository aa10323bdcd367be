"""Fixtures shared by the engine tests; plain helpers live in tests/support.py."""
from __future__ import annotations

import pytest

from tests.support import FakeFrame


@pytest.fixture
def fake_frame() -> type[FakeFrame]:
    return FakeFrame
