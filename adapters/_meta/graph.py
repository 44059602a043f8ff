"""The Graph API transport: posts one adapter request, one attempt, and says what happened.

One ``aiohttp.ClientSession`` serves all three channels for the life of the process. Whether
and when to try again is decided by ``bot.retry`` on the error raised here, which tells apart
exactly what the reply job needs to know:

* no connection could be made (``ClientConnectorError``, ``ConnectionTimeoutError``): the
  request never left this process, ``DeliveryError(TRANSIENT)``;
* Meta answered with an error: ``GraphError``, classified in ``adapters._meta.errors``, with
  ``Retry-After`` or Meta's documented minimum wait;
* the request was written and its answer lost (timeout, reset, disconnect): Meta may have
  delivered it and has no idempotency key, so ``DeliveryError(ambiguous=True)``;
* a request that can never succeed (a body that cannot be encoded, a malformed URL):
  ``PERMANENT`` or ``ALERT``.

Nothing here logs or raises with the token, the request body or Meta's response text:
exceptions carry fixed words, status codes and Meta's numeric codes only.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Self

import aiohttp

from adapters._meta.errors import (
    minimum_wait,
    parse_error_body,
    retry_after_seconds,
    rule_for,
    usage_from_headers,
)
from bot.adapter import Outbound, SendResult
from bot.errors import DeliveryError, ErrorClass, GraphError

__all__ = ["DEFAULT_TIMEOUT", "GraphTransport", "new_session"]

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3, sock_read=8)
"""Graph calls are small: a stuck call must not hold a worker for aiohttp's default 5 minutes.

``connect`` (pool wait + TCP + TLS) is below ``total``, so a timeout while connecting always
surfaces as ``ConnectionTimeoutError``; a bare ``TimeoutError`` means the request was written.
"""

MAX_RESPONSE_BYTES = 64 * 1024  # Graph send answers are a few hundred bytes

# The request never left this process: safe to send again.
_CONNECT_PHASE: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,  # DNS, refused, unreachable, TLS handshake
    aiohttp.ConnectionTimeoutError,  # pool wait / TCP / TLS exceeded ``connect``
)


def new_session(
    *,
    timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    limit: int = 100,
    limit_per_host: int = 64,
) -> aiohttp.ClientSession:
    """A session shaped for Graph calls; the caller closes it."""
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


def _encode(outbound: Outbound) -> bytes:
    try:
        return json.dumps(outbound.body, ensure_ascii=False, separators=(",", ":")).encode()
    except (TypeError, ValueError):  # UnicodeEncodeError included: a lone surrogate in an id
        raise DeliveryError(
            "graph request cannot be encoded", error_class=ErrorClass.PERMANENT
        ) from None


class GraphTransport:
    """``bot.adapter.Transport`` over one ``aiohttp`` session."""

    def __init__(self, session: aiohttp.ClientSession, *, owns_session: bool = False) -> None:
        self._session = session
        self._owns_session = owns_session

    @classmethod
    def open(
        cls, *, timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT, limit: int = 100
    ) -> GraphTransport:
        """A transport owning a new session from ``new_session``; ``close()`` closes it.

        Call it inside a running event loop (``aiohttp`` sessions belong to one loop).
        """
        return cls(new_session(timeout=timeout, limit=limit), owns_session=True)

    async def close(self) -> None:
        """Close the session if this transport opened it; a caller's session is left alone."""
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

    async def post(self, outbound: Outbound) -> SendResult:
        """POST ``outbound`` once; Meta's message id on success (see the module for errors)."""
        payload = _encode(outbound)
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
        except _CONNECT_PHASE as exc:
            raise DeliveryError(
                f"graph connect failed: {type(exc).__name__}", error_class=ErrorClass.TRANSIENT
            ) from None
        except aiohttp.InvalidURL:
            raise DeliveryError("graph url invalid", error_class=ErrorClass.ALERT) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Written (or partly written) and then lost: Meta may have delivered it.
            raise DeliveryError(
                f"graph send outcome unknown: {type(exc).__name__}",
                error_class=ErrorClass.TRANSIENT,
                ambiguous=True,
            ) from None

        usage = usage_from_headers(response_headers)
        if 200 <= status <= 299:
            return SendResult(_message_id(body) if body is not None else None, usage)

        code, subcode = parse_error_body(body) if body is not None else (None, None)
        retry_after = retry_after_seconds(response_headers)
        if retry_after is None and usage is not None and usage.regain_after:
            retry_after = usage.regain_after  # Graph rarely sends Retry-After; this is its own
        floor = minimum_wait(code)
        if floor and (retry_after is None or retry_after < floor):
            retry_after = floor
        rule = rule_for(status, code, subcode)
        raise GraphError(
            status=status,
            code=code,
            subcode=subcode,
            error_class=rule.error_class,
            retry_after=retry_after,
            sent=rule.sent,
            retry_for=rule.retry_for,
            usage=usage,
        )
