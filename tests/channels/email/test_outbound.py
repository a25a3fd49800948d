"""Our outbound mail as an SMTP peer (aiosmtpd) receives it: headers, parts, TLS, AUTH,
and what a refusal or a lost connection turns into."""

from __future__ import annotations

from typing import Any

import pytest

from channels.base import DeliveryFailed, InboxSetup, OutboundFile, OutboundMessage
from channels.email.adapter import DeliveryOutcomeUnknown, EmailAdapter
from channels.email.quotes import REPLY_MARKER
from tests.channels.email.conftest import SmtpPeerFactory

TOKEN = "Yx3v9QmT0cR7kLp2WzN8fHs4uJ6aE1dB"


def adapter_for(config: dict[str, Any], credentials: dict[str, str] | None = None) -> EmailAdapter:
    return EmailAdapter(
        InboxSetup(
            id=7,
            key="default",
            kind="email",
            name="ACME Support",
            config=config,
            credentials=credentials or {},
            public_url="http://hub.test",
        )
    )


def reply(**changes: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "outbox_id": 1,
        "message_id": 42,
        "conversation_id": 17,
        "inbox_id": 7,
        "seq": 2,
        "thread_key": "email:cajx8wq1@mail.gmail.com",
        "recipient_id": "ann.example@gmail.com",
        "text": "Please switch it off and unplug it.\nThen call us.",
        "author_kind": "agent",
        "extra": {
            "subject": "Re: Printer is on fire [#C-17]",
            "reply_token": TOKEN,
            "in_reply_to": "<CAJx8Wq1@mail.gmail.com>",
            "references": ["<first@mail.gmail.com>", "<CAJx8Wq1@mail.gmail.com>"],
        },
    }
    values.update(changes)
    return OutboundMessage(**values)


async def test_a_reply_carries_threading_headers_marker_both_parts_and_attachments(
    smtp_peer: SmtpPeerFactory,
) -> None:
    peer = smtp_peer()
    adapter = adapter_for(peer.config())
    pdf = OutboundFile("Rechnung März.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")
    receipt = await adapter.send(reply(files=[pdf]))

    [got] = await peer.wait_for(1)
    assert got.rcpt_tos == ["ann.example@gmail.com"]
    assert got.mail_from == "support@example.com"
    mail = got.message
    assert mail["Message-ID"] == receipt.external_id
    assert receipt.external_id is not None
    assert (
        receipt.external_id.startswith("<conv-") and ".msg-42@example.com>" in receipt.external_id
    )
    assert TOKEN not in receipt.external_id  # the token never travels in References
    assert mail["In-Reply-To"] == "<CAJx8Wq1@mail.gmail.com>"
    assert mail["References"] == "<first@mail.gmail.com> <CAJx8Wq1@mail.gmail.com>"
    assert mail["Reply-To"] == f"support+{TOKEN}@example.com"
    assert mail["Subject"] == "Re: Printer is on fire [#C-17]"
    assert mail["From"] == "ACME Support <support@example.com>"
    assert mail["Auto-Submitted"] is None  # a person wrote it
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().startswith(REPLY_MARKER)
    assert "Please switch it off and unplug it.\nThen call us." in plain.get_content()
    assert "Please switch it off and unplug it." in html.get_content()
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "Rechnung März.pdf"
    assert attachment.get_content() == b"%PDF-1.4\n%%EOF\n"


async def test_our_text_is_escaped_in_the_html_part(smtp_peer: SmtpPeerFactory) -> None:
    peer = smtp_peer()
    await adapter_for(peer.config()).send(reply(text="You wrote: <script>alert(1)</script>"))
    [got] = await peer.wait_for(1)
    html = got.message.get_body(("html",))
    assert html is not None
    assert "<script>" not in html.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.get_content()


async def test_a_decoded_newline_in_the_customers_subject_injects_no_header(
    smtp_peer: SmtpPeerFactory,
) -> None:
    # What the parser hands on for "=?UTF-8?Q?Invoice=0D=0ABcc:_victim@…?=" if it ever
    # kept the newline; the reply must still carry one Subject and no Bcc.
    peer = smtp_peer()
    extra = dict(reply().extra, subject="Re: Invoice\r\nBcc: victim@example.net\nX-Injected: yes")
    await adapter_for(peer.config()).send(reply(extra=extra))
    [got] = await peer.wait_for(1)
    assert got.rcpt_tos == ["ann.example@gmail.com"]
    header_block = got.content.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in header_block and b"\r\nX-Injected:" not in header_block
    assert got.message["Subject"] == "Re: Invoice Bcc: victim@example.net X-Injected: yes"


@pytest.mark.parametrize("author", ["system", "bot"])
async def test_automatic_replies_say_so(smtp_peer: SmtpPeerFactory, author: str) -> None:
    peer = smtp_peer()
    await adapter_for(peer.config()).send(reply(author_kind=author))
    [got] = await peer.wait_for(1)
    assert got.message["Auto-Submitted"] == "auto-replied"
    assert got.message["X-Auto-Response-Suppress"] == "All"


async def test_starttls_with_auth(smtp_peer: SmtpPeerFactory) -> None:
    peer = smtp_peer(tls="starttls", auth=True)
    await adapter_for(peer.config(), peer.credentials()).send(reply())
    [got] = await peer.wait_for(1)
    assert got.tls and got.authenticated


# aiosmtpd warns because it counts only STARTTLS as TLS; this socket is TLS from the start.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls_with_auth(smtp_peer: SmtpPeerFactory) -> None:
    peer = smtp_peer(tls="ssl", auth=True)
    await adapter_for(peer.config(), peer.credentials()).send(reply())
    [got] = await peer.wait_for(1)
    assert got.tls and got.authenticated


async def test_an_untrusted_certificate_is_refused_and_retried_later(
    smtp_peer: SmtpPeerFactory,
) -> None:
    peer = smtp_peer(tls="starttls")
    config = peer.config()
    del config["smtp_cafile"]  # the system's CAs do not know our self-signed certificate
    with pytest.raises(DeliveryFailed) as failed:
        await adapter_for(config).send(reply())
    assert not failed.value.permanent
    assert peer.received == []


async def test_a_wrong_password_is_a_retryable_failure(smtp_peer: SmtpPeerFactory) -> None:
    peer = smtp_peer(tls="starttls", auth=True)
    with pytest.raises(DeliveryFailed) as failed:
        await adapter_for(peer.config(), {"smtp_password": "wrong"}).send(reply())
    assert "login" in failed.value.reason and not failed.value.permanent
    assert peer.received == []


async def test_a_refused_recipient_is_a_permanent_failure(smtp_peer: SmtpPeerFactory) -> None:
    peer = smtp_peer()
    peer.refuse["ann.example@gmail.com"] = "550 5.1.1 No such user"
    with pytest.raises(DeliveryFailed) as failed:
        await adapter_for(peer.config()).send(reply())
    assert failed.value.permanent
    assert "550" in failed.value.reason
    assert peer.received == []


async def test_a_temporarily_refused_recipient_is_retried(smtp_peer: SmtpPeerFactory) -> None:
    peer = smtp_peer()
    peer.refuse["ann.example@gmail.com"] = "450 4.2.1 Mailbox busy, try later"
    with pytest.raises(DeliveryFailed) as failed:
        await adapter_for(peer.config()).send(reply())
    assert not failed.value.permanent


async def test_nobody_listening_is_a_retryable_failure(smtp_peer: SmtpPeerFactory) -> None:
    peer = smtp_peer()
    config = dict(peer.config(), smtp_port=1)  # a privileged port nothing listens on
    with pytest.raises(DeliveryFailed) as failed:
        await adapter_for(config).send(reply())
    assert not failed.value.permanent


async def test_a_connection_lost_after_the_message_went_in_is_an_unknown_outcome(
    smtp_peer: SmtpPeerFactory,
) -> None:
    # The server has the mail but never said 250: the outbox must ask, not resend.
    peer = smtp_peer()
    peer.hang_up_after_data = True
    with pytest.raises(DeliveryOutcomeUnknown):
        await adapter_for(peer.config()).send(reply())
    assert len(peer.received) == 1
    assert not issubclass(DeliveryOutcomeUnknown, DeliveryFailed)


async def test_held_back_automatic_mail_is_never_sent(smtp_peer: SmtpPeerFactory) -> None:
    peer = smtp_peer()
    extra = dict(reply().extra, suppressed="not sent: automatic replies never answer …")
    with pytest.raises(DeliveryFailed) as failed:
        await adapter_for(peer.config()).send(reply(author_kind="bot", extra=extra))
    assert failed.value.permanent
    assert peer.received == []
