"""The pytest fixture: a started test model server, stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import ModelServer


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server
