"""Hostile and broken clients: what the service does with requests no honest sender makes.

Each test talks to the real service over a raw socket where a normal HTTP client could not
make the request at all.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from bot.settings import Settings
from bot.store.sqlite import SQLiteStore
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.fixtures import fixture_bytes
from tests.helpers.logs import captured_logs
from tests.helpers.process import BotProcess
from tests.helpers.service import Service, running_service


async def _send_raw(host: str, port: int, data: bytes, *, linger: float = 0.1) -> bytes:
    """Write ``data`` on a new connection, read what comes back within ``linger``, close."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(4096), linger)
    except TimeoutError:
        answer = b""
    writer.close()
    return answer


def _levels(lines: str) -> set[str]:
    return {json.loads(line)["level"] for line in lines.splitlines() if line.startswith("{")}


async def test_access_log_of_a_malformed_request_line_is_written(settings: Settings) -> None:
    """At debug level a request aiohttp refuses before routing is logged, not an error."""
    with captured_logs("debug") as stream:
        async with running_service(settings, run_worker=False) as service:
            answer = await _send_raw(
                str(service.client.host),
                int(service.client.port or 0),
                b"GET /\x00bad HTTP/1.1\r\nHost: x\r\n\r\n",
            )
            await asyncio.sleep(0.05)
    assert answer.startswith(b"HTTP/1.0 400")
    access = [line for line in stream.getvalue().splitlines() if '"http_access"' in line]
    assert [json.loads(line)["route"] for line in access] == ["unmatched"]
    assert "AssertionError" not in stream.getvalue()


async def test_client_gone_mid_body_is_499_at_info(tmp_path: Path, graph: FakeGraph) -> None:
    """A client that disconnects mid-body is counted as 499 and logged at INFO, not as 500."""
    bot = BotProcess(tmp_path, graph.url)
    await bot.start()
    try:
        await _send_raw(
            "127.0.0.1",
            bot.port,
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{",
        )
        await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/metrics") as got:
            metrics = await got.text()
    finally:
        await bot.stop()
    webhooks = [line for line in metrics.splitlines() if line.startswith("practice_bot_webhooks")]
    assert webhooks == ['practice_bot_webhooks_total{channel="unknown",status="499"} 1.0']
    log = bot.log.read_text()
    assert _levels(log) <= {"info", "warning"}
    assert '"reason":"client_closed"' in log


# Another program (a backup tool, a DB browser) takes SQLite's write lock and sits on it.
_HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
"""


@contextmanager
def _write_lock_held(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the database's write lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    try:
        yield holder
    finally:
        holder.communicate("release\n", timeout=10)


async def test_locked_store_leaves_health_and_metrics_answering(
    settings: Settings, tmp_path: Path
) -> None:
    """While a webhook waits for another process's lock, /healthz and /metrics still answer,
    and the webhook is recorded once the lock is released."""
    store = SQLiteStore(str(tmp_path / "data" / "locked.sqlite3"), lock_wait=30)
    async with running_service(settings, store=store, run_worker=False) as service:
        with _write_lock_held(store.path):
            webhook = asyncio.create_task(service.post(fixture_bytes("whatsapp", "text")))
            await asyncio.sleep(0.2)  # the webhook is now waiting for the lock
            assert (await service.client.get("/healthz")).status == 200
            assert (await service.client.get("/metrics")).status == 200
            assert not webhook.done()
        assert (await webhook).status == 200
        assert await service.store.queue_depth() == 1


async def test_locked_store_past_the_wait_is_503(settings: Settings, tmp_path: Path) -> None:
    """A webhook that cannot get the lock within the store's wait is refused with 503."""
    store = SQLiteStore(str(tmp_path / "data" / "locked.sqlite3"), lock_wait=0.3)
    async with running_service(settings, store=store, run_worker=False) as service:
        with _write_lock_held(store.path):
            response = await service.post(fixture_bytes("whatsapp", "text"))
        assert response.status == 503


# -- bodies held before their signature is known --------------------------------------------

FOUR_MIB = 4 * 1024 * 1024


async def _hold_upload(service: Service, size: int) -> asyncio.StreamWriter:
    """An unsigned upload of ``size`` bytes that stops one byte short and waits."""
    _, writer = await asyncio.open_connection(str(service.client.host), service.client.port)
    writer.write(
        f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode()
        + b"x" * (size - 1)
    )
    await writer.drain()
    return writer


async def test_budget_full_refuses_large_uploads_with_503(settings: Settings) -> None:
    """Once the large-body budget is held, another big upload gets 503 with Retry-After
    before its body is read, and a small signed webhook is still acknowledged."""
    async with running_service(settings, run_worker=False) as service:
        held = [await _hold_upload(service, FOUR_MIB) for _ in range(3)]
        await asyncio.sleep(0.2)
        assert service.runtime.bodies.held == 3 * FOUR_MIB
        answer = await _send_raw(
            str(service.client.host),
            int(service.client.port or 0),
            f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {FOUR_MIB}\r\n\r\n".encode(),
            linger=2,
        )
        assert answer.startswith(b"HTTP/1.1 503")
        assert b"Retry-After: 1" in answer
        assert (await service.post(fixture_bytes("whatsapp", "text"))).status == 200
        for writer in held:
            writer.close()
        await asyncio.sleep(0.2)
        assert service.runtime.bodies.held == 0


async def test_body_not_finished_in_time_is_408(settings: Settings) -> None:
    """A body still incomplete after the body timeout is answered 408 and its bytes let go."""
    async with running_service(settings, run_worker=False) as service:
        service.runtime.body_timeout = 0.3
        reader, writer = await asyncio.open_connection(
            str(service.client.host), service.client.port
        )
        writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert service.runtime.bodies.held == 0


async def test_headers_never_finished_close_the_connection(settings: Settings) -> None:
    """A client that never finishes its headers is disconnected after the header timeout."""
    async with running_service(
        settings, run_worker=False, server_options={"keepalive_timeout": 0.3}
    ) as service:
        reader, writer = await asyncio.open_connection(
            str(service.client.host), service.client.port
        )
        writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        writer.close()
