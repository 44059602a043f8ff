"""The one place where Meta's Graph API send errors are classified.

Every failed send ends in one of four classes (``bot.errors.ErrorClass``): resend with backoff
(``TRANSIENT``), resend later honouring ``Retry-After`` (``RATE_LIMITED``), give up
(``PERMANENT``), or give up and tell a person (``ALERT``: token, permission or account trouble).

The decision is made on Meta's numbers only, in this order:

1. the exact ``(code, subcode)`` row of ``TABLE``;
2. a ``(None, subcode)`` row: a subcode Meta documents with more than one code (Instagram's
   2534xxx subcodes are community-documented without a reliable code), so it rules on its own;
3. the ``(code, None)`` row for the code alone;
4. the HTTP status when Meta sent no code we know: 429 rate-limited, 5xx transient, anything
   else permanent.

Sources: ``reference/meta-platforms.md`` §7.3 (WhatsApp), §7.4 (Messenger), §7.5 (Instagram),
§11 item 10, and SPEC §5. Messages in Meta's error bodies are never read into anything kept:
``parse_error_body`` returns numbers only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import NamedTuple

from bot.adapter import Usage
from bot.errors import ErrorClass

__all__ = [
    "MIN_RETRY_WAIT",
    "TABLE",
    "Rule",
    "as_code",
    "classify",
    "minimum_wait",
    "parse_error_body",
    "retry_after_seconds",
    "rule_for",
    "usage_from_headers",
]

T = ErrorClass.TRANSIENT
R = ErrorClass.RATE_LIMITED
P = ErrorClass.PERMANENT
A = ErrorClass.ALERT


class Rule(NamedTuple):
    """One row of the table: the class, the reason it was chosen, and two facts of some codes.

    ``sent``: Meta says the message went out although the call failed, so the job replied.
    ``retry_for``: seconds after the patient's message during which the error is retried;
    after that the job fails.
    """

    error_class: ErrorClass
    reason: str
    sent: bool = False
    retry_for: float | None = None


_PERMISSION_RANGE: dict[tuple[int | None, int | None], Rule] = {
    (code, None): Rule(A, "Graph permission error (200-299): the app lacks a permission")
    for code in range(200, 300)
}

# Keys are (code, subcode); subcode None means "this code with any other subcode", code None
# means "this subcode with any code". Graph codes are unique numbers across products, so one
# table serves WhatsApp, Messenger and Instagram.
TABLE: Mapping[tuple[int | None, int | None], Rule] = {
    **_PERMISSION_RANGE,
    # -- windows and recipients: the job can never succeed, nobody needs to act -------------
    (10, 2018278): Rule(P, "Messenger: sent outside the allowed messaging window"),
    (10, 2534022): Rule(P, "Instagram: sent outside the allowed messaging window"),
    (10, 2018065): Rule(P, "Messenger: sent outside the allowed messaging window"),
    (10, 2018108): Rule(P, "this person cannot receive messages right now"),
    (None, 2018278): Rule(P, "messaging window closed, whatever the code"),
    (None, 2534022): Rule(P, "messaging window closed, whatever the code"),
    (100, 2018001): Rule(P, "Messenger: no matching user found"),
    (1, 1357046): Rule(
        P, "the messages are all sent successfully, but the endpoint returns an error", sent=True
    ),
    (None, 2018001): Rule(P, "no matching user found, whatever the code"),
    (551, 1545041): Rule(P, "Messenger: this person isn't available right now"),
    (None, 1545041): Rule(P, "person unavailable (blocked or deactivated), whatever the code"),
    (551, None): Rule(P, "Messenger: recipient unavailable"),
    (None, 2534014): Rule(P, "Instagram: recipient cannot be found (deleted or blocked)"),
    (None, 2534025): Rule(P, "Instagram: the single private reply was already used"),
    (None, 2534001): Rule(P, "Instagram: thread archived or deleted"),
    (4, 2018354): Rule(P, "Messenger: marketing frequency limit; waiting will not help this job"),
    (None, 2018354): Rule(P, "marketing frequency limit, whatever the code"),
    (9, 2018352): Rule(P, "Messenger: listed by Meta as not to be retried"),
    (131026, None): Rule(P, "WhatsApp: message undeliverable to this recipient"),
    (131047, None): Rule(P, "WhatsApp: more than 24 h since the user's last message"),
    (131049, None): Rule(P, "WhatsApp: held back for ecosystem engagement; not for >= 24 h"),
    (131050, None): Rule(P, "WhatsApp: user stopped marketing messages"),
    (130403, None): Rule(P, "WhatsApp: the user blocked the business"),
    (130472, None): Rule(P, "WhatsApp: the user's number is part of an experiment"),
    (131021, None): Rule(P, "WhatsApp: recipient is the sender's own number"),
    (131051, None): Rule(P, "WhatsApp: unsupported message type"),
    # -- our request is wrong: resending the same bytes cannot help --------------------------
    (100, None): Rule(P, "invalid parameter: a bug in the request, resending cannot help"),
    (33, None): Rule(P, "object (phone number id) does not exist or is not usable"),
    (131008, None): Rule(P, "WhatsApp: required parameter missing"),
    (131009, None): Rule(P, "WhatsApp: parameter value invalid"),
    **{
        (code, None): Rule(P, "WhatsApp template error; the bot sends no templates")
        for code in range(132000, 132017)
    },
    # -- a person must act: token, permission, account, billing -----------------------------
    (0, None): Rule(A, "AuthException: authentication failed"),
    (3, None): Rule(A, "capability not allowed for this app: its setup must change"),
    (10, None): Rule(A, "permission denied or not granted"),
    (1, 99): Rule(A, "missing permissions: the app's access must change"),
    (100, 2534029): Rule(A, "Instagram: the account is blocked from the messaging API"),
    (190, None): Rule(A, "access token expired or invalid: rotate the token"),
    (368, None): Rule(A, "integrity: temporarily blocked for a policy violation"),
    (130497, None): Rule(A, "WhatsApp integrity: messaging to this country restricted"),
    (131031, None): Rule(A, "WhatsApp integrity: business account locked"),
    (131005, None): Rule(A, "WhatsApp: access denied, permission missing or removed"),
    (131037, None): Rule(A, "WhatsApp: display name not approved"),
    (131042, None): Rule(A, "WhatsApp: payment or billing problem"),
    (131045, None): Rule(A, "WhatsApp: phone number not registered"),
    (131048, None): Rule(A, "WhatsApp: spam rate limit from quality restrictions"),
    # -- Meta's side is briefly unwell: resend with backoff --------------------------------
    (1, None): Rule(T, "unknown error or possible server error"),
    (2, None): Rule(
        T,
        "temporary error or downtime; also what a customer who blocked the business gets",
        retry_for=3600.0,
    ),
    (99, None): Rule(T, "Messenger: unknown error"),
    (1200, None): Rule(T, "Messenger: temporary send failure"),
    (131000, None): Rule(T, "WhatsApp: something went wrong"),
    (131016, None): Rule(T, "WhatsApp: service unavailable"),
    (131057, None): Rule(T, "WhatsApp: account in maintenance mode (throughput upgrade)"),
    # -- too fast: resend later, honouring Retry-After -------------------------------------
    (4, None): Rule(R, "application request limit reached"),
    (17, None): Rule(R, "Graph account-level request limit reached"),
    (32, None): Rule(R, "Graph page-level request limit reached"),
    (613, None): Rule(R, "calls to this API exceeded the rate limit"),
    (80001, None): Rule(R, "Pages business-use-case rate limit"),
    (80002, None): Rule(R, "Instagram business-use-case rate limit"),
    (80006, None): Rule(R, "Messenger business-use-case rate limit"),
    (80007, None): Rule(R, "WhatsApp business account rate limit"),
    (130429, None): Rule(R, "WhatsApp: throughput limit of the phone number"),
    (131056, None): Rule(R, "WhatsApp: pair rate limit, too many messages to one user"),
}

# Meta's own advice on how long to wait before the next try, where it gives one.
MIN_RETRY_WAIT: Mapping[int, float] = {
    131056: 6.0,  # pair rate limit: about one message per 6 s to the same user
}

_MAX_CODE = 2**31  # Graph codes and subcodes are 32-bit; anything larger is garbage


_BY_STATUS = {429: Rule(R, "HTTP 429"), 500: Rule(T, "HTTP 5xx"), 400: Rule(P, "HTTP 4xx")}


def rule_for(status: int, code: int | None, subcode: int | None) -> Rule:
    """The row deciding a failed send, from Meta's HTTP status, error code and subcode."""
    keys: list[tuple[int | None, int | None]] = []
    if subcode is not None:
        keys += [(code, subcode), (None, subcode)]
    if code is not None:
        keys.append((code, None))
    for key in keys:
        rule = TABLE.get(key)
        if rule is not None:
            return rule
    if status == 429:
        return _BY_STATUS[429]
    if 500 <= status <= 599:
        return _BY_STATUS[500]
    return _BY_STATUS[400]


def classify(status: int, code: int | None, subcode: int | None) -> ErrorClass:
    """The class of a failed send from Meta's HTTP status, error code and subcode."""
    return rule_for(status, code, subcode).error_class


def minimum_wait(code: int | None) -> float:
    """Seconds Meta asks to wait before resending after this code (0 when it says nothing)."""
    if code is None:
        return 0.0
    return MIN_RETRY_WAIT.get(code, 0.0)


def as_code(value: object) -> int | None:
    """A Graph error code or subcode, sent as a number or a string of digits; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        number = int(value)
    else:
        return None
    return number if 0 <= number < _MAX_CODE else None


def parse_error_body(raw: bytes) -> tuple[int | None, int | None]:
    """``(error.code, error.error_subcode)`` from a Graph error body; ``(None, None)`` if absent.

    Robust to any bytes: not UTF-8, not JSON, not an object, wrong types, absurd numbers. The
    message, type and trace id are never read.
    """
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return None, None
    if not isinstance(decoded, dict):
        return None, None
    error = decoded.get("error")
    if not isinstance(error, dict):
        return None, None
    return as_code(error.get("code")), as_code(error.get("error_subcode"))


def retry_after_seconds(
    headers: Mapping[str, str],
    *,
    cap: float = 3600.0,
    now: datetime | None = None,
) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP date), at most ``cap``.

    ``None`` when the header is absent or unreadable; a date in the past gives ``0.0``.
    """
    value = headers.get("Retry-After")
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    seconds: float
    if text.isascii() and text.isdigit():
        seconds = float(int(text))
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = now if now is not None else datetime.now(UTC)
        seconds = (when - current).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), cap)


_USAGE_HEADERS = ("x-business-use-case-usage", "x-app-usage")
_USAGE_FIELDS = ("call_count", "total_time", "total_cputime")
_MAX_REGAIN_MINUTES = 24 * 60


def usage_from_headers(headers: Mapping[str, str]) -> Usage | None:
    """The rate-limit usage Graph reports in ``X-Business-Use-Case-Usage`` / ``X-App-Usage``.

    Both carry percentages (``call_count``, ``total_time``, ``total_cputime``); the business
    use case header nests them per business object and adds
    ``estimated_time_to_regain_access`` in minutes. ``None`` when neither header is there or
    readable; unreadable parts are ignored.
    """
    percents: list[float] = []
    regain_minutes: list[float] = []
    for name, value in headers.items():
        if name.lower() not in _USAGE_HEADERS or len(value) > 8192:
            continue
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            continue
        entries: list[object] = [decoded]
        if isinstance(decoded, dict) and name.lower() == _USAGE_HEADERS[0]:
            entries = [e for v in decoded.values() if isinstance(v, list) for e in v]
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            percents += [n for f in _USAGE_FIELDS if (n := _number(entry.get(f))) is not None]
            regain = _number(entry.get("estimated_time_to_regain_access"))
            if regain is not None:
                regain_minutes.append(min(regain, _MAX_REGAIN_MINUTES))
    if not percents and not regain_minutes:
        return None
    return Usage(
        percent=max(percents, default=0.0), regain_after=60.0 * max(regain_minutes, default=0.0)
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and 0 <= value <= 10_000 else None
