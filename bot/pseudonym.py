"""Keyed pseudonyms for contacts and message ids, and sealing of pending recipient ids.

Pseudonym of a sender (SPEC §6): the first 32 lowercase hex characters of
HMAC-SHA256(key=PSEUDONYM_KEY, message="{channel}:{id}"), WhatsApp phone numbers reduced to
digits. Message ids are hashed under their own domain, because a WhatsApp ``wamid`` embeds
the sender's phone number. Raw recipient ids live only inside pending jobs, sealed with
AES-GCM under a key derived from the same secret, and are erased when the job ends.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.events import Channel, ContactKind

__all__ = ["Keyring", "normalise_contact_id"]

_PHONE_CHARS = re.compile(r"[+\d\s().-]+")
_NON_DIGITS = re.compile(r"\D")
_NONCE_BYTES = 12
_NONCE_POOL = 64  # nonces per read of os.urandom: one system call per 64 sealed recipients


def normalise_contact_id(channel: Channel, contact_id: str, kind: ContactKind | None = None) -> str:
    """The id as pseudonymised: WhatsApp phone numbers reduced to digits, others as given.

    ``kind`` is known for ids from webhooks; for an id typed by a person (``contacts forget``)
    a WhatsApp id made only of phone characters is treated as a phone number.
    """
    if channel is not Channel.WHATSAPP or contact_id.isdecimal():
        return contact_id  # a wa_id as Meta sends it is digits already
    is_phone = (
        kind is ContactKind.PHONE
        if kind is not None
        else _PHONE_CHARS.fullmatch(contact_id) is not None
    )
    return _NON_DIGITS.sub("", contact_id) if is_phone else contact_id


class Keyring:
    """Everything keyed by ``PSEUDONYM_KEY``; the key itself is never exposed."""

    __slots__ = ("_aead", "_hmac", "_nonces", "_sessions")

    def __init__(self, secret: str) -> None:
        key = secret.encode("utf-8")
        sealing_key = hmac.new(key, b"practice-bot recipient sealing v1", hashlib.sha256)
        self._aead = AESGCM(sealing_key.digest())
        session_key = hmac.new(key, b"practice-bot admin sessions v1", hashlib.sha256)
        self._sessions = hmac.new(session_key.digest(), digestmod=hashlib.sha256)
        # Keyed once; each pseudonym starts from a copy instead of setting the key up again.
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)
        self._nonces: list[bytes] = []

    def __repr__(self) -> str:
        return "Keyring(<hidden>)"

    def session_mac(self, message: str) -> str:
        """A MAC for the manager's page (sessions, form tokens): a key of its own, derived
        from ``PSEUDONYM_KEY``, so every replica accepts what another signed."""
        mac = self._sessions.copy()
        mac.update(message.encode("utf-8"))
        return mac.hexdigest()

    def _mac(self, message: str) -> str:
        mac = self._hmac.copy()
        mac.update(message.encode("utf-8", errors="surrogatepass"))
        return mac.hexdigest()[:32]

    def contact(
        self,
        channel: Channel,
        contact_id: str,
        kind: ContactKind | None = None,
        practice: str = "",
    ) -> str:
        """The pseudonym of a sender, exactly as SPEC §6 defines it; in a group, keyed by the
        practice too (SPEC §9), so one person writing to two practices is two contacts."""
        normalised = normalise_contact_id(channel, contact_id, kind)
        if practice:
            return self._mac(f"{practice}:{channel.value}:{normalised}")
        return self._mac(f"{channel.value}:{normalised}")

    def message(self, channel: Channel, message_id: str) -> str:
        """Keyed hash of a platform message id (dedupe and echo recognition)."""
        return self._mac(f"msgid\x00{channel.value}:{message_id}")

    def event(self, channel: Channel, contact: str, kind: str, timestamp: float) -> str:
        """Dedupe key of an event without a message id: channel, sender, kind and timestamp."""
        return self._mac(f"event\x00{channel.value}:{contact}:{kind}:{timestamp!r}")

    def _nonce(self) -> bytes:
        """A fresh random nonce from ``os.urandom``, read 64 nonces at a time."""
        if not self._nonces:
            pool = os.urandom(_NONCE_BYTES * _NONCE_POOL)
            self._nonces = [pool[i : i + _NONCE_BYTES] for i in range(0, len(pool), _NONCE_BYTES)]
        return self._nonces.pop()

    def seal(self, recipient_id: str, tag: str) -> bytes:
        """AES-GCM encryption of a raw recipient id, bound to its job's tag."""
        nonce = self._nonce()
        data = recipient_id.encode("utf-8", errors="surrogatepass")
        return nonce + self._aead.encrypt(nonce, data, tag.encode("ascii"))

    def unseal(self, sealed: bytes, tag: str) -> str:
        """The raw recipient id sealed by :meth:`seal` for the same ``tag``."""
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        data = self._aead.decrypt(nonce, ciphertext, tag.encode("ascii"))
        return data.decode("utf-8", errors="surrogatepass")
