"""Known-answer and rejection tests for X-Hub-Signature-256 and the GET handshake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters._meta.signature import handshake_challenge, verify_signature
from bot.errors import SignatureError

META_SECRET = b"example_app_secret_do_not_use"
META_SIGNATURE = "sha256=e6cd8da6bed546f8caecb497bb8e34851d499d925a0261d73dd93850b3e08c1b"


def _meta_vector() -> bytes:
    local = Path(__file__).parent / "fixtures" / "whatsapp" / "image_nonascii_raw.json"
    return local.read_bytes()


def test_verify_github_known_answer() -> None:
    """GitHub's documented vector verifies."""
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    verify_signature([b"It's a Secret to Everybody"], b"Hello, World!", header)


def test_verify_hmac_secret_test_known_answer() -> None:
    """HMAC-SHA256(secret, test) verifies."""
    header = "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
    verify_signature([b"secret"], b"test", header)


def test_verify_meta_escaped_unicode_vector() -> None:
    """Meta's escaped-unicode body verifies over its raw bytes."""
    verify_signature([META_SECRET], _meta_vector(), META_SIGNATURE)


def test_verify_meta_vector_reserialised_fails() -> None:
    """The same payload re-serialised as UTF-8 JSON does not verify (403)."""
    body = json.dumps(
        json.loads(_meta_vector()), separators=(",", ":"), ensure_ascii=False
    ).encode()
    with pytest.raises(SignatureError) as caught:
        verify_signature([META_SECRET], body, META_SIGNATURE)
    assert caught.value.status == 403


def test_verify_matches_any_rotated_secret() -> None:
    """A body signed with the second of two secrets verifies."""
    verify_signature(
        [b"new", b"secret"],
        b"test",
        "sha256=" + "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914",
    )


def test_verify_missing_header_is_401() -> None:
    """No header at all is 401."""
    with pytest.raises(SignatureError) as caught:
        verify_signature([b"secret"], b"test", None)
    assert caught.value.status == 401


def test_verify_sha1_header_value_is_401() -> None:
    """The legacy sha1 form is not accepted."""
    with pytest.raises(SignatureError) as caught:
        verify_signature([b"secret"], b"test", "sha1=" + "0" * 40)
    assert caught.value.status == 401


def test_verify_wrong_secret_is_403() -> None:
    """A well-formed signature by another secret is 403."""
    with pytest.raises(SignatureError) as caught:
        verify_signature([b"other"], b"test", "sha256=" + "0" * 64)
    assert caught.value.status == 403


def test_verify_error_never_holds_the_body() -> None:
    """The exception carries a fixed reason, not the body."""
    with pytest.raises(SignatureError) as caught:
        verify_signature([b"other"], b"CANARY-body", "sha256=" + "0" * 64)
    assert "CANARY" not in repr(caught.value) + str(caught.value)


def test_handshake_valid_returns_challenge() -> None:
    """A subscribe request with the right token returns its challenge."""
    query = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "abc_-123"}
    assert handshake_challenge(query, b"tok") == "abc_-123"


def test_handshake_wrong_token_returns_none() -> None:
    """A wrong token returns no challenge."""
    query = {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
    assert handshake_challenge(query, b"tok") is None


def test_handshake_challenge_with_odd_characters_returns_none() -> None:
    """A challenge outside [A-Za-z0-9_-]{1,64} is never echoed."""
    query = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "a b"}
    assert handshake_challenge(query, b"tok") is None
