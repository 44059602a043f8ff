"""CPU instructions per acknowledged webhook, counted by valgrind: a figure that repeats.

Wall-clock throughput on a virtual machine drifts by tens of percent over minutes; an
instruction count of the same code path repeats to within about half a percent, so it is the
figure to compare two versions of the code with. This script runs the service's own handler
for ``POST /webhook`` in process (``bot.app.webhook_post``: signature, JSON, adapter, policy,
group commit on a real SQLite store, the log line, metrics) on distinct signed WhatsApp
messages, once with ``N`` webhooks and once with ``3N``, each under
``valgrind --tool=callgrind``, and prints the difference per webhook, so start-up and
shut-down cancel out. The worker does not run; aiohttp's HTTP parsing is not included.

    python bench/instructions.py            # N = 2000, about two minutes
    python bench/instructions.py --count 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``python bench/instructions.py`` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

__all__ = ["main", "run_webhooks"]

_COLLECTED = re.compile(rb"Collected : (\d+)")


async def run_webhooks(count: int, data_dir: Path) -> None:
    """Acknowledge ``count`` distinct signed webhooks through the service's handler."""
    from adapters import REGISTRY  # noqa: PLC0415
    from bot.app import create_app, webhook_post  # noqa: PLC0415
    from tests.helpers.process import whatsapp_text  # noqa: PLC0415
    from tests.helpers.service import APP_SECRET, live_templates, make_settings  # noqa: PLC0415
    from tests.helpers.signing import sign  # noqa: PLC0415

    settings = make_settings(data_dir)
    app = create_app(
        settings, platform=REGISTRY, templates=live_templates(settings), run_worker=False
    )
    app.freeze()
    await app.startup()
    now = time.time()
    bodies = [whatsapp_text(f"4479{i:08d}", f"wamid.INSTR{i:08d}", now) for i in range(count)]
    for body in bodies:
        request = _Request(app, body, {"X-Hub-Signature-256": sign(body, APP_SECRET)})
        response = await webhook_post(cast("web.Request", request))
        if response.status != 200:
            raise RuntimeError(f"webhook answered {response.status}")
    await app.cleanup()


class _Received:
    """The request's body stream, already complete: a small webhook arrives with its headers."""

    @staticmethod
    def is_eof() -> bool:
        return True


class _Request:
    """What the handler reads of a request: the app, the headers and the body.

    A plain object rather than aiohttp's mocked request, whose mocks would cost more
    instructions than the handler itself; aiohttp's HTTP parsing is left out either way.
    """

    def __init__(self, app: web.Application, body: bytes, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = headers
        self.content_length = len(body)
        self.content = _Received()
        self._body = body

    async def read(self) -> bytes:
        return self._body


def _instructions(count: int) -> int:
    """Instructions of a whole process acknowledging ``count`` webhooks."""
    with tempfile.TemporaryDirectory(prefix="instructions-") as data_dir:
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                str(Path(__file__).resolve()),
                "--inner",
                str(count),
                "--data-dir",
                data_dir,
            ],
            cwd=ROOT,
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    found = _COLLECTED.search(result.stderr)
    if found is None:
        raise RuntimeError("valgrind printed no instruction count")
    return int(found[1])


def main(argv: list[str] | None = None) -> int:
    """Print instructions per webhook (or, with ``--inner``, just acknowledge webhooks)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="webhooks of the short run")
    parser.add_argument("--inner", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner is not None:
        from bot.logging import configure_logging, flush_logs  # noqa: PLC0415

        # Lines are rendered and written as in the service, to a sink that keeps none.
        with Path(os.devnull).open("w") as sink:
            configure_logging("info", "json", sink, batched=True, cache=True)
            asyncio.run(run_webhooks(args.inner, args.data_dir))
            flush_logs()
        return 0
    short = _instructions(args.count)
    long = _instructions(3 * args.count)
    per_webhook = (long - short) / (2 * args.count)
    print(f"webhooks: {args.count} and {3 * args.count}")
    print(f"instructions: {short:,} and {long:,}")
    print(f"instructions per acknowledged webhook: {per_webhook:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
