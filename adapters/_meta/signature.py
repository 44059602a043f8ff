"""``X-Hub-Signature-256`` verification and the GET subscription handshake, shared by all channels.

Meta signs the exact bytes it sends (escaped unicode, escaped slashes), so the HMAC is always
computed over the raw body, never over re-serialised JSON. Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

from bot.errors import SignatureError

__all__ = ["handshake_challenge", "verify_signature"]

_SIGNATURE = re.compile(rb"sha256=[0-9a-f]{64}")
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def verify_signature(secrets: Sequence[bytes], body: bytes, header: str | None) -> None:
    """Accept ``body`` only if ``header`` is ``sha256=<64 lowercase hex>`` matching a secret.

    Raises:
        SignatureError: status 401 when the header is absent or malformed (no case folding),
            403 when it is well-formed but matches none of ``secrets``.
    """
    if header is None:
        raise SignatureError(401, "missing")
    raw = header.encode("latin-1", errors="replace")
    if _SIGNATURE.fullmatch(raw) is None:
        raise SignatureError(401, "malformed")
    given = raw[7:]
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode("ascii")
        # No early exit: every secret is tried so timing does not reveal which one matched.
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureError(403, "mismatch")


def handshake_challenge(query: Mapping[str, str], verify_token: bytes) -> str | None:
    """The challenge to echo for a valid subscription handshake, else ``None``."""
    mode = query.get("hub.mode")
    token = query.get("hub.verify_token")
    challenge = query.get("hub.challenge")
    if mode != "subscribe" or token is None or challenge is None:
        return None
    token_ok = hmac.compare_digest(token.encode("utf-8", errors="surrogateescape"), verify_token)
    if not token_ok or _CHALLENGE.fullmatch(challenge) is None:
        return None
    return challenge
