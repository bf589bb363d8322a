"""Fixtures for substrate tests."""

from __future__ import annotations

import pytest
from substrate_helpers import ToyTask

from hivethink.substrates.base import Budget
from hivethink.tasks.base import Instance


@pytest.fixture
def task() -> ToyTask:
    return ToyTask()


@pytest.fixture
def instance() -> Instance:
    return ToyTask().generate(1, 0)[0]


@pytest.fixture
def budget() -> Budget:
    return Budget(max_tokens=64, rounds=2)
