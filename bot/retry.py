"""How hard one send tries: tenacity on a typed predicate, with backoff, a cap and a deadline.

Only a ``DeliveryError`` that certainly did not reach Meta and may succeed later is tried
again: class ``TRANSIENT`` or ``RATE_LIMITED`` and not ambiguous. An ambiguous send is never
retried here (Meta has no idempotency key); the reply job waits for its status instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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

from bot.errors import DeliveryError, ErrorClass, GraphError

__all__ = ["RetryPolicy", "error_fields"]

log = structlog.get_logger("bot.retry")

_RETRYABLE = frozenset({ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED})

T = TypeVar("T")


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

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """Await ``attempt()`` until it returns or raises what this policy does not retry.

        Raises:
            DeliveryError: the last attempt's, when retrying stopped; any other exception of
                an attempt at once.
        """
        async for trying in self._retrying(sleep):
            with trying:
                return await attempt()
        raise DeliveryError(  # pragma: no cover - tenacity either returns or raises
            "no attempt was made", error_class=ErrorClass.TRANSIENT
        )

    def _retrying(self, sleep: Callable[[float], Awaitable[None]]) -> AsyncRetrying:
        return AsyncRetrying(
            sleep=sleep,
            stop=stop_any(
                stop_after_attempt(self.max_attempts),
                stop_before_delay(self.deadline),
                _AskedTooLong(self.max_retry_after),
            ),
            wait=_Wait(self),
            retry=retry_if_exception(_is_retryable),
            before_sleep=_log_retry,
            reraise=True,
        )


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and not exc.ambiguous and exc.error_class in _RETRYABLE


def _failure(retry_state: RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None


class _AskedTooLong(stop_base):
    """Stop when Meta asks for a longer pause than ``max_retry_after``: re-queue instead."""

    def __init__(self, limit: float) -> None:
        self._limit = limit

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = _failure(retry_state)
        return isinstance(exc, DeliveryError) and (exc.retry_after or 0.0) > self._limit


class _Wait(wait_base):
    """Jittered exponential backoff, lengthened to a ``Retry-After`` or Meta's minimum."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._max_retry_after = policy.max_retry_after
        self._backoff = wait_exponential_jitter(
            multiplier=policy.initial, max=policy.max_wait, jitter=policy.jitter
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = self._backoff(retry_state)
        exc = _failure(retry_state)
        if isinstance(exc, DeliveryError) and exc.retry_after:  # includes Meta's minimum wait
            wait = max(wait, min(exc.retry_after, self._max_retry_after))
        return wait


def error_fields(exc: BaseException | None) -> dict[str, Any]:
    """What a log line may say about a failed send: its class and Meta's numbers only."""
    if isinstance(exc, GraphError):
        return {
            "error_class": str(exc.error_class),
            "code": exc.code,
            "subcode": exc.subcode,
            "http_status": exc.status,
        }
    if isinstance(exc, DeliveryError):
        return {"error_class": str(exc.error_class), "reason": exc.reason}
    return {"error_class": str(ErrorClass.TRANSIENT), "error_type": type(exc).__name__}


def _log_retry(retry_state: RetryCallState) -> None:
    log.warning(
        "graph_retry",
        attempt=retry_state.attempt_number,
        wait_s=round(retry_state.upcoming_sleep, 3),
        **error_fields(_failure(retry_state)),
    )
