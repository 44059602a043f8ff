"""Shared fixtures only; helpers live in tests/helpers/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters._meta.graph import new_session
from bot.settings import Settings
from tests.helpers.fake_graph import DEFAULT_TOKEN, FakeGraph
from tests.helpers.group import TOKENS
from tests.helpers.sends import TOKEN
from tests.helpers.service import make_settings


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    """A fake Graph API on a loopback port that accepts the service's and the sends' tokens."""
    async with FakeGraph(token=(DEFAULT_TOKEN, TOKEN)) as fake:
        yield fake


@pytest.fixture
async def group_graph() -> AsyncIterator[FakeGraph]:
    """A fake Graph API that accepts each practice's token of the example group and no other."""
    async with FakeGraph(token=TOKENS) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The shared client session, shaped as in production."""
    async with new_session() as shared:
        yield shared


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraph) -> Settings:
    """Settings with all three channels sending to the fake Graph API."""
    return make_settings(tmp_path, graph.url)
