"""The real service on a loopback port, wired to a fake Graph API, for end-to-end tests."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from adapters import REGISTRY, MetaPlatform
from bot.app import SERVER_OPTIONS, AccessLogger, Runtime, create_app, runtime_key
from bot.events import Channel, Event
from bot.practices import GroupFiles, ServedPractice
from bot.retry import RetryPolicy
from bot.settings import Settings
from bot.store import Store
from bot.templates import LiveTemplates
from bot.worker import WorkerConfig
from tests.helpers.fake_graph import DEFAULT_TOKEN
from tests.helpers.signing import sign

__all__ = [
    "APP_ID",
    "APP_SECRET",
    "FIXTURE_TIME",
    "IG_ID",
    "PAGE_ID",
    "PHONE_NUMBER_ID",
    "VERIFY_TOKEN",
    "Clock",
    "Service",
    "live_templates",
    "make_settings",
    "running_service",
    "with_parser",
]

REPO = Path(__file__).resolve().parents[2]
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
APP_ID = "1111111111111111"
PHONE_NUMBER_ID = "109876543210987"
PAGE_ID = "200000000000001"
IG_ID = "17841400000000001"
PSEUDONYM_KEY = "test-pseudonym-key-with-at-least-32-characters"
# Tests keep Meta's retry semantics with waits short enough not to slow the suite.
FAST_RETRIES = RetryPolicy(max_attempts=3, initial=0.01, max_wait=0.05, jitter=0.01, deadline=2.0)
# Fixture messages carry this Unix time (2026-01-01 10:00 UTC); tests run the clock just after.
FIXTURE_TIME = 1767261600.0


@dataclass
class Clock:
    """A settable wall clock (Unix seconds) injected into the app and the worker."""

    now: float = FIXTURE_TIME + 60

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def make_settings(
    tmp_path: Path, graph_url: str = "http://127.0.0.1:9", **overrides: Any
) -> Settings:
    """Settings for a test: all three channels sending to ``graph_url``, data under tmp_path."""
    templates = tmp_path / "templates"
    if not templates.exists():
        shutil.copytree(REPO / "templates", templates)
    values: dict[str, Any] = {
        "meta_app_secret": APP_SECRET,
        "meta_verify_token": VERIFY_TOKEN,
        "meta_app_id": APP_ID,
        "graph_api_url": graph_url,
        "instagram_api_url": graph_url,
        "whatsapp_phone_number_id": PHONE_NUMBER_ID,
        "whatsapp_access_token": DEFAULT_TOKEN,
        "messenger_page_id": PAGE_ID,
        "messenger_page_access_token": DEFAULT_TOKEN,
        "instagram_account_id": IG_ID,
        "instagram_access_token": DEFAULT_TOKEN,
        "practice_name": "Test Dental Practice",
        "practice_phone": "+44 20 7946 0000",
        "practice_email": "hello@test-dental.example",
        "practice_booking_url": "https://test-dental.example/book",
        "pseudonym_key": PSEUDONYM_KEY,
        "database_url": f"sqlite:///{tmp_path}/data/practice-bot.sqlite3",
        "templates_dir": templates,
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Service:
    """A running app and a client that signs what it posts."""

    client: TestClient[web.Request, web.Application]
    app: web.Application
    clock: Clock
    secret: str = APP_SECRET
    posted: list[bytes] = field(default_factory=list)

    @property
    def runtime(self) -> Runtime:
        """The app's runtime objects (store, worker, metrics)."""
        return self.app[runtime_key]

    @property
    def store(self) -> Store:
        """The app's store."""
        return self.runtime.store

    async def post(
        self, body: bytes | dict[str, Any], *, secret: str | None = None
    ) -> ClientResponse:
        """POST a signed webhook body."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.posted.append(raw)
        headers = {"X-Hub-Signature-256": sign(raw, secret or self.secret)}
        # aiohttp warns about large raw bytes bodies; a stream sends the same bytes.
        data: bytes | io.BytesIO = io.BytesIO(raw) if len(raw) > 1_000_000 else raw
        return await self.client.post("/webhook", data=data, headers=headers)

    async def drain(self, timeout: float = 10.0) -> None:
        """Let the worker send everything that is due now."""
        worker = self.runtime.worker
        assert worker is not None
        await worker.drain(timeout)


def live_templates(settings: Settings) -> LiveTemplates:
    """The practice's texts as ``serve`` loads them, checked against the real adapters."""
    return LiveTemplates(
        settings.templates_dir,
        settings.practice(),
        settings.schedule(),
        channels=REGISTRY.adapters,
    )


@asynccontextmanager
async def running_service(
    settings: Settings,
    clock: Clock | None = None,
    *,
    store: Store | None = None,
    run_worker: bool = True,
    worker: WorkerConfig | None = None,
    retry_policy: RetryPolicy | None = None,
    platform: MetaPlatform = REGISTRY,
    server_options: Mapping[str, Any] | None = None,
    group: Sequence[ServedPractice] = (),
    group_files: GroupFiles | None = None,
    template_poll: float = 0.05,
) -> AsyncIterator[Service]:
    """Start the real app on loopback; stop it (and its worker) on exit.

    The worker polls every 0.05 s unless ``worker`` says otherwise; ``server_options``
    change what ``serve`` gives aiohttp's server (``bot.app.SERVER_OPTIONS``); ``group``
    serves a group's practices (``settings`` then is the first one's), following changes of
    ``group_files`` as ``serve`` does. Texts and group files are looked at every
    ``template_poll`` seconds.
    """
    clock = clock if clock is not None else Clock()
    app = create_app(
        settings,
        platform=platform,
        templates=group[0].templates if group else live_templates(settings),
        group=group,
        store=store,
        clock=clock,
        run_worker=run_worker,
        worker=worker if worker is not None else WorkerConfig(poll_interval=0.05),
        template_poll=template_poll,
        group_files=group_files,
        retry_policy=retry_policy or FAST_RETRIES,
    )
    server = TestServer(app)
    # TestServer ignores access_log_class given to its constructor; start it explicitly so
    # tests log requests exactly as `practice-bot serve` does.
    options = {**SERVER_OPTIONS, **(server_options or {})}
    await server.start_server(access_log_class=AccessLogger, **options)
    client: TestClient[web.Request, web.Application] = TestClient(server)
    async with client:  # closing the client closes the server and runs cleanup_ctx
        yield Service(client=client, app=app, clock=clock)


def with_parser(
    channel: Channel, parse: Callable[[Mapping[str, Any]], list[Event]]
) -> MetaPlatform:
    """The real platform, but ``channel``'s webhooks go to another parser."""
    return REGISTRY.replace(channel, parse=parse)
