"""The real ``practice-bot serve`` as a subprocess, for crash and shutdown tests."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers.service import APP_SECRET, PHONE_NUMBER_ID, PSEUDONYM_KEY, REPO, VERIFY_TOKEN
from tests.helpers.signing import sign

__all__ = ["BotProcess", "free_port", "whatsapp_text"]


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def whatsapp_text(sender: str, message_id: str, timestamp: float) -> bytes:
    """A WhatsApp text webhook body from ``sender``."""
    payload: dict[str, Any] = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "184725930012345",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550001234",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "contacts": [{"profile": {"name": "Patient"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": message_id,
                                    "timestamp": str(int(timestamp)),
                                    "type": "text",
                                    "text": {"body": "hello"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


class BotProcess:
    """Start, signal and restart ``python -m bot serve`` on a loopback port."""

    def __init__(self, data_dir: Path, graph_url: str, **env: str) -> None:
        self.port = free_port()
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "META_APP_SECRET": APP_SECRET,
            "META_VERIFY_TOKEN": VERIFY_TOKEN,
            "GRAPH_API_URL": graph_url,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_ACCESS_TOKEN": "test-token",
            "PRACTICE_NAME": "Crash Test Dental",
            "PRACTICE_PHONE": "+44 20 7946 0000",
            "PRACTICE_EMAIL": "hello@crash-test.example",
            "PSEUDONYM_KEY": PSEUDONYM_KEY,
            "DATABASE_URL": f"sqlite:///{data_dir}/practice-bot.sqlite3",
            "TEMPLATES_DIR": str(REPO / "templates"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_FORMAT": "json",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "bot.log"

    @property
    def url(self) -> str:
        """Base URL of the running service."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, **env: str) -> None:
        """Start the service and wait until /healthz answers."""
        self.env.update(env)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - start only; waiting is async below
                [sys.executable, "-m", "bot", "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 15
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(f"serve exited with {self.proc.returncode}")
                await asyncio.sleep(0.05)
        raise TimeoutError("serve did not become healthy")

    async def post(self, session: aiohttp.ClientSession, body: bytes) -> int:
        """POST a signed body; returns the status."""
        headers = {"X-Hub-Signature-256": sign(body, APP_SECRET)}
        async with session.post(f"{self.url}/webhook", data=body, headers=headers) as response:
            return response.status

    def signal(self, signum: int) -> None:
        """Send a signal to the process."""
        assert self.proc is not None
        self.proc.send_signal(signum)

    async def wait(self, timeout: float) -> int:
        """Wait for the process to exit; returns its code."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError("serve did not exit")
            await asyncio.sleep(0.02)
        return self.proc.returncode

    async def stop(self) -> None:
        """Make sure the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            await self.wait(5)
