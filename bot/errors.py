"""One error tree for the whole bot.

    BotError
    ├── ConfigError          settings or templates that stop start-up (exit code 2)
    ├── SignatureError       a webhook whose X-Hub-Signature-256 is absent, malformed or wrong
    ├── PayloadError         a signed body that is not a JSON object (never carries the body)
    ├── TemplateError        a template that does not validate (file:line:col)
    ├── StoreUnavailable     the store cannot record; the webhook answers 503
    │   └── StoreConflict    transactions of two replicas collided; safe to try again
    └── DeliveryError        a send that did not succeed
        └── GraphError       Meta answered with an error; classified in adapters/_meta/errors.py

No exception here ever holds a request body, message text or a raw identifier: their
messages are built from fixed words, status codes and Meta's numeric error codes only.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.adapter import Usage

__all__ = [
    "BotError",
    "ConfigError",
    "DeliveryError",
    "ErrorClass",
    "GraphError",
    "PayloadError",
    "SignatureError",
    "StoreConflict",
    "StoreUnavailable",
    "TemplateError",
]


class BotError(Exception):
    """Base of every error practice-bot raises on purpose."""


class ConfigError(BotError):
    """Configuration that prevents start-up; ``problems`` are ready-to-print lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SignatureError(BotError):
    """A webhook signature problem; ``status`` is 401 (absent/malformed) or 403 (no match)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PayloadError(BotError):
    """A signed body that is not a JSON object; ``reason`` is a fixed word, never input."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemplateError(BotError):
    """Templates that do not validate; ``problems`` are ``path:line:col: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StoreUnavailable(BotError):
    """The store could not record or read; callers answer 503 and retry later."""


class StoreConflict(StoreUnavailable):
    """Concurrent transactions collided (deadlock, serialization); trying again will do."""


class ErrorClass(enum.StrEnum):
    """How a failed send is handled (SPEC §5, metrics label ``class``)."""

    TRANSIENT = "transient"  # resend with backoff
    RATE_LIMITED = "rate_limited"  # resend later, honouring Retry-After
    PERMANENT = "permanent"  # end the job as failed
    ALERT = "alert"  # permanent, and a person must act (token, permission, account)


class DeliveryError(BotError):
    """A send that did not succeed."""

    def __init__(
        self,
        message: str,
        *,
        error_class: ErrorClass,
        ambiguous: bool = False,
        retry_after: float | None = None,
        sent: bool = False,
        retry_for: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = message  # fixed words and an exception class name, safe for a log line
        self.error_class = error_class
        self.ambiguous = ambiguous  # the request may have reached Meta (timeout/reset after write)
        self.retry_after = retry_after
        self.sent = sent  # Meta says the message went out although the call failed
        self.retry_for = retry_for  # seconds after the patient's message it is worth retrying
        self.usage = usage  # the rate-limit usage Meta reported with the answer


class GraphError(DeliveryError):
    """Meta answered a send with an error body or status; only numbers are kept."""

    def __init__(
        self,
        *,
        status: int,
        code: int | None,
        subcode: int | None,
        error_class: ErrorClass,
        retry_after: float | None = None,
        sent: bool = False,
        retry_for: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(
            f"graph error status={status} code={code} subcode={subcode}",
            error_class=error_class,
            retry_after=retry_after,
            sent=sent,
            retry_for=retry_for,
            usage=usage,
        )
        self.status = status
        self.code = code
        self.subcode = subcode
