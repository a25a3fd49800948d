"""A customer mails support; an agent sees it live and replies; the reply reaches the
customer's mail server in the same thread; the customer answers it and the answer lands
in the same conversation, without the quoted text. The real app, its workers, its
default email inbox (from the SWITCHBOARD_* settings) and aiosmtpd as the mail server.
"""

from __future__ import annotations

from typing import Any

from channels.base import RawInbound
from conversations.inbound import do_accept
from switchboard.appkeys import DB, REGISTRY
from tests.channels.email.conftest import SmtpPeerFactory
from tests.channels.email.support import SUPPORT, customer_mail
from tests.conftest import AppClient, ClientFactory, create_user, login
from tests.security.support import receive


async def file_mail(client: AppClient, eml: bytes) -> None:
    """What the SMTP ingress or the IMAP poller does with a mail for our inbox."""
    found = await client.app[REGISTRY].by_key("email", "default")
    assert found is not None
    setup, adapter = found
    raw = RawInbound(headers={}, query={}, body=eml)
    delivery = adapter.delivery(raw)
    await client.app[DB].run(
        lambda s: do_accept(s, inbox_id=setup.id, channel="email", delivery=delivery, raw=raw)
    )


async def test_mail_to_agent_and_back_in_one_thread(
    make_client: ClientFactory, smtp_peer: SmtpPeerFactory, db: Any
) -> None:
    peer = smtp_peer()
    client = await make_client(
        email_address=SUPPORT, smtp_host="127.0.0.1", smtp_port=peer.port, smtp_tls="none"
    )
    await create_user(db, "alex@example.com")
    csrf = await login(client, "alex@example.com")
    inbox = await client.ws_connect("/inbox/ws")
    await inbox.send_json({"type": "ping"})
    await receive(inbox, "pong")

    await file_mail(
        client,
        customer_mail(
            "My printer is on fire.\n\n-- \nAnn Example\nACME Ltd.",
            message_id="<first@customer.example>",
        ),
    )
    created = (await receive(inbox, "message.created"))["data"]
    assert created["message"]["text"] == "My printer is on fire."
    assert created["message"]["subject"] == "Printer is on fire"
    conversation_id = created["conversation_id"]

    answer = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": "Please switch it off and unplug it."},
        headers={"X-CSRF-Token": csrf},
    )
    assert answer.status == 201, await answer.text()
    [sent] = await peer.wait_for(1)
    mail = sent.message
    assert sent.rcpt_tos == ["ann@customer.example"]
    assert mail["In-Reply-To"] == "<first@customer.example>"
    assert mail["Subject"] == f"Re: Printer is on fire [#C-{conversation_id}]"
    reply_to = str(mail["Reply-To"])
    assert reply_to.startswith("support+")
    plain = mail.get_body(("plain",))
    assert plain is not None

    # Ann answers from her phone: her client quotes our whole mail below her words.
    quoted = "\n".join(f"> {line}" for line in plain.get_content().splitlines())
    await file_mail(
        client,
        customer_mail(
            f"Done. It smells less now.\n\nOn Mon, 6 Jan 2025, ACME Support wrote:\n{quoted}",
            to=reply_to,
            subject=str(mail["Subject"]),
            in_reply_to=str(mail["Message-ID"]),
            references=f"<first@customer.example> {mail['Message-ID']}",
        ),
    )
    while True:
        created = (await receive(inbox, "message.created"))["data"]
        if created["message"]["author_kind"] == "customer":
            break
    assert created["conversation_id"] == conversation_id
    assert created["message"]["text"] == "Done. It smells less now."

    listed = await client.get(f"/api/v1/conversations/{conversation_id}/messages")
    texts = [m["text"] for m in (await listed.json())["messages"]]
    assert texts == [
        "My printer is on fire.",
        "Please switch it off and unplug it.",
        "Done. It smells less now.",
    ]
