"""The floor: the least a correct signed-webhook endpoint must do, as a yardstick for the bot.

A bare aiohttp handler (no access log, no middleware) that reads the raw body, checks
``X-Hub-Signature-256`` with ``hmac.compare_digest``, decodes it with the standard ``json``
module and inserts one row per WhatsApp message id with the standard ``sqlite3`` module
(WAL, ``synchronous=NORMAL``, ``INSERT OR IGNORE``), then answers 200. No policy, no logging,
no metrics, no reply queue: whatever the bot costs above this is the price of its features.

    python bench/floor.py --port 8099 --secret S --db /tmp/floor.sqlite3

Only aiohttp and the standard library, so it measures the framework and nothing of ours.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web

__all__ = ["main", "make_app", "message_ids"]

MAX_BODY_BYTES = 4 * 1024 * 1024
PREFIX = "sha256="

db_key = web.AppKey("db", sqlite3.Connection)
secret_key = web.AppKey("secret", bytes)


def message_ids(payload: dict[str, Any]) -> Iterator[str]:
    """Every ``entry[].changes[].value.messages[].id`` of a WhatsApp webhook."""
    for entry in payload.get("entry") or ():
        for change in entry.get("changes") or ():
            for message in (change.get("value") or {}).get("messages") or ():
                message_id = message.get("id")
                if isinstance(message_id, str):
                    yield message_id


async def webhook(request: web.Request) -> web.Response:
    """Verify, parse, insert, acknowledge."""
    body = await request.read()
    header = request.headers.get("X-Hub-Signature-256", "")
    digest = hmac.new(request.app[secret_key], body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(header.encode(), (PREFIX + digest).encode()):
        return web.Response(status=403)
    try:
        payload = json.loads(body)
    except ValueError:
        return web.Response(status=400)
    if not isinstance(payload, dict):
        return web.Response(status=400)
    db = request.app[db_key]
    now = time.time()
    rows = [(message_id, now) for message_id in message_ids(payload)]
    if len(rows) == 1:
        db.execute("INSERT OR IGNORE INTO seen (id, at) VALUES (?, ?)", rows[0])
    elif rows:
        db.execute("BEGIN")
        db.executemany("INSERT OR IGNORE INTO seen (id, at) VALUES (?, ?)", rows)
        db.execute("COMMIT")
    return web.Response(text="ok")


async def healthz(_: web.Request) -> web.Response:
    """Liveness, for the driver's start-up wait."""
    return web.Response(text="ok")


def make_app(secret: bytes, db_path: str) -> web.Application:
    """The floor application on a fresh SQLite file."""
    db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at REAL NOT NULL)")
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[db_key] = db
    app[secret_key] = secret
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", healthz)

    async def close_db(_: web.Application) -> None:
        db.close()

    app.on_cleanup.append(close_db)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the floor on 127.0.0.1 until SIGINT / SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--db", required=True, help="SQLite file (created)")
    args = parser.parse_args(argv)
    app = make_app(args.secret.encode(), args.db)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
