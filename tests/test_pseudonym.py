"""Pseudonyms exactly as SPEC §6 defines them, and sealing of pending recipients."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.exceptions import InvalidTag

from bot.events import Channel, ContactKind
from bot.pseudonym import Keyring, normalise_contact_id

KEY = "k" * 40


def _spec(channel: str, contact: str) -> str:
    message = f"{channel}:{contact}".encode()
    return hmac.new(KEY.encode(), message, hashlib.sha256).hexdigest()[:32]


@pytest.mark.parametrize(
    ("channel", "raw", "kind", "hashed"),
    [
        (Channel.WHATSAPP, "447700900123", ContactKind.PHONE, "447700900123"),
        (Channel.WHATSAPP, "GB.13491208655302741918", ContactKind.BSUID, "GB.13491208655302741918"),
        (Channel.MESSENGER, "6000000000000001", ContactKind.SCOPED, "6000000000000001"),
        (Channel.INSTAGRAM, "7000000000000001", ContactKind.SCOPED, "7000000000000001"),
    ],
)
def test_pseudonym_matches_spec_formula(
    channel: Channel, raw: str, kind: ContactKind, hashed: str
) -> None:
    """The pseudonym is the first 32 hex characters of HMAC-SHA256(key, "channel:id")."""
    assert Keyring(KEY).contact(channel, raw, kind) == _spec(channel.value, hashed)


def test_pseudonym_typed_phone_number_is_reduced_to_digits() -> None:
    """An id typed by a person (contacts forget) in any phone format gives the same pseudonym."""
    keyring = Keyring(KEY)
    assert keyring.contact(Channel.WHATSAPP, "+44 7700 900123") == _spec("whatsapp", "447700900123")


def test_pseudonym_bsuid_is_used_as_given() -> None:
    """A WhatsApp business-scoped user id is not mistaken for a phone number."""
    assert normalise_contact_id(Channel.WHATSAPP, "GB.134912") == "GB.134912"


def test_message_hash_differs_from_contact_pseudonym() -> None:
    """Message ids are hashed in their own domain, never equal to a contact pseudonym."""
    keyring = Keyring(KEY)
    assert keyring.message(Channel.WHATSAPP, "447700900123") != keyring.contact(
        Channel.WHATSAPP, "447700900123", ContactKind.PHONE
    )


def test_seal_round_trips_and_hides_the_id() -> None:
    """A sealed recipient opens with its tag and does not contain the id in clear."""
    keyring = Keyring(KEY)
    sealed = keyring.seal("447700900123", "pb-" + "0" * 24)
    assert b"447700900123" not in sealed
    assert keyring.unseal(sealed, "pb-" + "0" * 24) == "447700900123"


def test_seal_is_bound_to_its_tag() -> None:
    """A sealed recipient cannot be opened under another job's tag."""
    keyring = Keyring(KEY)
    sealed = keyring.seal("447700900123", "pb-" + "0" * 24)
    with pytest.raises(InvalidTag):
        keyring.unseal(sealed, "pb-" + "1" * 24)


def test_seal_nonce_is_fresh_for_every_recipient() -> None:
    """No two seals share a nonce, across several refills of the nonce pool."""
    keyring = Keyring(KEY)
    nonces = [keyring.seal("447700900123", "pb-" + "0" * 24)[:12] for _ in range(300)]
    assert len(set(nonces)) == 300


def test_keyring_repr_hides_the_key() -> None:
    """The key never shows in a repr."""
    assert KEY not in repr(Keyring(KEY))
