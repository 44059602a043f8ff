"""Held uploads: what unsigned bodies and slow headers cost the running service.

Starts ``python -m bot serve`` on loopback, then plays three clients at once:

* **the attacker** opens ``--uploads`` connections, each declaring a 4 MiB body, sends all
  of it but the last byte, and holds the connection open for ``--hold`` seconds;
* **the slow client** opens ``--slow`` connections that send one header byte a second and
  never finish their headers;
* **Meta** posts a correctly signed WhatsApp message every 50 ms on its own connection.

It samples the service's resident memory (``/proc/<pid>/status``) every 50 ms and prints:
the peak, the memory once the attacker has gone, how the uploads were answered, how long
the slow connections stayed open, and how many of Meta's webhooks were acknowledged while
all this went on. Run from the repository root::

    python bench/held_uploads.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``python bench/held_uploads.py`` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from tests.helpers.fake_graph import FakeGraph  # noqa: E402
from tests.helpers.process import BotProcess, whatsapp_text  # noqa: E402

FOUR_MIB = 4 * 1024 * 1024


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def held_upload(port: int, hold: float) -> str:
    """One unsigned 4 MiB upload held one byte short; how the service answered it."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return "refused connection"
    head = f"POST /webhook HTTP/1.1\r\nHost: bot\r\nContent-Length: {FOUR_MIB}\r\n\r\n"
    try:
        writer.write(head.encode() + b"x" * (FOUR_MIB - 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(writer.drain(), hold)
        answer = await asyncio.wait_for(reader.readline(), hold)
    except TimeoutError:
        return "still held"
    except (ConnectionError, OSError):
        return "reset"
    finally:
        writer.close()
    return answer.split(b" ")[1].decode() if answer.count(b" ") >= 2 else "closed"


async def slow_headers(port: int, limit: float) -> float:
    """A connection that sends one header byte a second; seconds until the service closed it."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /webhook HTTP/1.1\r\nHost: bot\r\nX-Slow: ")
    try:
        while time.monotonic() - started < limit:
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                    break
            writer.write(b"a")
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return time.monotonic() - started


async def meta(bot: BotProcess, until: float) -> Counter[int | str]:
    """Signed webhooks every 50 ms on a connection of their own; their statuses."""
    statuses: Counter[int | str] = Counter()
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        n = 0
        while time.monotonic() < until:
            n += 1
            body = whatsapp_text(f"4477009{n:05d}", f"wamid.HELD{n:08d}", time.time())
            try:
                statuses[await bot.post(session, body)] += 1
            except (aiohttp.ClientError, TimeoutError):
                statuses["error"] += 1
            await asyncio.sleep(0.05)
    return statuses


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="held-uploads-") as data:
        async with FakeGraph(token=None) as graph:
            bot = BotProcess(Path(data), graph.url)
            await bot.start()
            pid = bot.proc.pid if bot.proc is not None else 0
            try:
                baseline = rss_mb(pid)
                peak = baseline
                started = time.monotonic()
                meta_task = asyncio.create_task(meta(bot, started + args.hold + 2))
                slow_tasks = [
                    asyncio.create_task(slow_headers(bot.port, args.hold + 40))
                    for _ in range(args.slow)
                ]
                upload_tasks = [
                    asyncio.create_task(held_upload(bot.port, args.hold))
                    for _ in range(args.uploads)
                ]
                while not all(task.done() for task in upload_tasks):
                    peak = max(peak, rss_mb(pid))
                    await asyncio.sleep(0.05)
                answers = Counter(task.result() for task in upload_tasks)
                statuses = await meta_task
                await asyncio.sleep(3)
                after = rss_mb(pid)
                open_for = sorted([await task for task in slow_tasks])
            finally:
                await bot.stop()
    acknowledged = statuses.get(200, 0)
    sent = sum(statuses.values())
    print(f"uploads: {args.uploads} unsigned 4 MiB bodies held {args.hold:.0f} s")
    print(f"  answered: {dict(answers)}")
    print(f"memory: {baseline:.1f} MB before, peak {peak:.1f} MB, {after:.1f} MB 3 s after")
    if open_for:
        print(
            f"slow headers: {args.slow} connections closed by the service after "
            f"{open_for[0]:.1f} to {open_for[-1]:.1f} s"
        )
    print(f"Meta meanwhile: {acknowledged} of {sent} signed webhooks acknowledged {dict(statuses)}")
    ok = peak <= 150 and acknowledged == sent and (not open_for or open_for[-1] < args.hold + 39)
    print(
        "targets: peak ≤ 150 MB, every signed webhook acknowledged, slow headers closed:",
        "met" if ok else "NOT MET",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds each upload is held")
    sys.exit(asyncio.run(main(parser.parse_args())))
