"""Open each store for a test: SQLite in the test's tmp_path, PostgreSQL in a schema of its own.

PostgreSQL tests read ``TEST_DATABASE_URL``. Without it they skip with a visible reason, except
under ``CI=true``, where they fail (SPEC §1). Each test gets a fresh schema on that server,
reached through ``?search_path=…`` in the store URL, and the schema is dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from bot.store import Store, open_store

__all__ = [
    "STORE_KINDS",
    "StoreUnderTest",
    "open_test_store",
    "postgres_schema",
    "postgres_url",
    "with_search_path",
]

STORE_KINDS = ("sqlite", "postgres")


def postgres_url() -> str:
    """The test server's URL; skips the test without one (fails it under ``CI=true``)."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail("TEST_DATABASE_URL is not set, and CI=true requires the PostgreSQL tests")
    pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL store tests need a server")


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections see only ``schema`` (asyncpg passes it as a server setting)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A new, empty schema on the test server; yields a URL bound to it, drops it afterwards."""
    base = postgres_url()
    schema = "test_" + secrets.token_hex(8)
    await _execute(base, f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(base, schema)
    finally:
        await _execute(base, f"DROP SCHEMA {schema} CASCADE")


@dataclass(frozen=True, slots=True)
class StoreUnderTest:
    """An open store plus what a test needs to look behind it."""

    kind: str  # "sqlite" or "postgres"
    url: str  # its DATABASE_URL (for PostgreSQL, bound to the test's own schema)
    store: Store

    def another(self, *, pool_size: int = 4) -> Store:
        """A second store on the same database (a restart, or another replica); not opened."""
        return open_store(self.url, pool_size=pool_size)

    async def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement on a separate connection (autocommit); ``?`` placeholders for both."""
        if self.kind == "sqlite":
            path = self.url.removeprefix("sqlite:///")
            with closing(sqlite3.connect(path, isolation_level=None)) as db:
                return [tuple(row) for row in db.execute(sql, args).fetchall()]
        pieces = sql.split("?")
        numbered = pieces[0] + "".join(f"${i}{piece}" for i, piece in enumerate(pieces[1:], 1))
        conn = await asyncpg.connect(self.url)
        try:
            return [tuple(row.values()) for row in await conn.fetch(numbered, *args)]
        finally:
            await conn.close()


@asynccontextmanager
async def open_test_store(kind: str, tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    """An opened store of ``kind`` with an empty database, closed (and dropped) afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'store.db'}"
        store = open_store(url)
        await store.open()
        try:
            yield StoreUnderTest(kind, url, store)
        finally:
            await store.close()
        return
    if kind != "postgres":
        raise ValueError(f"unknown store kind {kind!r}")
    async with postgres_schema() as url:
        store = open_store(url)
        await store.open()
        try:
            yield StoreUnderTest(kind, url, store)
        finally:
            await store.close()
