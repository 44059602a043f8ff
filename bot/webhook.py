"""POST /webhook without a web framework: the body's bytes and signature in, a result out.

The aiohttp handler in ``bot.app`` only reads the body within the size limit, hands it here
and turns the result into a response and the webhook's log line. Everything in between is
here, in SPEC §3's order: the signature over the raw bytes, the JSON, the adapter the
payload's ``object`` names, its neutral events, the reply policy, and the durable record that
must exist before Meta is told 200.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import structlog

from bot.adapter import Platform
from bot.errors import ErrorClass, PayloadError, SignatureError, StoreUnavailable
from bot.events import Channel
from bot.ingest import Decision, GroupCommit, IngestPolicy, prepare
from bot.job import Queue
from bot.metrics import Metrics
from bot.pseudonym import Keyring

__all__ = ["WebhookResult", "Webhooks", "decode_body"]

log = structlog.get_logger("bot.webhook")


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _finite_float(text: str) -> float:
    """A JSON number as a float; one too large for a float (``1e999``) is not valid input."""
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


# Built once: ``json.loads`` with any keyword argument builds a new decoder on every call.
# NaN, Infinity and numbers that overflow to infinity are refused: SPEC §3 says 400.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


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


@dataclass(slots=True)
class WebhookResult:
    """What became of one webhook: the HTTP status to answer and what the log line says.

    ``channel`` is ``None`` until the payload's ``object`` named one; ``queues`` are those
    a reply job was queued in (the worker should look there now). ``retry_after``
    (seconds) and ``close`` shape a refusal: try again later, and not on this connection.
    """

    status: int
    channel: Channel | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    queues: frozenset[Queue] = frozenset()
    retry_after: int | None = None
    close: bool = False

    @property
    def channel_label(self) -> str:
        """The channel as metrics and logs name it; ``unknown`` before a body is parsed."""
        return self.channel.value if self.channel is not None else "unknown"


class Webhooks:
    """Verifies, parses and records webhooks; one per app."""

    def __init__(
        self,
        *,
        platform: Platform,
        secrets: tuple[bytes, ...],
        policy: IngestPolicy,
        keyring: Keyring,
        ingest: GroupCommit,
        metrics: Metrics,
    ) -> None:
        self._platform = platform
        self._secrets = secrets
        self.policy = policy  # replaced whole when a group's practices change
        self._keyring = keyring
        self._ingest = ingest
        self._metrics = metrics

    async def handle(self, body: bytes, signature: str | None) -> WebhookResult:
        """Everything after the body has been read, for any bytes and header.

        Bad input is an answer, never an exception; only a bug propagates (the handler then
        answers 500 and Meta redelivers).
        """
        try:
            self._platform.verify_signature(self._secrets, body, signature)
        except SignatureError as error:
            return WebhookResult(error.status, fields={"reason": f"signature_{error.reason}"})
        try:
            payload = decode_body(body)
        except PayloadError as error:
            return WebhookResult(400, fields={"reason": error.reason})
        name = payload.get("object")
        adapter = self._platform.for_object(name) if isinstance(name, str) else None
        if adapter is None:
            self._metrics.count_event("", "unknown", "unknown_object", Decision.SKIPPED.value)
            return WebhookResult(200, fields={"reason": "unknown_object"})
        channel = adapter.channel
        try:
            events = adapter.parse(payload)
        except Exception:  # adapters never raise by contract; if one does, Meta must not retry
            log.error("adapter_parse_error", channel=channel.value, exc_info=True)
            self._metrics.count_event("", channel.value, "parse_error", Decision.SKIPPED.value)
            return WebhookResult(200, channel, {"reason": "parse_error"})
        prepared = prepare(events, self.policy, self._keyring)
        for practice, code in prepared.alerts:
            # The account-level errors Meta reports only in statuses: the same alert as a send's.
            queue = Queue(practice, channel)
            log.error("send_alert", **queue.log_fields(), error_class="alert", code=code)
            self._metrics.graph_errors.labels(
                *self._metrics.scoped(practice, channel.value, ErrorClass.ALERT.value)
            ).inc()
        decisions: list[Decision] = []
        if prepared.work:
            try:
                decisions = await self._ingest.record(prepared.work)
            except StoreUnavailable:
                return WebhookResult(503, channel, {"reason": "store_unavailable"})
        outcomes = [
            *prepared.decided,
            *(
                (practice, kind, decision)
                for (practice, kind), decision in zip(prepared.kinds, decisions, strict=True)
            ),
        ]
        kinds: dict[str, int] = {}
        decided: dict[str, int] = {}
        queues: set[Queue] = set()
        for practice, kind, decision in outcomes:
            self._metrics.count_event(practice, channel.value, kind, decision.value)
            kinds[kind] = kinds.get(kind, 0) + 1
            decided[decision.value] = decided.get(decision.value, 0) + 1
            if decision is Decision.REPLY:
                queues.add(Queue(practice, channel))
        return WebhookResult(
            200,
            channel,
            {"events": len(events), "kinds": _tally(kinds), "decisions": _tally(decided)},
            queues=frozenset(queues),
        )


def _tally(counts: dict[str, int]) -> str:
    """``a:2,b:1``: each word and how often it occurs, sorted."""
    return ",".join(f"{word}:{n}" for word, n in sorted(counts.items()))
