"""Shared fixtures only; helpers live in tests/helpers/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.service import make_settings


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    """A fake Graph API on a loopback port."""
    async with FakeGraph() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraph) -> Settings:
    """Settings with all three channels sending to the fake Graph API."""
    return make_settings(tmp_path, graph.url)
