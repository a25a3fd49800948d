"""The headers that make a mail automatic (stored, never answered), one at a time."""

from __future__ import annotations

import pytest

from channels.base import InboundMessage, InboxSetup, RawInbound
from channels.email.adapter import EmailAdapter
from tests.channels.email.support import customer_mail


def parse(eml: bytes, headers: dict[str, str] | None = None) -> InboundMessage:
    adapter = EmailAdapter(
        InboxSetup(1, "default", "email", "Support", {"address": "support@example.com"}, {}, "")
    )
    [event] = adapter.parse(RawInbound(headers=headers or {}, query={}, body=eml))
    assert isinstance(event, InboundMessage)
    return event


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Auto-Submitted", "auto-generated"),
        ("Auto-Submitted", "auto-replied; owner-email=x@example.org"),
        ("X-Autoreply", "yes"),
        ("X-Autorespond", "Out of office"),
        ("X-Auto-Response-Suppress", "All"),
        ("X-Auto-Response-Suppress", "OOF, AutoReply"),
        ("Precedence", "bulk"),
        ("Precedence", "junk"),
        ("Precedence", "list"),
        ("List-Id", "Shop news <news.shop.example>"),
        ("List-Unsubscribe", "<mailto:leave@shop.example>"),
        ("X-Loop", "yes"),
        ("Return-Path", "<>"),
    ],
)
def test_loop_headers_make_a_mail_automatic(name: str, value: str) -> None:
    assert parse(customer_mail(headers={name: value})).automatic


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.net", "postmaster@example.net"])
def test_system_senders_are_automatic(sender: str) -> None:
    assert parse(customer_mail(sender=sender)).automatic


def test_auto_submitted_no_is_a_person() -> None:
    assert not parse(customer_mail(headers={"Auto-Submitted": "no"})).automatic


def test_an_ordinary_mail_is_a_person() -> None:
    assert not parse(customer_mail(headers={"Precedence": "normal"})).automatic


def test_the_null_envelope_sender_seen_by_our_ingress_is_a_bounce() -> None:
    msg = parse(customer_mail(), headers={"x-envelope-from": ""})
    assert msg.automatic and msg.raw is not None and msg.raw["bounce"]


def test_the_envelope_recipient_carries_the_reply_token() -> None:
    # Bcc'd to our Reply-To address: only the envelope knows.
    token = "Yx3v9QmT0cR7kLp2WzN8fHs4uJ6aE1dB"
    msg = parse(customer_mail(), headers={"x-envelope-to": f"support+{token}@example.com"})
    assert msg.raw is not None and msg.raw["reply_tokens"] == [token]
