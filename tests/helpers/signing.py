"""Signing webhook bodies the way Meta does: HMAC-SHA256 of the exact bytes."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["sign"]


def sign(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
