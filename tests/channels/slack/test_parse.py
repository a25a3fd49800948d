"""Captured Events API payloads through the pure adapter: one test per shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from channels.base import (
    Delivery,
    Ignored,
    InboundFile,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    WebhookRejected,
)
from channels.slack.adapter import SlackAdapter
from channels.slack.events import BotIdentity
from channels.slack.mrkdwn import escaped, readable
from tests.channels.slack.support import inbox_setup, payload, raw_of

INBOX = 7


def only(adapter: SlackAdapter, data: dict[str, object]) -> object:
    events = adapter.parse(raw_of(data))
    assert len(events) == 1
    return events[0]


@pytest.fixture
def adapter() -> SlackAdapter:
    return SlackAdapter(inbox_setup())


def test_url_verification_is_not_a_message(adapter: SlackAdapter) -> None:
    data = payload("url_verification")
    assert adapter.delivery(raw_of(data)) == Delivery(dedupe_key="url_verification")
    assert isinstance(only(adapter, data), Ignored)


def test_dm_message(adapter: SlackAdapter) -> None:
    data = payload("dm_message")
    assert adapter.delivery(raw_of(data)) == Delivery(dedupe_key="event:Ev0DM00001")
    message = only(adapter, data)
    assert message == InboundMessage(
        channel="slack",
        inbox_id=INBOX,
        sender_id="U0CUST",
        external_id="D0DMCUST:1700000000.000100",
        thread_key="D0DMCUST:",  # a DM is one conversation
        text=(
            "Hi @U0BOT, my printer is on fire & the manual at "
            "the docs (https://example.com/manual) says nothing"
        ),
        sent_at=datetime(2023, 11, 14, 22, 13, 20, 100, tzinfo=UTC),
        raw=data["event"],
    )


def test_channel_message(adapter: SlackAdapter) -> None:
    message = only(adapter, payload("channel_message"))
    assert isinstance(message, InboundMessage)
    assert message.sender_id == "U0CUST"
    assert message.external_id == "C0SUPPORT:1700000000.000200"
    assert message.thread_key == "C0SUPPORT:1700000000.000200"  # it starts its thread
    assert message.text == "printer is on fire, @here can anyone help? cc #ops"


def test_thread_reply_belongs_to_the_thread_of_its_root(adapter: SlackAdapter) -> None:
    message = only(adapter, payload("thread_reply"))
    assert isinstance(message, InboundMessage)
    assert message.external_id == "C0SUPPORT:1700000100.000300"
    assert message.thread_key == "C0SUPPORT:1700000000.000200"
    assert message.text == "it is still smoking"


def test_thread_broadcast_is_a_message_in_its_thread(adapter: SlackAdapter) -> None:
    message = only(adapter, payload("thread_broadcast"))
    assert isinstance(message, InboundMessage)
    assert message.thread_key == "C0SUPPORT:1700000000.000200"
    assert message.text == "update for everyone: the fire is out"


def test_message_changed_is_an_edit_of_the_original(adapter: SlackAdapter) -> None:
    edit = only(adapter, payload("message_changed"))
    assert isinstance(edit, MessageEdited)
    assert edit.inbox_id == INBOX
    assert edit.external_id == "C0SUPPORT:1700000000.000200"
    assert edit.text == "printer is on fire (the one on floor 2)"
    assert edit.edited_at == datetime.fromtimestamp(1700000300, UTC)


def test_message_deleted_names_the_deleted_message(adapter: SlackAdapter) -> None:
    deleted = only(adapter, payload("message_deleted"))
    assert deleted == MessageDeleted(
        inbox_id=INBOX,
        external_id="C0SUPPORT:1700000000.000200",
        deleted_at=datetime.fromtimestamp(1700000400.0006, UTC),
    )


def test_file_share_carries_the_file_to_fetch(adapter: SlackAdapter) -> None:
    message = only(adapter, payload("file_share"))
    assert isinstance(message, InboundMessage)
    assert message.text == "here is a photo of the smoke"
    assert message.thread_key == "D0DMCUST:"  # the DM's one conversation
    assert list(message.files) == [
        InboundFile(
            filename="smoke.png",
            content_type="image/png",
            size=68,
            ref="https://files.slack.com/files-pri/T0001-F0PHOTO1/smoke.png",
        )
    ]


def test_another_bots_message_is_ignored(adapter: SlackAdapter) -> None:
    ignored = only(adapter, payload("other_bot_message"))
    assert ignored == Ignored("another bot's message")
    # A bot posting without the bot_message subtype is still a bot.
    modern = payload("channel_message", bot_id="B0OTHER")
    assert only(adapter, modern) == Ignored("another bot's message")


def test_our_own_echo_is_ignored(adapter: SlackAdapter) -> None:
    # Known from the payload's authorizations (our bot user) before any auth.test.
    assert only(adapter, payload("own_echo")) == Ignored("our own message")
    # And from auth.test, once bolt has called it: even without authorizations.
    adapter.identity = BotIdentity(user_id="U0BOT", bot_id="B0BOT")
    bare = payload("own_echo", bot_id=None)
    del bare["authorizations"]
    del bare["event"]["bot_id"]
    assert only(adapter, bare) == Ignored("our own message")


def test_channel_join_is_ignored(adapter: SlackAdapter) -> None:
    assert only(adapter, payload("channel_join")) == Ignored("message subtype channel_join")


def test_app_mention_is_ignored_because_the_message_event_carries_it(
    adapter: SlackAdapter,
) -> None:
    assert only(adapter, payload("app_mention")) == Ignored("app_mention event")


def test_reaction_added_is_ignored(adapter: SlackAdapter) -> None:
    assert only(adapter, payload("reaction_added")) == Ignored("reaction_added event")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"[1, 2]",
        b'"text"',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"type": "event_callback", "event": {"type": "message"}}',  # no event_id
        b'{"type": "event_callback", "event_id": "Ev1", "event": []}',
        b'{"type": "event_callback", "event_id": "Ev1", "event": {"type": "message"},'
        b' "authorizations": {"user_id": "U0BOT"}}',
        b'{"type": 5}',
        b'{"type": "url_verification", "challenge": {"x": 1}}',
    ],
)
def test_malformed_bodies_are_refused_with_400(adapter: SlackAdapter, body: bytes) -> None:
    from channels.base import RawInbound

    raw = RawInbound(headers={"Content-Type": "application/json"}, query={}, body=body)
    with pytest.raises(WebhookRejected) as refused:
        adapter.delivery(raw)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""],
)
def test_other_content_types_are_refused(adapter: SlackAdapter, content_type: str) -> None:
    raw = raw_of(payload("dm_message"), **{"Content-Type": content_type})
    with pytest.raises(WebhookRejected) as refused:
        adapter.delivery(raw)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("mrkdwn", "text"),
    [
        ("<@U024BE7LH>", "@U024BE7LH"),
        ("<@U024BE7LH|ann>", "@ann"),
        ("<#C024BE7LR|general>", "#general"),
        ("<!channel> and <!everyone>", "@channel and @everyone"),
        ("<!subteam^SAZ94GDB8|@support>", "@support"),
        ("<https://example.com>", "https://example.com"),
        ("<https://example.com|example.com>", "example.com (https://example.com)"),
        ("<mailto:ann@example.com|ann@example.com>", "ann@example.com"),
        ("a &lt;b&gt; &amp;amp;", "a <b> &amp;"),
    ],
)
def test_mrkdwn_reads_as_plain_text(mrkdwn: str, text: str) -> None:
    assert readable(mrkdwn) == text


def test_outbound_text_is_escaped_so_it_shows_as_typed() -> None:
    assert escaped("<!here> <https://evil|safe> & co") == (
        "&lt;!here&gt; &lt;https://evil|safe&gt; &amp; co"
    )
    assert readable(escaped("1 < 2 & 3 > 2")) == "1 < 2 & 3 > 2"


def test_top_level_dm_messages_share_one_conversation_and_dm_threads_their_own(
    adapter: SlackAdapter,
) -> None:
    first = only(adapter, payload("dm_message"))
    later = json.loads(json.dumps(payload("dm_message")))
    later["event_id"] = "Ev-later"
    later["event"]["ts"] = later["event"]["event_ts"] = "1700000999.000100"
    threaded = json.loads(json.dumps(later))
    threaded["event_id"] = "Ev-threaded"
    threaded["event"]["thread_ts"] = "1700000999.000100"
    threaded["event"]["ts"] = "1700001000.000100"
    second, in_thread = only(adapter, later), only(adapter, threaded)
    assert isinstance(first, InboundMessage) and isinstance(second, InboundMessage)
    assert isinstance(in_thread, InboundMessage)
    assert first.thread_key == second.thread_key == "D0DMCUST:"
    assert in_thread.thread_key == "D0DMCUST:1700000999.000100"
