"""Which conversation a mail lands in, and the thread our replies continue.

Each test reads like the mailbox: Ann writes, we answer, someone writes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from channels.email.threading import BOUNCES_THREAD
from conversations.models import AuthorKind, DeliveryStatus, InboundStatus
from switchboard.tx import Database
from tests.channels.email.conftest import SmtpPeerFactory
from tests.channels.email.samples import sample
from tests.channels.email.support import SUPPORT, EmailHub, customer_mail

ANN = "Ann Example <ann@customer.example>"
MALLORY = "Mallory <mallory@evil.example>"


@pytest.fixture
async def hub(db: Database, smtp_peer: SmtpPeerFactory) -> AsyncIterator[EmailHub]:
    yield await EmailHub.start(db, smtp_peer())


async def ann_and_our_answer(hub: EmailHub) -> tuple[int, str, str]:
    """Ann's first mail and our reply: (conversation id, our Message-ID, Reply-To)."""
    await hub.receive(
        customer_mail("My printer is on fire.", message_id="<first@customer.example>")
    )
    [conversation] = await hub.conversations()
    await hub.reply(conversation.id, "Please switch it off.")
    [sent] = await hub.sent(1)
    return conversation.id, str(sent.message["Message-ID"]), str(sent.message["Reply-To"])


async def test_a_new_mail_opens_a_conversation_with_a_reply_token(hub: EmailHub) -> None:
    await hub.receive(customer_mail("My printer is on fire."))
    [conversation] = await hub.conversations()
    assert conversation.subject == "Printer is on fire"
    assert conversation.reply_token is not None and len(conversation.reply_token) >= 32
    [message] = await hub.messages(conversation.id)
    assert message.text == "My printer is on fire."


async def test_our_reply_continues_the_customers_thread(hub: EmailHub) -> None:
    conversation_id, _our_id, reply_to = await ann_and_our_answer(hub)
    [sent] = await hub.sent(1)
    mail = sent.message
    assert sent.rcpt_tos == ["ann@customer.example"]
    assert mail["In-Reply-To"] == "<first@customer.example>"
    assert mail["References"] == "<first@customer.example>"
    assert mail["Subject"] == f"Re: Printer is on fire [#C-{conversation_id}]"
    [conversation] = await hub.conversations()
    assert reply_to == f"support+{conversation.reply_token}@example.com"
    messages = await hub.messages(conversation_id)
    assert messages[-1].delivery_status == DeliveryStatus.SENT


async def test_a_reply_to_our_reply_token_lands_in_the_conversation(hub: EmailHub) -> None:
    conversation_id, _our_id, reply_to = await ann_and_our_answer(hub)
    # A colleague Ann forwarded our mail to answers it: no In-Reply-To, only the token.
    await hub.receive(
        customer_mail(
            "I am Ann's colleague: the printer is a X200.",
            sender="Bob <bob@customer.example>",
            to=reply_to,
            subject="printer",
        )
    )
    assert len(await hub.conversations()) == 1
    texts = [m.text for m in await hub.messages(conversation_id)]
    assert texts[-1] == "I am Ann's colleague: the printer is a X200."


async def test_a_shortened_reply_token_matches_nothing(hub: EmailHub) -> None:
    _conversation_id, _our_id, reply_to = await ann_and_our_answer(hub)
    local, _, domain = reply_to.partition("@")
    await hub.receive(
        customer_mail("guessing", sender=MALLORY, to=f"{local[:-1]}@{domain}", subject="printer")
    )
    assert len(await hub.conversations()) == 2


async def test_the_customers_reply_by_message_id_lands_in_the_conversation(
    hub: EmailHub,
) -> None:
    conversation_id, our_id, _reply_to = await ann_and_our_answer(hub)
    quoted = (
        "Done, it is off now.\n\n"
        "On Mon, Support <support@example.com> wrote:\n> Please switch it off."
    )
    # Ann's client dropped the Reply-To: only In-Reply-To/References link it.
    await hub.receive(
        customer_mail(quoted, subject="Re: printer", in_reply_to=our_id, references=our_id)
    )
    assert len(await hub.conversations()) == 1
    messages = await hub.messages(conversation_id)
    assert [m.text for m in messages] == [
        "My printer is on fire.",
        "Please switch it off.",
        "Done, it is off now.",
    ]


async def test_a_forged_in_reply_to_opens_a_new_conversation(hub: EmailHub) -> None:
    conversation_id, our_id, _reply_to = await ann_and_our_answer(hub)
    await hub.receive(
        customer_mail(
            "Please send the invoice to me instead.",
            sender=MALLORY,
            subject="Re: Printer is on fire",
            in_reply_to=our_id,
            references=f"<first@customer.example> {our_id}",
        )
    )
    conversations = await hub.conversations()
    assert len(conversations) == 2
    assert conversations[1].customer_id != conversations[0].customer_id
    assert [m.text for m in await hub.messages(conversation_id)] == [
        "My printer is on fire.",
        "Please switch it off.",
    ]


async def test_a_subject_tag_from_an_unverified_sender_opens_a_new_conversation(
    hub: EmailHub,
) -> None:
    # Conversation ids are sequential and From: can be forged, so without a verified
    # sender the tag is no proof: a mail "from Ann" with Ann's tag starts afresh.
    conversation_id, _our_id, _reply_to = await ann_and_our_answer(hub)
    tagged = f"Re: Printer is on fire [#C-{conversation_id}]"
    await hub.receive(customer_mail("Sent from my other client.", subject=tagged))
    await hub.receive(customer_mail("Me too!", sender=MALLORY, subject=tagged))
    conversations = await hub.conversations()
    assert len(conversations) == 3
    assert [m.text for m in await hub.messages(conversation_id)] == [
        "My printer is on fire.",
        "Please switch it off.",
    ]


async def test_a_forged_from_quoting_the_customers_own_message_id_starts_afresh(
    hub: EmailHub,
) -> None:
    # Ann's own Message-ID travels in every Cc and forward; only ours prove a reply.
    conversation_id, _our_id, _reply_to = await ann_and_our_answer(hub)
    await hub.receive(
        customer_mail(
            "Please change my bank details to the ones below.",
            subject="Re: My printer",
            in_reply_to="<first@customer.example>",
            references="<first@customer.example>",
        )
    )
    assert len(await hub.conversations()) == 2
    assert len(await hub.messages(conversation_id)) == 2


@pytest.mark.parametrize("tag", ["[#C-0]", "[#C-2147483648]", "[#C-99999999999999]"])
async def test_a_subject_tag_naming_no_row_opens_a_new_conversation(
    hub: EmailHub, tag: str
) -> None:
    # A number past 32 bits cannot even be asked about on PostgreSQL: asking would fail
    # the intake, and the customer's mail would never show.
    await hub.receive(customer_mail("Hello", subject=f"Re: question {tag}"))
    [conversation] = await hub.conversations()
    assert [m.text for m in await hub.messages(conversation.id)] == ["Hello"]


async def test_a_bounce_of_our_reply_joins_its_conversation_as_automatic(hub: EmailHub) -> None:
    conversation_id, our_id, _reply_to = await ann_and_our_answer(hub)
    dsn = sample("dsn_bounce").replace(
        b"<conv-0a1b2c3d4e5f6a7b8c9d.msg-90@example.com>", our_id.encode()
    )
    await hub.receive(dsn)
    assert len(await hub.conversations()) == 1
    bounce = (await hub.messages(conversation_id))[-1]
    assert bounce.automatic
    assert "User unknown" in bounce.text


async def test_bounces_that_match_nothing_share_one_conversation(hub: EmailHub) -> None:
    await hub.receive(sample("dsn_bounce"))
    await hub.receive(
        sample("dsn_bounce").replace(b"20250110080000.ABCDEF", b"20250110090000.FEDCBA")
    )
    [conversation] = await hub.conversations()
    assert conversation.thread_key == BOUNCES_THREAD
    assert [m.automatic for m in await hub.messages(conversation.id)] == [True, True]


async def test_mail_from_our_own_address_is_not_a_customer(hub: EmailHub) -> None:
    await hub.receive(customer_mail("Loop?", sender=f"ACME Support <{SUPPORT}>"))
    await hub.receive(customer_mail("Loop+?", sender="support+abc@EXAMPLE.com"))
    assert await hub.conversations() == []
    events = await hub.events()
    # Kept as delivered, for the record: the raw bytes and a finished status.
    assert [e.status for e in events] == [InboundStatus.DONE, InboundStatus.DONE]
    assert b"Loop?" in events[0].payload


async def test_the_same_mail_twice_is_stored_once(hub: EmailHub) -> None:
    mail = customer_mail("Once.", message_id="<same@customer.example>")
    await hub.receive(mail)
    await hub.receive(mail)
    [conversation] = await hub.conversations()
    assert len(await hub.messages(conversation.id)) == 1


@pytest.mark.parametrize(
    "sample_name",
    ["auto_replied", "precedence_bulk", "x_loop", "dsn_bounce", "empty_return_path"],
)
async def test_automatic_mail_is_stored_and_never_answered_automatically(
    hub: EmailHub, sample_name: str
) -> None:
    await hub.receive(sample(sample_name))
    [conversation] = await hub.conversations()
    [inbound] = await hub.messages(conversation.id)
    assert inbound.automatic
    acknowledgement = await hub.reply(conversation.id, "We got your mail.", AuthorKind.SYSTEM)
    held = await hub.message(acknowledgement.id)
    assert held.delivery_status == DeliveryStatus.FAILED
    assert held.delivery_error is not None and "automatic" in held.delivery_error
    assert hub.peer.received == []


async def test_an_agent_may_still_answer_automatic_mail(hub: EmailHub) -> None:
    await hub.receive(sample("auto_replied"))
    [conversation] = await hub.conversations()
    await hub.reply(conversation.id, "Enjoy your holiday, Erin.")
    [sent] = await hub.sent(1)
    assert sent.message["Auto-Submitted"] is None


async def test_one_automatic_reply_per_customer_per_window(hub: EmailHub) -> None:
    await hub.receive(customer_mail("First question.", subject="one"))
    await hub.receive(customer_mail("Second question.", subject="two"))
    first, second = await hub.conversations()
    await hub.reply(first.id, "Thanks, we will answer soon.", AuthorKind.SYSTEM)
    [ack] = await hub.sent(1)
    assert ack.message["Auto-Submitted"] == "auto-replied"
    repeat = await hub.reply(second.id, "Thanks, we will answer soon.", AuthorKind.SYSTEM)
    held = await hub.message(repeat.id)
    assert held.delivery_status == DeliveryStatus.FAILED
    assert (
        held.delivery_error is not None and "already got an automatic reply" in held.delivery_error
    )
    assert len(hub.peer.received) == 1


async def test_a_refused_recipient_fails_the_reply_visibly(hub: EmailHub) -> None:
    await hub.receive(customer_mail("Hello", sender="Gone <gone@customer.example>"))
    [conversation] = await hub.conversations()
    hub.peer.refuse["gone@customer.example"] = "550 5.1.1 No such user"
    message = await hub.reply(conversation.id, "Hello back")
    failed = await hub.message(message.id)
    assert failed.delivery_status == DeliveryStatus.FAILED
    assert failed.delivery_error is not None and "550" in failed.delivery_error


async def test_a_newline_in_the_customers_subject_never_reaches_our_headers(
    hub: EmailHub,
) -> None:
    # Subject: =?UTF-8?Q?Invoice_question=0D=0ABcc:_victim@example.net=0AX-Injected:_yes?=
    await hub.receive(sample("subject_newline"))
    [conversation] = await hub.conversations()
    await hub.reply(conversation.id, "Your invoice is attached.")
    [sent] = await hub.sent(1)
    assert sent.rcpt_tos == ["grace@example.org"]
    headers = sent.content.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert not any(line.lower().startswith((b"bcc:", b"x-injected:")) for line in headers)
    assert [line for line in headers if line.lower().startswith(b"subject:")] == [
        f"Subject: Re: Invoice question Bcc: victim@example.net X-Injected: yes "
        f"[#C-{conversation.id}]".encode()
    ]
