"""One person, one contact (SPEC §4): a WhatsApp user's phone number and BSUIDs, linked.

Each test runs the real service over HTTP against the fake Graph API: the ids are linked
by what Meta sends (a message or status naming both, a ``user_changed_user_id`` system
message), and the rules that follow a person then hold whichever id the next event uses.
"""

from __future__ import annotations

from bot.events import Channel
from bot.pseudonym import Keyring
from bot.settings import Settings
from bot.store.sqlite import SQLiteStore
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.fixtures import fixture_bytes
from tests.helpers.service import Service, running_service

PHONE = "447700900123"
BSUID = "GB.13491208655302741918"
NEW_BSUID = "GB.99991208655302741918"


def _another(case: str, n: int) -> bytes:
    """The recorded payload with a new message id: another message from the same sender."""
    body = fixture_bytes("whatsapp", case)
    return body.replace(b'"id":"wamid.', f'"id":"wamid.N{n}'.encode(), 1)


async def _outcomes(service: Service) -> list[str]:
    return [record.outcome for record in await service.store.contacts(None, None)]


async def _pseudonyms(service: Service) -> set[str]:
    return {record.pseudonym for record in await service.store.contacts(None, None)}


async def _post_all(service: Service, *bodies: bytes) -> None:
    for body in bodies:
        assert (await service.post(body)).status == 200
        await service.drain()


async def test_bsuid_alone_after_phone_and_bsuid_is_in_cooldown(
    settings: Settings, graph: FakeGraph
) -> None:
    """Once a message named both ids, a later message by the BSUID alone is the same person."""
    async with running_service(settings) as service:
        await _post_all(
            service, fixture_bytes("whatsapp", "text_phone_and_bsuid"), _another("bsuid_user", 1)
        )
        assert len(graph.requests) == 1
        assert await _outcomes(service) == ["replied", "cooldown"]
        assert len(await _pseudonyms(service)) == 1


async def test_phone_and_bsuid_after_bsuid_alone_is_in_cooldown(
    settings: Settings, graph: FakeGraph
) -> None:
    """A person first seen by BSUID keeps their cooldown when their phone number appears."""
    async with running_service(settings) as service:
        await _post_all(
            service,
            fixture_bytes("whatsapp", "bsuid_user"),
            _another("text_phone_and_bsuid", 1),
            _another("text", 2),  # the phone number alone, after the link
        )
        assert len(graph.requests) == 1
        assert await _outcomes(service) == ["replied", "cooldown", "cooldown"]


async def test_status_naming_both_ids_links_them(settings: Settings, graph: FakeGraph) -> None:
    """A status's ``contacts[]`` with a phone number and a BSUID links the two."""
    async with running_service(settings) as service:
        await _post_all(
            service,
            fixture_bytes("whatsapp", "text"),
            fixture_bytes("whatsapp", "status_delivered_contacts"),
            _another("bsuid_user", 1),
        )
        assert len(graph.requests) == 1
        assert await _outcomes(service) == ["replied", "cooldown"]


async def test_user_changed_user_id_carries_the_person_over(
    settings: Settings, graph: FakeGraph
) -> None:
    """After a BSUID change, a message from the new BSUID is the same person, not a new one."""
    new_bsuid_message = _another("bsuid_user", 1).replace(BSUID.encode(), NEW_BSUID.encode())
    async with running_service(settings) as service:
        await _post_all(
            service,
            fixture_bytes("whatsapp", "bsuid_user"),
            fixture_bytes("whatsapp", "system_user_changed_user_id"),
            new_bsuid_message,
        )
        assert len(graph.requests) == 1
        assert await _outcomes(service) == ["replied", "cooldown"]


async def test_staff_reply_to_the_phone_quiets_the_bsuid(
    settings: Settings, graph: FakeGraph
) -> None:
    """Staff answering by phone number (an smb echo naming both ids) quiets the bot for the
    person's BSUID too."""
    async with running_service(settings) as service:
        await _post_all(
            service,
            fixture_bytes("whatsapp", "smb_message_echoes_bsuid"),
            fixture_bytes("whatsapp", "bsuid_user"),
        )
        assert graph.requests == []
        assert await _outcomes(service) == ["staff_active"]


async def test_unlinked_ids_stay_two_contacts(settings: Settings, graph: FakeGraph) -> None:
    """Without an event naming both, a phone number and a BSUID are two people, two replies."""
    async with running_service(settings) as service:
        await _post_all(
            service, fixture_bytes("whatsapp", "text"), fixture_bytes("whatsapp", "bsuid_user")
        )
        assert len(graph.requests) == 2
        assert len(await _pseudonyms(service)) == 2


async def test_forget_by_bsuid_erases_what_the_phone_number_sent(
    settings: Settings, graph: FakeGraph
) -> None:
    """``contacts forget`` by the BSUID erases the records made under the phone number."""
    async with running_service(settings) as service:
        await _post_all(
            service,
            fixture_bytes("whatsapp", "text"),
            _another("text_phone_and_bsuid", 1),
            _another("bsuid_user", 2),
        )
        keyring = Keyring(settings.pseudonym_key.get_secret_value())
        bsuid = keyring.contact(Channel.WHATSAPP, BSUID)
        assert await service.store.forget(Channel.WHATSAPP, bsuid) == 3
        assert await service.store.contacts(None, None) == []
        # Forgotten means unlinked: the BSUID is a new person again.
        await _post_all(service, _another("bsuid_user", 3))
        assert len(graph.requests) == 2


async def test_link_rows_hold_the_two_pseudonyms_only(settings: Settings, graph: FakeGraph) -> None:
    """A link is kept as two keyed pseudonyms and a time: neither raw id is stored."""
    async with running_service(settings) as service:
        await _post_all(service, fixture_bytes("whatsapp", "text_phone_and_bsuid"))
        store = service.store
        assert isinstance(store, SQLiteStore)
        rows = store.db.execute("SELECT * FROM contact_links").fetchall()
    keyring = Keyring(settings.pseudonym_key.get_secret_value())
    assert rows == [
        (
            "whatsapp",
            keyring.contact(Channel.WHATSAPP, BSUID),
            keyring.contact(Channel.WHATSAPP, PHONE),
            service.clock.now,
        )
    ]
