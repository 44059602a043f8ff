"""The one Graph API client of a process: POSTs adapters' requests, retries what is safe to retry.

One ``aiohttp.ClientSession`` serves all three channels (created in the app's ``cleanup_ctx``
with ``new_session()``, or owned by the client through ``GraphClient.open()``). A send is
retried by tenacity on a typed predicate only when Meta certainly did not act on it:

* the connection could not be made (``ClientConnectorError``, ``ConnectionTimeoutError``): the
  request never left this process;
* Meta answered with an error classified ``TRANSIENT`` or ``RATE_LIMITED``
  (``adapters._meta.errors``), waiting at least as long as ``Retry-After`` asks.

A timeout, reset or disconnect after the request was written is *ambiguous*: Meta may have
delivered the message and has no idempotency key, so it is not retried here; it is raised as
``DeliveryError(ambiguous=True)`` for the caller's settle-or-resend-once logic.

Nothing here ever logs or raises with the token, the request body or Meta's response text:
exceptions carry fixed words, status codes and Meta's numeric codes only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from adapters._meta.errors import (
    classify,
    minimum_wait,
    parse_error_body,
    retry_after_seconds,
)
from bot.adapter import Outbound
from bot.errors import DeliveryError, ErrorClass, GraphError

__all__ = [
    "DEFAULT_TIMEOUT",
    "ErrorHook",
    "GraphClient",
    "RetryPolicy",
    "SendResult",
    "new_session",
]

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3, sock_read=8)
"""Graph calls are small: a stuck call must not hold a worker for aiohttp's default 5 minutes.

``connect`` (pool wait + TCP + TLS) is below ``total``, so a timeout while connecting always
surfaces as ``ConnectionTimeoutError``; a bare ``TimeoutError`` means the request was written.
"""

MAX_RESPONSE_BYTES = 64 * 1024  # Graph send answers are a few hundred bytes

ErrorHook = Callable[[ErrorClass], None]
"""Called once per failed attempt with its class (wire it to ``graph_errors_total``)."""

AttemptHook = Callable[[int], Awaitable[None]]
"""Awaited before each attempt with its number (1, 2, …): the request is about to be written."""

NotDeliveredHook = Callable[[], Awaitable[None]]
"""Awaited after an attempt that certainly did not deliver (no connection, or an error answer)."""

_RETRYABLE = frozenset({ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED})
# The request never left this process: safe to send again.
_CONNECT_PHASE: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,  # DNS, refused, unreachable, TLS handshake
    aiohttp.ConnectionTimeoutError,  # pool wait / TCP / TLS exceeded ``connect``
)
# What ends an attempt; a DeliveryError marked ambiguous is the one case that may have landed.
_NOT_DELIVERED: tuple[type[BaseException], ...] = (*_CONNECT_PHASE, DeliveryError)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How hard one send tries before the error goes back to the caller.

    ``initial``, ``max_wait`` and ``jitter`` shape the exponential backoff
    (``initial * 2**(n-1) + uniform(0, jitter)``, at most ``max_wait``); a ``Retry-After`` or
    Meta's own minimum wait lengthens a wait; when Meta asks for more than ``max_retry_after``
    the send is not retried here (the caller re-queues it, ``GraphError.retry_after`` says how
    long). No attempt starts once ``deadline`` seconds would be exceeded by the wait before it.
    """

    max_attempts: int = 4
    initial: float = 0.5
    max_wait: float = 8.0
    jitter: float = 0.5
    deadline: float = 30.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("initial", "max_wait", "jitter", "deadline", "max_retry_after"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be a number >= 0")


@dataclass(frozen=True, slots=True)
class SendResult:
    """Meta accepted the send; ``message_id`` (``wamid…`` / ``m_…``) when its answer had one.

    The id is hidden from ``repr``: a WhatsApp ``wamid`` embeds the phone number.
    """

    message_id: str | None

    def __repr__(self) -> str:
        shown = "None" if self.message_id is None else "'…'"
        return f"SendResult(message_id={shown})"


def new_session(
    *,
    timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    limit: int = 100,
    limit_per_host: int = 64,
) -> aiohttp.ClientSession:
    """A session shaped for Graph calls; the caller closes it (e.g. in ``cleanup_ctx``)."""
    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit_per_host,
        ttl_dns_cache=300,
        keepalive_timeout=10,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        raise_for_status=False,
        headers={"User-Agent": "practice-bot", "Accept": "application/json"},
    )


def _message_id(raw: bytes) -> str | None:
    """The message id of a 2xx answer (WhatsApp ``messages[0].id``, else ``message_id``)."""
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict):
        return None
    messages = decoded.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        if isinstance(wamid, str) and wamid:
            return wamid
    mid = decoded.get("message_id")
    if isinstance(mid, str) and mid:
        return mid
    return None


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES:
        chunk = await response.content.read(MAX_RESPONSE_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _is_retryable(exc: BaseException) -> bool:
    """The typed retry predicate: connect-phase errors and transient / rate-limited answers."""
    if isinstance(exc, _CONNECT_PHASE):
        return True
    return isinstance(exc, GraphError) and not exc.ambiguous and exc.error_class in _RETRYABLE


class _AskedTooLong(stop_base):
    """Stop when Meta asks for a longer pause than ``max_retry_after``: re-queue instead."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._limit = policy.max_retry_after

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        return isinstance(exc, GraphError) and (exc.retry_after or 0.0) > self._limit


class _Wait(wait_base):
    """Jittered exponential backoff, lengthened to a ``Retry-After`` or Meta's minimum."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._backoff = wait_exponential_jitter(
            multiplier=policy.initial, max=policy.max_wait, jitter=policy.jitter
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = self._backoff(retry_state)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, GraphError) and exc.retry_after:  # includes Meta's minimum wait
            wait = max(wait, min(exc.retry_after, self._policy.max_retry_after))
        return wait


def _error_fields(exc: BaseException | None) -> dict[str, Any]:
    if isinstance(exc, GraphError):
        return {
            "error_class": str(exc.error_class),
            "status": exc.status,
            "code": exc.code,
            "subcode": exc.subcode,
        }
    return {"error_class": str(ErrorClass.TRANSIENT), "error_type": type(exc).__name__}


def _log_retry(retry_state: RetryCallState) -> None:
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None and outcome.failed else None
    log.warning(
        "graph_retry",
        attempt=retry_state.attempt_number,
        wait_s=round(retry_state.upcoming_sleep, 3),
        **_error_fields(exc),
    )


class GraphClient:
    """Sends ``Outbound`` requests through one shared session, with the retry policy."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        policy: RetryPolicy | None = None,
        on_error: ErrorHook | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        owns_session: bool = False,
    ) -> None:
        self._session = session
        self._policy = policy if policy is not None else RetryPolicy()
        self._on_error = on_error
        self._sleep = sleep
        self._owns_session = owns_session

    @classmethod
    async def open(
        cls,
        *,
        policy: RetryPolicy | None = None,
        on_error: ErrorHook | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        client_timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        limit: int = 100,
    ) -> Self:
        """A client that owns a new session from ``new_session``; ``close()`` closes it."""
        return cls(
            new_session(timeout=client_timeout, limit=limit),
            policy=policy,
            on_error=on_error,
            sleep=sleep,
            owns_session=True,
        )

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy every send follows."""
        return self._policy

    async def close(self) -> None:
        """Close the session if this client opened it; a caller's session is left alone."""
        if self._owns_session and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(
        self,
        outbound: Outbound,
        *,
        on_error: ErrorHook | None = None,
        on_attempt: AttemptHook | None = None,
        on_not_delivered: NotDeliveredHook | None = None,
    ) -> SendResult:
        """POST ``outbound`` and return Meta's message id, retrying only what is safe.

        ``on_error`` (besides the client's own hook) is called once per failed attempt, e.g.
        to count it under the sending channel. ``on_attempt`` and ``on_not_delivered`` bracket
        each attempt, so a caller can record exactly when a request may be on the wire (a crash
        while waiting between attempts is then not mistaken for an ambiguous send).
        Raises ``GraphError`` for Meta's error answers
        (the last one when retries run out), ``DeliveryError(ambiguous=True)`` when the request
        was written but its answer was lost, and a non-ambiguous ``DeliveryError`` when no
        connection could be made.
        """
        policy = self._policy
        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=stop_any(
                stop_after_attempt(policy.max_attempts),
                stop_before_delay(policy.deadline),
                _AskedTooLong(policy),
            ),
            wait=_Wait(policy),
            retry=retry_if_exception(_is_retryable),
            before_sleep=_log_retry,
            reraise=True,
        )
        result: SendResult | None = None
        try:
            async for attempt in retrying:
                with attempt:
                    if on_attempt is not None:
                        await on_attempt(attempt.retry_state.attempt_number)
                    try:
                        result = await self._attempt(outbound, on_error)
                    except _NOT_DELIVERED as exc:
                        if on_not_delivered is not None and not getattr(exc, "ambiguous", False):
                            await on_not_delivered()
                        raise
        except _CONNECT_PHASE as exc:
            raise DeliveryError(
                f"graph connect failed: {type(exc).__name__}",
                error_class=ErrorClass.TRANSIENT,
            ) from None
        if result is None:  # pragma: no cover - tenacity either returns a result or raises
            raise DeliveryError("graph send gave no result", error_class=ErrorClass.TRANSIENT)
        return result

    def _failed(self, error_class: ErrorClass, extra: ErrorHook | None) -> None:
        if self._on_error is not None:
            self._on_error(error_class)
        if extra is not None:
            extra(error_class)

    async def _attempt(self, outbound: Outbound, on_error: ErrorHook | None) -> SendResult:
        payload = json.dumps(outbound.body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Authorization": f"Bearer {outbound.token}",
            "Content-Type": "application/json",
        }
        body: bytes | None
        try:
            async with self._session.post(
                outbound.url,
                data=payload,
                headers=headers,
                allow_redirects=False,
                raise_for_status=False,
            ) as response:
                status = response.status
                response_headers = response.headers
                try:
                    body = await _read_capped(response)
                except (aiohttp.ClientError, TimeoutError):
                    body = None  # the status line arrived; only the body was lost
        except _CONNECT_PHASE:
            self._failed(ErrorClass.TRANSIENT, on_error)
            raise
        except aiohttp.InvalidURL:
            self._failed(ErrorClass.ALERT, on_error)
            raise DeliveryError("graph url invalid", error_class=ErrorClass.ALERT) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Written (or partly written) and then lost: Meta may have delivered it.
            self._failed(ErrorClass.TRANSIENT, on_error)
            raise DeliveryError(
                f"graph send outcome unknown: {type(exc).__name__}",
                error_class=ErrorClass.TRANSIENT,
                ambiguous=True,
            ) from None

        if 200 <= status <= 299:
            return SendResult(_message_id(body) if body is not None else None)

        code, subcode = parse_error_body(body) if body is not None else (None, None)
        error_class = classify(status, code, subcode)
        retry_after = retry_after_seconds(response_headers)
        floor = minimum_wait(code)
        if floor and (retry_after is None or retry_after < floor):
            retry_after = floor
        self._failed(error_class, on_error)
        raise GraphError(
            status=status,
            code=code,
            subcode=subcode,
            error_class=error_class,
            retry_after=retry_after,
        )
