"""Asyncio load generators for the benchmark, run as a separate process pinned to its own core.

``open``: a fixed offered rate. Request *k* is due at ``t0 + k / rate`` whatever happened to
earlier requests, and its latency is measured from that scheduled time, not from when it was
actually sent: a server stall then shows up in every request that should have gone out during
it, instead of silently lowering the offered rate (no coordinated omission). Each request's
scheduled, sent and answered times (``time.monotonic()``, the same clock in every process on
the machine) are written out, so the driver can match them with what the fake Graph API saw.

``closed``: N connections, each sending its next request as soon as the previous answer
arrives, for a fixed time: the fallback when ``wrk`` is not installed. Python's client costs
more per request than wrk, so these figures are a lower bound of the server's capacity.

Both read pre-signed requests from a file of ``<signature>\\t<JSON body>`` lines and write one
JSON document to ``--out``::

    python -m bench.loadgen open --url URL --bodies FILE --rate 500 --duration 12 --out FILE
    python -m bench.loadgen closed --url URL --bodies FILE --connections 32 --duration 8 --out F
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["SignedBody", "main", "percentile", "read_bodies", "run_closed", "run_open"]

REQUEST_TIMEOUT = 10.0
START_DELAY = 0.3  # seconds between setting up and the first scheduled request
# asyncio sleeps in whole milliseconds (epoll), rounded up; the last millisecond before a
# scheduled time is spent yielding to the loop instead, so requests leave on time.
SPIN = 0.001


@dataclass(frozen=True, slots=True)
class SignedBody:
    """One pre-signed webhook request."""

    signature: str
    body: bytes


def read_bodies(path: Path) -> list[SignedBody]:
    """The requests of a bodies file, in order."""
    bodies: list[SignedBody] = []
    with path.open("rb") as handle:
        for raw in handle:
            line = raw.rstrip(b"\n")
            signature, sep, body = line.partition(b"\t")
            if sep:
                bodies.append(SignedBody(signature.decode("ascii"), body))
    if not bodies:
        raise ValueError(f"no requests in {path}")
    return bodies


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (``nan`` when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-pct * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


async def _post(session: aiohttp.ClientSession, url: str, item: SignedBody) -> int:
    headers = {"X-Hub-Signature-256": item.signature, "Content-Type": "application/json"}
    try:
        async with session.post(url, data=item.body, headers=headers) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return -1


async def _get(session: aiohttp.ClientSession, url: str) -> int:
    try:
        async with session.get(url) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return -1


async def run_open(
    url: str, bodies: list[SignedBody], rate: float, duration: float
) -> dict[str, Any]:
    """Offer ``rate`` requests per second for ``duration`` seconds on a fixed timetable.

    Returns ``{"t0", "rate", "records": [[index, scheduled, sent, answered, status], ...]}``
    with monotonic times in seconds; status -1 is a connection error or a timeout.
    """
    count = min(len(bodies), round(rate * duration))
    records: list[list[float]] = [[k, 0.0, 0.0, 0.0, 0] for k in range(count)]
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Open a few connections first so the first scheduled requests do not pay for them.
        health = url.rsplit("/", 1)[0] + "/healthz"
        await asyncio.gather(*(_get(session, health) for _ in range(4)))
        tasks: set[asyncio.Task[None]] = set()

        async def fire(k: int, scheduled: float) -> None:
            record = records[k]
            record[1] = scheduled
            record[2] = loop.time()
            record[4] = await _post(session, url, bodies[k])
            record[3] = loop.time()

        t0 = loop.time() + START_DELAY
        for k in range(count):
            scheduled = t0 + k / rate
            delay = scheduled - loop.time() - SPIN
            if delay > 0:
                await asyncio.sleep(delay)
            while loop.time() < scheduled:  # noqa: ASYNC110 - a deliberate sub-ms spin
                await asyncio.sleep(0)
            task = asyncio.create_task(fire(k, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks), timeout=REQUEST_TIMEOUT + 1)
    return {"t0": t0, "rate": rate, "records": records}


async def run_closed(
    url: str, bodies: list[SignedBody], connections: int, duration: float
) -> dict[str, Any]:
    """``connections`` closed loops for ``duration`` seconds; the same summary keys as wrk's."""
    latencies: list[float] = []
    errors = {"status": 0, "other": 0}
    state = {"next": 0}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.monotonic()
        end = start + duration

        async def loop_one() -> None:
            while True:
                sent = time.monotonic()
                if sent >= end:
                    return
                k = state["next"]
                state["next"] = k + 1
                status = await _post(session, url, bodies[k % len(bodies)])
                latencies.append(time.monotonic() - sent)
                if status == -1:
                    errors["other"] += 1
                elif not 200 <= status < 400:
                    errors["status"] += 1

        await asyncio.gather(*(loop_one() for _ in range(connections)))
        elapsed = time.monotonic() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "duration_us": round(elapsed * 1e6),
        "p50_us": round(percentile(latencies, 50) * 1e6),
        "p90_us": round(percentile(latencies, 90) * 1e6),
        "p99_us": round(percentile(latencies, 99) * 1e6),
        "max_us": round(latencies[-1] * 1e6) if latencies else 0,
        "mean_us": sum(latencies) / len(latencies) * 1e6 if latencies else 0.0,
        "connect_errors": 0,
        "read_errors": errors["other"],
        "write_errors": 0,
        "status_errors": errors["status"],
        "timeouts": 0,
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: ``open`` or ``closed``; writes the result as JSON to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    modes = parser.add_subparsers(dest="mode", required=True)
    for name in ("open", "closed"):
        mode = modes.add_parser(name)
        mode.add_argument("--url", required=True, help="the webhook URL")
        mode.add_argument("--bodies", type=Path, required=True)
        mode.add_argument("--duration", type=float, required=True, help="seconds")
        mode.add_argument("--out", type=Path, required=True)
        if name == "open":
            mode.add_argument("--rate", type=float, required=True, help="requests per second")
        else:
            mode.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    bodies = read_bodies(args.bodies)
    gc.collect()
    gc.disable()  # no collector pauses inside the measured window; the run is short
    try:
        if args.mode == "open":
            result = asyncio.run(run_open(args.url, bodies, args.rate, args.duration))
        else:
            result = asyncio.run(run_closed(args.url, bodies, args.connections, args.duration))
    finally:
        gc.enable()
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
