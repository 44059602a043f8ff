"""The aiohttp application: one webhook endpoint for three channels, health and metrics.

The handlers are thin. ``POST /webhook`` reads the raw bytes within the size limit and hands
them to ``bot.webhook``, which verifies, parses and records them; only then does it answer.
Sending happens in the worker (``bot.worker``, ``bot.job``), never in a handler. Every
long-lived resource (store, the watcher of texts and a group's files, retention, the worker
and its Graph session) opens and closes in ``cleanup_ctx``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from structlog.typing import FilteringBoundLogger

from bot import __version__
from bot.adapter import Platform
from bot.body_budget import BodyBudget
from bot.errors import ConfigError, StoreUnavailable, TemplateError
from bot.ingest import GroupCommit
from bot.job import Delivery
from bot.logging import REQUEST_ID, debug_enabled
from bot.metrics import Metrics
from bot.practices import (
    GroupFiles,
    Practice,
    Practices,
    ServedPractice,
    changed_live,
    restart_variables,
    serve_practice,
)
from bot.pseudonym import Keyring
from bot.retry import RetryPolicy
from bot.settings import Settings
from bot.store import Store, describe_store, open_store
from bot.templates import InvalidTemplatesError, LiveTemplates
from bot.templates.live import folder_fingerprint
from bot.webhook import WebhookResult, Webhooks
from bot.worker import Pacer, ReplyWorker, WorkerConfig

__all__ = [
    "MAX_BODY_BYTES",
    "SERVER_OPTIONS",
    "AccessLogger",
    "Runtime",
    "create_app",
    "runtime_key",
]

log = structlog.get_logger("bot.app")

MAX_BODY_BYTES = 4 * 1024 * 1024  # SPEC §3: Meta's batches reach ~3 MB
# Bodies held before their signature is known (bot.body_budget): up to 256 ordinary webhooks
# of 64 KiB at once, and three bodies near the limit.
SMALL_BODY_BYTES = 64 * 1024
UNVERIFIED_SMALL_BYTES = 16 * 1024 * 1024
UNVERIFIED_LARGE_BYTES = 3 * MAX_BODY_BYTES
BODY_TIMEOUT = 30.0  # seconds to receive a whole body once its headers are in
BUSY_RETRY_AFTER = 1  # seconds, in the Retry-After of a webhook refused for the budget
# What ``serve`` gives aiohttp's server. aiohttp closes a connection whose next request has
# not completed its headers within the keep-alive timeout, counted from the connection's
# start or its last response: that timer is the header timeout (and ends idle keep-alive
# connections). A body left unread by a refusal is drained for ``lingering_time`` before the
# connection closes, so a refused slow upload is let go after a second, not ten.
SERVER_OPTIONS: dict[str, Any] = {"keepalive_timeout": 20.0, "lingering_time": 1.0}
CLIENT_CLOSED = 499  # nginx's status for a request the client abandoned; never sent on the wire
PURGE_INTERVAL = 24 * 3600.0


def _request_ids() -> Callable[[], str]:
    """Ids for the log lines of one webhook: this process's prefix and a counter."""
    prefix = os.urandom(4).hex()
    numbers = itertools.count(1)
    return lambda: f"{prefix}-{next(numbers):x}"


@dataclass(slots=True)
class Runtime:
    """Everything a request handler needs, built once per app."""

    settings: Settings
    platform: Platform
    store: Store
    metrics: Metrics
    practices: Practices  # every practice, the single one included; replaced on a change
    pacer: Pacer
    webhooks: Webhooks
    verify_token: bytes
    clock: Callable[[], float]
    group_files: GroupFiles | None = None  # a group's configuration, watched for changes
    group_problems: list[str] = field(default_factory=list)  # why its last change was refused
    reload_requested: asyncio.Event = field(default_factory=asyncio.Event)  # SIGHUP
    worker: ReplyWorker | None = None
    request_ids: Callable[[], str] = field(default_factory=_request_ids)
    body_timeout: float = BODY_TIMEOUT
    bodies: BodyBudget = field(
        default_factory=lambda: BodyBudget(
            small_body=SMALL_BODY_BYTES,
            small_limit=UNVERIFIED_SMALL_BYTES,
            large_limit=UNVERIFIED_LARGE_BYTES,
        )
    )
    # The webhook line's logger, bound once logging is configured: the module's lazy proxy
    # would look the configuration up again for every webhook.
    webhook_log: FilteringBoundLogger = field(default_factory=log.bind)

    @property
    def templates(self) -> LiveTemplates:
        """The texts of the practice (a group's first practice)."""
        return self.practices.served[0].templates

    def serve(self, practices: Practices) -> None:
        """Answer for ``practices`` from now on: routes, texts, sends and pace."""
        for practice in practices.served:
            practice.templates.on_reload = self._count_reload
        self.practices = practices
        self.webhooks.policy = practices.policy
        self.pacer.configure(practices.rates())

    async def keep_texts(self, practices: Sequence[ServedPractice]) -> None:
        """Keep the texts in use of ``practices`` as their last good sets."""
        if not practices:
            return
        sets = {p.slug: p.templates.current.texts for p in practices}
        try:
            await self.store.save_texts(sets, self.clock())
        except StoreUnavailable:
            log.warning("templates_not_kept")

    def _count_reload(self, ok: bool) -> None:
        self.metrics.template_reloads.labels("ok" if ok else "failed").inc()


runtime_key = web.AppKey("runtime", Runtime)


class AccessLogger(AbstractAccessLogger):
    """Access log without query strings, client addresses or user agents, at DEBUG."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        try:
            resource = request.match_info.route.resource  # type: ignore[attr-defined]
        except (AttributeError, AssertionError):
            # A request aiohttp refused before routing (a malformed request line, headers
            # that are too long) has no route: aiohttp asserts when asked for one.
            resource = None
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


async def webhook_post(request: web.Request) -> web.Response:
    """POST /webhook: read within the limit, let ``bot.webhook`` decide, then answer."""
    rt = request.app[runtime_key]
    started = time.perf_counter()
    result = WebhookResult(500)  # what aiohttp answers if anything below raises
    bound = REQUEST_ID.set(rt.request_ids())
    try:
        result = await _receive(rt, request)
    except asyncio.CancelledError:
        # aiohttp cancels the handler of a client that went away (when handler cancellation
        # is on) and of a request still running when shutdown gives up waiting.
        result = WebhookResult(CLIENT_CLOSED, result.channel, {"reason": "cancelled"})
        raise
    finally:
        channel = result.channel_label
        rt.metrics.count_webhook(channel, str(result.status))
        rt.webhook_log.info(
            "webhook",
            channel=channel,
            status=result.status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            **result.fields,
        )
        REQUEST_ID.reset(bound)
    if result.queues and rt.worker is not None:
        rt.worker.wake(result.queues)
    response = web.Response(status=result.status, text="ok" if result.status == 200 else "")
    if result.retry_after is not None:
        response.headers["Retry-After"] = str(result.retry_after)
    if result.close:
        response.force_close()  # once what is left of the body is drained (lingering_time)
    return response


async def _receive(rt: Runtime, request: web.Request) -> WebhookResult:
    declared = request.content_length
    if (declared or 0) > MAX_BODY_BYTES:
        return WebhookResult(413, fields={"reason": "too_large"})
    held = declared if declared is not None else MAX_BODY_BYTES  # a chunked body may grow
    if not rt.bodies.take(held):
        return WebhookResult(
            503, fields={"reason": "busy"}, retry_after=BUSY_RETRY_AFTER, close=True
        )
    try:
        return await _read_and_handle(rt, request)
    finally:
        rt.bodies.give_back(held)


async def _read_and_handle(rt: Runtime, request: web.Request) -> WebhookResult:
    try:
        if request.content.is_eof():  # all of it came with the headers: nothing to wait for
            body = await request.read()
        else:
            async with asyncio.timeout(rt.body_timeout):
                body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return WebhookResult(413, fields={"reason": "too_large"})
    except TimeoutError:
        return WebhookResult(408, fields={"reason": "body_timeout"}, close=True)
    except ConnectionResetError:
        # The client went away mid-body: nothing was received, nothing is wrong here. Meta
        # redelivers what it did not finish sending; anyone else must not inflate the 5xx.
        return WebhookResult(CLIENT_CLOSED, fields={"reason": "client_closed"})
    return await rt.webhooks.handle(body, request.headers.get("X-Hub-Signature-256"))


async def webhook_get(request: web.Request) -> web.Response:
    """GET /webhook: Meta's subscription handshake."""
    rt = request.app[runtime_key]
    challenge = rt.platform.handshake_challenge(request.query, rt.verify_token)
    if challenge is None:
        log.info("handshake", status=403)
        return web.Response(status=403, text="forbidden")
    log.info("handshake", status=200)
    return web.Response(status=200, text=challenge, content_type="text/plain")


async def healthz(_: web.Request) -> web.Response:
    """GET /healthz: the process runs."""
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: the store answers; a failed edit of a text or of a group's files is named
    but stays ready (the last good version is in use)."""
    rt = request.app[runtime_key]
    if not await rt.store.ping():
        return web.Response(status=503, text="store unavailable")
    notes = []
    failed = [
        problem
        for practice in rt.practices.served
        if practice.templates.error is not None
        for problem in practice.templates.error.problems
    ]
    if failed:
        problems = "; ".join(failed)
        notes.append(f"template edit not applied ({problems}): keeping the last good version")
    if rt.group_problems:
        problems = "; ".join(rt.group_problems)
        notes.append(f"practices edit not applied ({problems}): keeping the last good version")
    return web.Response(text="; ".join(["ok", *notes]))


async def metrics_view(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    rt = request.app[runtime_key]
    return web.Response(
        body=rt.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
    )


def create_app(
    settings: Settings,
    *,
    platform: Platform,
    templates: LiveTemplates,
    store: Store | None = None,
    clock: Callable[[], float] = time.time,
    run_worker: bool = True,
    worker: WorkerConfig | None = None,
    template_poll: float = 1.0,
    retry_policy: RetryPolicy | None = None,
    group: Sequence[ServedPractice] = (),
    group_files: GroupFiles | None = None,
) -> web.Application:
    """The whole service; every long-lived resource opens and closes in ``cleanup_ctx``.

    ``platform`` is the adapter registry (``adapters.REGISTRY`` in the service). A group's
    practices come in ``group`` (SPEC §9); ``settings`` and ``templates`` then are the
    first practice's, whose app-level settings every practice shares. With ``group_files``
    the group follows changes of its files (and SIGHUP) while it runs.
    """
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        handler_args={"auto_decompress": False},
    )
    metrics = Metrics(group=bool(group))
    keyring = Keyring(settings.pseudonym_key.get_secret_value())
    store = store if store is not None else open_store(settings.database_url)
    practices = Practices(
        list(group) or [ServedPractice("", settings, templates)], app_id=settings.meta_app_id
    )
    rt = Runtime(
        settings=settings,
        platform=platform,
        store=store,
        metrics=metrics,
        practices=practices,
        pacer=Pacer(practices.rates(), metrics),
        webhooks=Webhooks(
            platform=platform,
            secrets=settings.app_secrets,
            policy=practices.policy,
            keyring=keyring,
            ingest=GroupCommit(store, clock),
            metrics=metrics,
        ),
        verify_token=settings.meta_verify_token.get_secret_value().encode("utf-8"),
        clock=clock,
        group_files=group_files,
    )
    rt.serve(practices)
    app[runtime_key] = rt
    app.router.add_get("/webhook", webhook_get)
    app.router.add_post("/webhook", webhook_post)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.on_response_prepare.append(_security_headers)
    if settings.admin_password_hash is not None:
        # The manager's page (SPEC §10); without the admin's hash /admin is a plain 404.
        from bot.admin.auth import Gate, password_hashes  # noqa: PLC0415 - only with the page
        from bot.admin.views import add_admin  # noqa: PLC0415

        gate = Gate(keyring, lambda: password_hashes(settings, rt.practices.served))
        add_admin(app, gate, rt)

    async def watch_ctx(_: web.Application) -> AsyncIterator[None]:
        task = background(_watch(rt, template_poll), "watch")
        on_sighup = rt.group_files is not None and _listen(signal.SIGHUP, rt.reload_requested.set)
        yield
        if on_sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await cancel(task)

    async def purge_ctx(_: web.Application) -> AsyncIterator[None]:
        task = background(_purge_daily(rt), "purge")
        yield
        await cancel(task)

    async def worker_ctx(_: web.Application) -> AsyncIterator[None]:
        async with platform.open_transport() as transport:
            delivery = Delivery(
                store=rt.store,
                transport=transport,
                adapters=platform.adapters,
                senders=lambda: rt.practices,
                keyring=keyring,
                metrics=metrics,
                retry=retry_policy if retry_policy is not None else RetryPolicy(),
                clock=clock,
                on_usage=rt.pacer.observe,
            )
            rt.worker = ReplyWorker(
                store=rt.store,
                run=delivery.run,
                metrics=metrics,
                pacer=rt.pacer,
                clock=clock,
                config=worker,
            )
            task = background(rt.worker.run(), "worker")
            yield
            await rt.worker.stop()
            await cancel(task)
            rt.worker = None

    async def started(_: web.Application) -> None:
        # After every resource above opened: says what this process is, in one line.
        served = rt.practices.served
        failed = [name for p in served for name in p.templates.failed_files]
        log.info(
            "service_started",
            version=__version__,
            host=settings.host,
            port=settings.port,
            channels="; ".join(f"{p.slug} {p.channels}".strip() for p in served),
            store=describe_store(settings.database_url),
            templates=f"{settings.templates_dir.absolute()}: "
            + (f"edits not applied in {', '.join(failed)}" if failed else "ok"),
        )

    app.on_startup.append(started)
    app.cleanup_ctx.append(lambda _: _store_open(rt))
    app.cleanup_ctx.append(watch_ctx)
    app.cleanup_ctx.append(purge_ctx)
    if run_worker:
        app.cleanup_ctx.append(worker_ctx)
    return app


async def _purge_daily(rt: Runtime) -> None:
    while True:
        try:
            counts = await rt.store.purge(
                rt.clock(),
                rt.settings.contact_log_retention_days,
                practices=rt.practices.retention(),
            )
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


def _listen(signum: signal.Signals, callback: Callable[[], None]) -> bool:
    """Call ``callback`` on ``signum``; False where the loop cannot (not the main thread)."""
    try:
        asyncio.get_running_loop().add_signal_handler(signum, callback)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


async def _watch(rt: Runtime, interval: float) -> None:
    """Every ``interval`` seconds: reload every practice's changed texts, and a group's
    changed files (at once on SIGHUP).

    A changed group file is applied once it has stayed the same for one more look, so a
    file caught half-written is never applied.
    """
    files = rt.group_files
    applied = files.fingerprint() if files is not None else None
    pending = applied
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.reload_requested.wait(), interval)
        # Each folder looked at once this round: a group's practices share the group's.
        look = functools.cache(folder_fingerprint)
        for practice in rt.practices.served:
            if practice.templates.reload(look):
                await rt.keep_texts([practice])
            await asyncio.sleep(0)  # a group's hundreds of folders never hold up a webhook
        if files is None:
            continue
        seen = files.fingerprint()
        requested = rt.reload_requested.is_set()
        rt.reload_requested.clear()
        if requested or (seen != applied and seen == pending):
            applied = seen
            await _reload_group(rt, files)
        pending = seen


async def _reload_group(rt: Runtime, files: GroupFiles) -> None:
    """Serve the group as its files say now, or keep serving it as it was and say why."""
    running = {practice.slug: practice for practice in rt.practices.served}
    try:
        practices = await asyncio.to_thread(files.load)
        served = await asyncio.to_thread(_keep_or_serve, practices, running, rt.platform)
    except ConfigError as error:
        rt.group_problems = list(error.problems)
        log.error("practices_reload_failed", problems=error.problems)
        return
    except InvalidTemplatesError as error:
        rt.group_problems = list(error.problems)
        log.error(
            "practices_reload_failed",
            files=error.files,
            positions=[p.position for p in error.details],
        )
        return
    except Exception:  # a surprise must not stop the watcher; the group stays as it was
        rt.group_problems = [f"{files.folder}: could not be read (the log has the error)"]
        log.error("practices_reload_failed", exc_info=True)
        return
    rt.group_problems = []
    later = restart_variables(rt.settings, practices[0].settings)
    if later:
        log.warning("restart_needed", variables=later)
    kept = {p.slug for p in served if running.get(p.slug) is p}
    rt.serve(Practices(served, app_id=rt.settings.meta_app_id))
    await rt.keep_texts([p for p in served if p.slug not in kept])
    log.info(
        "practices_reloaded",
        practices=len(served),
        added=sorted(p.slug for p in served if p.slug not in running),
        changed=sorted(p.slug for p in served if p.slug in running and p.slug not in kept),
        removed=sorted(running.keys() - {p.slug for p in served}),
    )


async def _store_open(rt: Runtime) -> AsyncIterator[None]:
    """The store, open while the app runs; the texts are kept in it (or taken from it)."""
    await rt.store.open()
    try:
        await _texts_at_start(rt)
    except BaseException:
        await rt.store.close()
        raise
    yield
    await rt.store.close()


async def _texts_at_start(rt: Runtime) -> None:
    """Keep each practice's texts as its last good set; where the files are broken, serve
    the last good set the store kept instead, so a text never takes the service down.

    Raises:
        TemplateError: a practice's files are broken and no good set was ever kept.
    """
    good = [p for p in rt.practices.served if p.templates.has_set]
    await rt.keep_texts(good)
    problems: list[str] = []
    for practice in rt.practices.served:
        error = practice.templates.error
        if practice.templates.has_set or error is None:
            continue
        saved = await rt.store.saved_texts(practice.slug)
        if saved is not None and practice.templates.restore(saved.texts):
            log.error(
                "templates_serving_last_good",
                **({"practice": practice.slug} if practice.slug else {}),
                files=error.files,
                positions=[p.position for p in error.details],
                saved_at=datetime.fromtimestamp(saved.saved_at, UTC).isoformat(timespec="seconds"),
            )
            continue
        who = practice.slug or "the practice"
        why = (
            f"no good set of texts has been kept for {who} yet"
            if saved is None
            else f"the last good set kept for {who} does not pass today's checks either "
            "(the settings changed since, e.g. REPLY_LANGUAGES or the practice's details)"
        )
        problems += [
            *error.problems,
            f"{practice.templates.directory}: {why}, so there is nothing to serve meanwhile; "
            "mend the files above",
        ]
    if problems:
        raise TemplateError(problems)


def _keep_or_serve(
    practices: Sequence[Practice], running: dict[str, ServedPractice], platform: Platform
) -> list[ServedPractice]:
    """Each practice as it is served now when nothing of it changed, else with its texts
    loaded afresh (its hours, details or folders may have).

    Raises:
        InvalidTemplatesError: a new or changed practice's texts do not validate.
    """
    served = []
    for practice in practices:
        current = running.get(practice.slug)
        unchanged = (
            current is not None
            and not changed_live(current.settings, practice.settings)
            and (*current.templates.overlays, current.templates.directory)
            == practice.templates_dirs
        )
        if current is not None and unchanged:
            served.append(current)
        else:
            served.append(serve_practice(practice, platform.adapters))
    return served


def background(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """A named background task whose reference the caller keeps."""
    return asyncio.create_task(coro, name=name)


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
