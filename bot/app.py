"""The aiohttp application: one webhook endpoint for three channels, health and metrics.

The request handler is thin. It reads the raw bytes, verifies the signature, decodes JSON once,
lets the adapter for the payload's ``object`` extract neutral events, records them in one store
transaction and only then answers 200. Sending happens in the worker, never in the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from adapters import BY_OBJECT, REGISTRY
from adapters._meta.graph import GraphClient, RetryPolicy, new_session
from adapters._meta.signature import handshake_challenge, verify_signature
from bot.errors import PayloadError, SignatureError, StoreUnavailable
from bot.events import Channel, Event, PatientEvent, Skipped
from bot.ingest import (
    Decision,
    GroupCommit,
    IngestPolicy,
    Prepared,
    PreparedEcho,
    PreparedPatient,
    prepare,
)
from bot.logging import debug_enabled, request_line
from bot.metrics import Metrics
from bot.pseudonym import Keyring
from bot.settings import Settings
from bot.store import Store, open_store
from bot.templates import LiveTemplates
from bot.worker import ReplyWorker

__all__ = [
    "MAX_BODY_BYTES",
    "AccessLogger",
    "Runtime",
    "create_app",
    "decode_body",
    "runtime_key",
]

log = structlog.get_logger("bot.app")

MAX_BODY_BYTES = 4 * 1024 * 1024  # SPEC §3: Meta's batches reach ~3 MB
MESSENGER_RATE = 250.0  # below the Send API's 300 calls/s per Page
PURGE_INTERVAL = 24 * 3600.0


@dataclass(slots=True)
class Runtime:
    """Everything a request handler needs, built once per app."""

    settings: Settings
    store: Store
    keyring: Keyring
    metrics: Metrics
    templates: LiveTemplates
    policy: IngestPolicy
    secrets: tuple[bytes, ...]
    verify_token: bytes
    clock: Callable[[], float]
    ingest: GroupCommit
    worker: ReplyWorker | None = None


runtime_key = web.AppKey("runtime", Runtime)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


# Built once: ``json.loads`` with any keyword argument builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_body(body: bytes) -> dict[str, Any]:
    """Decode a signed body with the standard ``json`` module into a JSON object.

    Raises:
        PayloadError: not UTF-8, not JSON (NaN / Infinity, excessive nesting and huge
            integers included), or not an object. The error never holds the body.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("not_utf8") from None
    try:
        payload = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise PayloadError("not_json") from None
    if not isinstance(payload, dict):
        raise PayloadError("not_object")
    return payload


class AccessLogger(AbstractAccessLogger):
    """Access log without query strings, client addresses or user agents, at DEBUG."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        match_info = getattr(request, "match_info", None)
        resource = match_info.route.resource if match_info is not None else None
        route = resource.canonical if resource is not None else "unmatched"
        log.debug(
            "http_access",
            method=request.method,
            route=route,
            status=response.status,
            duration_ms=round(time * 1000, 2),
        )

    @property
    def enabled(self) -> bool:
        return debug_enabled()


async def _security_headers(_: web.Request, response: StreamResponse) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Server"] = "practice-bot"


def _event_kind(event: Event) -> str:
    if isinstance(event, PatientEvent):
        return event.kind.value
    if isinstance(event, Skipped):
        return event.kind
    return {"Echo": "echo", "StatusUpdate": "status"}.get(type(event).__name__, "other")


async def webhook_post(request: web.Request) -> web.Response:
    """POST /webhook: SPEC §3's checks in order, then persist, then acknowledge."""
    rt = request.app[runtime_key]
    started = time.perf_counter()
    channel = "unknown"
    status = 500  # what aiohttp answers if anything below raises
    summary: dict[str, Any] = {}
    try:
        status, channel, summary = await _handle_webhook(rt, request)
    finally:
        rt.metrics.count_webhook(channel, str(status))
        request_line(
            {
                "channel": channel,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                **summary,
            }
        )
    return web.Response(status=status, text="ok" if status == 200 else "")


async def _handle_webhook(rt: Runtime, request: web.Request) -> tuple[int, str, dict[str, Any]]:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return 413, "unknown", {"reason": "too_large"}
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return 413, "unknown", {"reason": "too_large"}
    try:
        verify_signature(rt.secrets, body, request.headers.get("X-Hub-Signature-256"))
    except SignatureError as error:
        return error.status, "unknown", {"reason": f"signature_{error.reason}"}
    try:
        payload = decode_body(body)
    except PayloadError as error:
        return 400, "unknown", {"reason": error.reason}
    kind = payload.get("object")
    adapter = BY_OBJECT.get(kind) if isinstance(kind, str) else None
    if adapter is None:
        rt.metrics.count_event("unknown", "unknown_object", "skipped")
        return 200, "unknown", {"reason": "unknown_object"}
    channel = adapter.channel
    try:
        events = adapter.parse(payload)
    except Exception:  # adapters never raise by contract; if one does, Meta must not retry
        log.error("adapter_parse_error", channel=channel.value, exc_info=True)
        rt.metrics.count_event(channel.value, "parse_error", "skipped")
        return 200, channel.value, {"reason": "parse_error"}
    work, decided = prepare(events, rt.policy, rt.keyring)
    decisions: list[tuple[Prepared, Decision]] = []
    if work:
        try:
            decisions = await rt.ingest.record(work)
        except StoreUnavailable:
            return 503, channel.value, {"reason": "store_unavailable"}
    outcomes = _outcomes(decided, decisions)
    for kind, decision in outcomes:
        rt.metrics.count_event(channel.value, kind, decision)
    if rt.worker is not None and any(d is Decision.REPLY for _, d in decisions):
        rt.worker.wake([channel])
    return (
        200,
        channel.value,
        {
            "events": len(events),
            "kinds": _tally(kind for kind, _ in outcomes),
            "decisions": _tally(decision for _, decision in outcomes),
        },
    )


def _outcomes(
    decided: list[tuple[Event, Decision]], decisions: list[tuple[Prepared, Decision]]
) -> list[tuple[str, str]]:
    """(kind, decision) of every event in a webhook, as the metrics and the log name them."""
    outcomes = [(_event_kind(event), decision.value) for event, decision in decided]
    for item, decision in decisions:
        if isinstance(item, PreparedPatient):
            kind = item.kind.value
        else:
            kind = "echo" if isinstance(item, PreparedEcho) else "status"
        outcomes.append((kind, decision.value))
    return outcomes


def _tally(words: Iterable[str]) -> str:
    """``a:2,b:1``: each word and how often it occurs, sorted."""
    counts: dict[str, int] = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    return ",".join(f"{word}:{n}" for word, n in sorted(counts.items()))


async def webhook_get(request: web.Request) -> web.Response:
    """GET /webhook: Meta's subscription handshake."""
    rt = request.app[runtime_key]
    challenge = handshake_challenge(request.query, rt.verify_token)
    if challenge is None:
        log.info("handshake", status=403)
        return web.Response(status=403, text="forbidden")
    log.info("handshake", status=200)
    return web.Response(status=200, text=challenge, content_type="text/plain")


async def healthz(_: web.Request) -> web.Response:
    """GET /healthz: the process runs."""
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: the store answers; a failed template edit is named but stays ready."""
    rt = request.app[runtime_key]
    if not await rt.store.ping():
        return web.Response(status=503, text="store unavailable")
    failed = rt.templates.failed_files
    if failed:
        names = ", ".join(failed)
        return web.Response(
            text=f"ok; template edit not applied ({names}): keeping the last good version"
        )
    return web.Response(text="ok")


async def metrics_view(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    rt = request.app[runtime_key]
    return web.Response(
        body=rt.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
    )


def build_policy(settings: Settings) -> IngestPolicy:
    """The ingest rules' numbers from the settings."""
    return IngestPolicy(
        accounts={ch: cfg.account_id for ch, cfg in settings.send_configs().items()},
        app_id=settings.meta_app_id,
        cooldown=settings.reply_cooldown_hours * 3600,
        staff_quiet=settings.staff_quiet_hours * 3600,
        max_age=settings.reply_max_age_hours * 3600,
    )


def create_app(
    settings: Settings,
    *,
    templates: LiveTemplates,
    store: Store | None = None,
    clock: Callable[[], float] = time.time,
    run_worker: bool = True,
    worker_options: Mapping[str, Any] | None = None,
    template_poll: float = 1.0,
    retry_policy: RetryPolicy | None = None,
) -> web.Application:
    """The whole service; every long-lived resource opens and closes in ``cleanup_ctx``."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        handler_args={"auto_decompress": False},
    )
    metrics = Metrics()
    keyring = Keyring(settings.pseudonym_key.get_secret_value())
    store = store if store is not None else open_store(settings.database_url)
    policy = build_policy(settings)
    rt = Runtime(
        settings=settings,
        store=store,
        keyring=keyring,
        metrics=metrics,
        templates=templates,
        policy=policy,
        ingest=GroupCommit(store, policy, clock),
        secrets=settings.app_secrets,
        verify_token=settings.meta_verify_token.get_secret_value().encode("utf-8"),
        clock=clock,
    )
    app[runtime_key] = rt
    templates.on_reload = lambda ok: metrics.template_reloads.labels("ok" if ok else "failed").inc()
    app.router.add_get("/webhook", webhook_get)
    app.router.add_post("/webhook", webhook_post)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.on_response_prepare.append(_security_headers)

    async def store_ctx(_: web.Application) -> AsyncIterator[None]:
        await rt.store.open()
        yield
        await rt.store.close()

    async def templates_ctx(_: web.Application) -> AsyncIterator[None]:
        task = asyncio_task(templates.watch(template_poll), "templates")
        yield
        await cancel(task)

    async def purge_ctx(_: web.Application) -> AsyncIterator[None]:
        task = asyncio_task(_purge_daily(rt), "purge")
        yield
        await cancel(task)

    async def worker_ctx(_: web.Application) -> AsyncIterator[None]:
        async with new_session() as session:
            sender = GraphClient(session, policy=retry_policy)
            rates = {
                Channel.WHATSAPP: settings.whatsapp_sends_per_second,
                Channel.MESSENGER: MESSENGER_RATE,
                Channel.INSTAGRAM: MESSENGER_RATE,
            }
            worker = ReplyWorker(
                store=rt.store,
                sender=sender,
                adapters=REGISTRY,
                render=templates.render,
                send_configs=settings.send_configs(),
                keyring=keyring,
                metrics=metrics,
                max_age=settings.reply_max_age_hours * 3600,
                rates=rates,
                clock=clock,
                **dict(worker_options or {}),
            )
            rt.worker = worker
            task = asyncio_task(worker.run(), "worker")
            yield
            await worker.stop()
            await cancel(task)
            rt.worker = None

    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(templates_ctx)
    app.cleanup_ctx.append(purge_ctx)
    if run_worker:
        app.cleanup_ctx.append(worker_ctx)
    return app


async def _purge_daily(rt: Runtime) -> None:
    while True:
        try:
            counts = await rt.store.purge(rt.clock(), rt.settings.contact_log_retention_days)
            log.info(
                "retention_purge",
                contacts=counts.contacts,
                seen=counts.seen,
                jobs=counts.jobs,
                other=counts.other,
            )
        except StoreUnavailable:
            log.warning("retention_purge_failed")
        await asyncio.sleep(PURGE_INTERVAL)


def asyncio_task(coro: Any, name: str) -> asyncio.Task[None]:
    """A named background task whose reference the caller keeps."""
    return asyncio.create_task(coro, name=name)


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
