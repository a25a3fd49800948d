"""The embedded SMTP ingress, spoken to with aiosmtplib as a sending MTA would.

What a sender notices: unknown recipients refused at RCPT (550), oversized mail refused
(552), a temporary failure (451) when we could not store the mail, and 250 only for mail
that is stored, byte for byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiosmtplib
import pytest

from channels.email.ingress import SmtpIngress
from switchboard.adapters import AdapterRegistry
from switchboard.crypto import CredentialBox
from switchboard.tx import Database
from switchboard.wiring import adapter_factories
from tests.channels.email.conftest_transports import (
    CUSTOMER,
    SUPPORT,
    email_bytes,
    email_inbox,
    filed,
)
from tests.conftest import SECRET, ClientFactory

SMALL_LIMIT = 64 * 1024


@pytest.fixture
async def ingress(db: Database) -> AsyncIterator[SmtpIngress]:
    registry = AdapterRegistry(db, CredentialBox(SECRET), adapter_factories(), "http://hub.test")
    server = SmtpIngress(db, registry, host="127.0.0.1", port=0, max_bytes=SMALL_LIMIT)
    await server.start()
    yield server
    await server.stop()
    await registry.aclose()


async def send(ingress: SmtpIngress, eml: bytes, recipients: list[str], **kw: Any) -> Any:
    return await aiosmtplib.send(
        eml,
        sender=kw.pop("sender", CUSTOMER),
        recipients=recipients,
        hostname="127.0.0.1",
        port=ingress.port,
        start_tls=False,
        use_tls=False,
        timeout=10,
        **kw,
    )


async def test_unknown_recipient_is_refused_at_rcpt_and_nothing_is_stored(
    db: Database, ingress: SmtpIngress
) -> None:
    await email_inbox(db)
    for stranger in ("sales@example.test", "support@elsewhere.test", "support@example.test.evil"):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await send(ingress, email_bytes("hello?"), [stranger])
        assert refused.value.recipients[0].code == 550
    assert await filed(db) == []


async def test_support_address_and_reply_token_are_stored_byte_for_byte(
    db: Database, ingress: SmtpIngress
) -> None:
    inbox = await email_inbox(db)
    first = email_bytes("Printer on fire")
    reply = email_bytes("Re: Printer on fire", "Still burning.", to="support+Tk93hQ@example.test")

    # Addresses are matched without regard to case, as mail systems do.
    errors, answer = await send(ingress, first, ["Support@EXAMPLE.test"])
    assert errors == {} and answer.startswith("2.0.0 OK")
    await send(ingress, reply, ["support+Tk93hQ@example.test"])

    rows = await filed(db)
    assert [row.payload for row in rows] == [first, reply]
    assert all(row.inbox_id == inbox.id and row.status == "pending" for row in rows)
    assert rows[0].headers["x-envelope-from"] == CUSTOMER
    assert rows[0].headers["x-envelope-to"] == "Support@EXAMPLE.test"
    assert rows[1].headers["x-envelope-to"] == "support+Tk93hQ@example.test"
    assert rows[0].headers["x-received-via"] == "smtp"


async def test_a_known_and_an_unknown_recipient_in_one_message(
    db: Database, ingress: SmtpIngress
) -> None:
    await email_inbox(db)
    errors, _ = await send(ingress, email_bytes("cc"), [SUPPORT, "nobody@example.test"])
    assert errors["nobody@example.test"].code == 550
    [row] = await filed(db)
    assert row.headers["x-envelope-to"] == SUPPORT


async def test_a_message_sent_twice_is_filed_once(db: Database, ingress: SmtpIngress) -> None:
    await email_inbox(db)
    eml = email_bytes("once", message_id="<only-once@customer.test>")
    await send(ingress, eml, [SUPPORT])
    # The sending MTA did not hear our 250 and tries again: it gets 250 again.
    errors, _ = await send(ingress, eml, [SUPPORT])
    assert errors == {}
    assert [row.payload for row in await filed(db)] == [eml]


async def test_a_message_for_two_inboxes_is_filed_in_each(
    db: Database, ingress: SmtpIngress
) -> None:
    support = await email_inbox(db)
    billing = await email_inbox(db, key="billing", address="billing@example.test")
    await send(ingress, email_bytes("both"), [SUPPORT, "billing+abc@example.test"])
    rows = await filed(db)
    assert sorted(row.inbox_id for row in rows) == sorted([support.id, billing.id])


async def test_an_oversized_message_is_refused_with_552_and_not_stored(
    db: Database, ingress: SmtpIngress
) -> None:
    await email_inbox(db)
    huge = email_bytes("big attachment", ("x" * 70 + "\n") * (SMALL_LIMIT // 70 + 100))
    assert len(huge) > SMALL_LIMIT
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await send(ingress, huge, [SUPPORT])
    assert refused.value.code == 552
    # A sender that does not announce the size (no SIZE= on MAIL FROM) is stopped at
    # the end of DATA instead.
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=ingress.port, start_tls=False) as smtp:
        await smtp.ehlo()
        await smtp.mail(CUSTOMER)
        await smtp.rcpt(SUPPORT)
        with pytest.raises(aiosmtplib.SMTPDataError) as too_much:
            await smtp.data(huge)
        assert too_much.value.code == 552
    assert await filed(db) == []


async def test_database_failure_answers_451_and_the_retry_is_stored(
    db: Database, ingress: SmtpIngress, monkeypatch: pytest.MonkeyPatch
) -> None:
    await email_inbox(db)
    eml = email_bytes("while the database restarts")
    await ingress.handler.book.inbox_for(SUPPORT)  # recipients known before the outage
    real_run = db.run

    async def database_down(work: Any) -> Any:
        raise ConnectionRefusedError("database is restarting")

    monkeypatch.setattr(db, "run", database_down)
    with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
        await send(ingress, eml, [SUPPORT])
    assert deferred.value.code == 451  # temporary: the sender keeps the mail and retries
    monkeypatch.setattr(db, "run", real_run)
    assert await filed(db) == []

    errors, _ = await send(ingress, eml, [SUPPORT])
    assert errors == {}
    assert [row.payload for row in await filed(db)] == [eml]


async def test_recipients_cannot_be_checked_without_the_database_answers_451(
    db: Database, ingress: SmtpIngress, monkeypatch: pytest.MonkeyPatch
) -> None:
    await email_inbox(db)

    async def no_inboxes(address: str) -> int | None:
        raise ConnectionRefusedError("database is restarting")

    monkeypatch.setattr(ingress.handler.book, "inbox_for", no_inboxes)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as deferred:
        await send(ingress, email_bytes("hello"), [SUPPORT])
    assert deferred.value.recipients[0].code == 451


async def test_mail_cannot_be_posted_to_a_webhook_url(
    make_client: ClientFactory, db: Database
) -> None:
    """Only the transports file mail: a POST would skip the recipient check and could
    claim any envelope."""
    client = await make_client(email_address=SUPPORT, run_workers=False)
    response = await client.post(
        "/webhooks/email/default",
        data=email_bytes("injected"),
        headers={"X-Envelope-From": "ceo@example.test"},
    )
    assert response.status == 404
    assert await filed(db) == []


async def test_connections_past_the_cap_are_told_to_come_back_later(db: Database) -> None:
    registry = AdapterRegistry(db, CredentialBox(SECRET), adapter_factories(), "http://hub")
    server = SmtpIngress(db, registry, host="127.0.0.1", port=0, max_connections=1)
    await server.start()
    try:
        first_reader, first_writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert (await first_reader.readline()).startswith(b"220")
        second_reader, second_writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert (await second_reader.readline()).startswith(b"421")
        second_writer.close()
        first_writer.write(b"QUIT\r\n")
        await first_writer.drain()
        assert (await first_reader.readline()).startswith(b"221")
        first_writer.close()
        await first_writer.wait_closed()
        # The slot is free again once the first session has gone.
        for _ in range(100):
            if server.open_connections == 0:
                break
            await asyncio.sleep(0.01)
        third_reader, third_writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert (await third_reader.readline()).startswith(b"220")
        third_writer.close()
    finally:
        await server.stop()
