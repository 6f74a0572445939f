"""Fixtures shared by the unit tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(params=["memory", "lmdb"])
def engine_kind(request: Any) -> str:
    """Each storage engine in turn: ``memory`` or ``lmdb`` (pass it to ``test_dataplane_support.run``)."""
    return str(request.param)
