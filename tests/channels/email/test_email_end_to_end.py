"""Email from end to end, through the real app: a customer's mail arrives (by the SMTP
ingress, or in the IMAP mailbox the hub polls), shows up live in the agent inbox on the
right customer, the agent answers through the REST API, the answer reaches the SMTP peer
threaded to the customer's mail, and the customer's reply lands in the same
conversation."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parseaddr
from typing import Any

import aiosmtplib
import pytest
from aiohttp import ClientWebSocketResponse
from sqlalchemy import select

from conversations.models import Conversation
from customers.models import Identity
from switchboard.appkeys import SMTP_INGRESS
from switchboard.tx import Database
from tests.channels.email.conftest import SmtpPeer, SmtpPeerFactory
from tests.channels.email.conftest_transports import SUPPORT, email_bytes
from tests.conftest import AppClient, ClientFactory, create_user, login
from tests.dovecot import Dovecot, Mailbox, start_dovecot
from tests.security.support import receive


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    server = start_dovecot()
    yield server
    server.stop()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    return dovecot.add_mailbox()


async def start_hub(make_client: ClientFactory, peer: SmtpPeer, mailbox: Mailbox) -> AppClient:
    return await make_client(
        email_address=SUPPORT,
        smtp_host=peer.host,
        smtp_port=peer.port,
        smtp_tls="none",
        smtp_ingress_port=0,
        imap_host=mailbox.host,
        imap_port=mailbox.port,
        imap_username=mailbox.username,
        imap_password=mailbox.password,
        imap_tls="none",
        imap_poll_interval=0.2,
    )


async def agent_inbox(client: AppClient, db: Database) -> tuple[str, ClientWebSocketResponse]:
    await create_user(db, "alex@example.com")
    csrf = await login(client, "alex@example.com")
    ws = await client.ws_connect("/inbox/ws")
    await ws.send_json({"type": "ping"})
    await receive(ws, "pong")  # subscribed before any mail arrives
    return csrf, ws


async def customer_message(ws: ClientWebSocketResponse) -> dict[str, Any]:
    """The next customer message the agent inbox shows (the agent's own are skipped)."""
    while True:
        frame = await receive(ws, "message.created", within=15)
        if frame["data"]["message"]["author_kind"] == "customer":
            return dict(frame["data"])


async def customer_of(db: Database, address: str) -> int:
    async with db.reading() as session:
        return (
            await session.execute(
                select(Identity.customer_id).where(
                    Identity.channel == "email", Identity.external_id == address
                )
            )
        ).scalar_one()


async def reply_token(db: Database, conversation_id: int) -> str | None:
    async with db.reading() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        return conversation.reply_token


async def agent_replies(
    client: AppClient, csrf: str, conversation_id: int, text: str, peer: SmtpPeer
) -> Any:
    """Reply through the REST API; return the mail that reached the SMTP peer."""
    before = len(peer.received)
    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": text},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 201, await response.text()
    return (await peer.wait_for(before + 1, within=15))[-1]


async def test_mail_by_smtp_reaches_the_agent_and_the_reply_threads_back(
    make_client: ClientFactory, db: Database, smtp_peer: SmtpPeerFactory, mailbox: Mailbox
) -> None:
    peer = smtp_peer()
    client = await start_hub(make_client, peer, mailbox)
    csrf, ws = await agent_inbox(client, db)
    ingress_port = client.app[SMTP_INGRESS].port

    first = email_bytes(
        "Printer on fire",
        "My printer is on fire. What do I do?",
        sender="Ann Example <ann@customer.test>",
        message_id="<first-ann@customer.test>",
    )
    await aiosmtplib.send(
        first,
        sender="ann@customer.test",
        recipients=[SUPPORT],
        hostname="127.0.0.1",
        port=ingress_port,
        start_tls=False,
    )
    shown = await customer_message(ws)
    assert "printer is on fire" in shown["message"]["text"]
    conversation_id = shown["conversation_id"]
    assert shown["conversation"]["customer_id"] == await customer_of(db, "ann@customer.test")

    sent = await agent_replies(client, csrf, conversation_id, "Unplug it and step back.", peer)
    mail = sent.message
    assert sent.rcpt_tos == ["ann@customer.test"]
    assert parseaddr(mail["To"])[1] == "ann@customer.test"
    assert mail["In-Reply-To"] == "<first-ann@customer.test>"
    assert "<first-ann@customer.test>" in mail["References"]
    token = await reply_token(db, conversation_id)
    assert token and parseaddr(mail["Reply-To"])[1] == f"support+{token}@example.test"
    assert "Unplug it and step back." in mail.get_body(("plain",)).get_content()

    # Ann answers from her mail client: to the Reply-To address, quoting our mail.
    answer = email_bytes(
        "Re: Printer on fire",
        "It is out now, thank you!",
        sender="Ann Example <ann@customer.test>",
        to=mail["Reply-To"],
        extra={"In-Reply-To": mail["Message-ID"], "References": mail["Message-ID"]},
    )
    await aiosmtplib.send(
        answer,
        sender="ann@customer.test",
        recipients=[parseaddr(mail["Reply-To"])[1]],
        hostname="127.0.0.1",
        port=ingress_port,
        start_tls=False,
    )
    followup = await customer_message(ws)
    assert followup["conversation_id"] == conversation_id
    assert "It is out now, thank you!" in followup["message"]["text"]
    await ws.close()


async def test_mail_in_the_polled_mailbox_reaches_the_agent_and_the_reply_threads_back(
    make_client: ClientFactory, db: Database, smtp_peer: SmtpPeerFactory, mailbox: Mailbox
) -> None:
    peer = smtp_peer()
    client = await start_hub(make_client, peer, mailbox)
    csrf, ws = await agent_inbox(client, db)

    await mailbox.append(
        email_bytes(
            "Invoice 1042",
            "The invoice total looks wrong.",
            sender="Bob Buyer <bob@customer.test>",
            message_id="<invoice-bob@customer.test>",
        )
    )
    shown = await customer_message(ws)
    assert "invoice total looks wrong" in shown["message"]["text"]
    conversation_id = shown["conversation_id"]
    assert shown["conversation"]["customer_id"] == await customer_of(db, "bob@customer.test")

    sent = await agent_replies(client, csrf, conversation_id, "We will send a new one.", peer)
    mail = sent.message
    assert sent.rcpt_tos == ["bob@customer.test"]
    assert mail["In-Reply-To"] == "<invoice-bob@customer.test>"

    # Bob's answer is delivered into the same mailbox by the mail provider.
    await mailbox.append(
        email_bytes(
            "Re: Invoice 1042",
            "Got it, thanks.",
            sender="Bob Buyer <bob@customer.test>",
            to=mail["Reply-To"],
            extra={"In-Reply-To": mail["Message-ID"], "References": mail["Message-ID"]},
        )
    )
    followup = await customer_message(ws)
    assert followup["conversation_id"] == conversation_id
    assert "Got it, thanks." in followup["message"]["text"]
    await ws.close()
