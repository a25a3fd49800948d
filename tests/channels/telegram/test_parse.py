"""Captured Telegram updates, one shape per test, through the adapter's pure parse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.base import (
    Ignored,
    InboundFile,
    InboundMessage,
    MessageEdited,
    SenderUnreachable,
    WebhookRejected,
)
from channels.telegram.adapter import TelegramAdapter
from tests.channels.telegram.support import payload, raw, setup_for

INBOX = 7


def parse_one(name: str) -> object:
    adapter = TelegramAdapter(setup_for(inbox_id=INBOX))
    (event,) = adapter.parse(raw(payload(name)))
    return event


def test_private_text() -> None:
    msg = parse_one("private_text")
    assert msg == InboundMessage(
        channel="telegram",
        inbox_id=INBOX,
        sender_id="1111111",
        external_id="1111111:1365",
        thread_key="chat:1111111",
        text="Hello, my parcel has not arrived",
        sent_at=datetime(2015, 9, 7, 17, 5, 32, tzinfo=UTC),
        sender_name="Ann Lee",
    )


def test_group_text_is_one_conversation_per_group() -> None:
    msg = parse_one("group_text")
    assert isinstance(msg, InboundMessage)
    assert msg.thread_key == "chat:-1001234567890"
    assert msg.external_id == "-1001234567890:88"
    assert (msg.sender_id, msg.sender_name) == ("2222222", "Bo")
    assert msg.text == "@switchboard_test_bot is the shop open on Sunday?"
    assert not msg.wants_greeting


def test_photo_with_caption_takes_the_largest_size() -> None:
    msg = parse_one("photo_caption")
    assert isinstance(msg, InboundMessage)
    assert msg.text == "The box arrived crushed"
    assert msg.files == (
        InboundFile(
            filename="photo_AQADlarge.jpg",
            content_type="image/jpeg",
            size=61440,
            ref="AgACAgQAAxkBAAIBZ2X-large",
        ),
    )


def test_document_keeps_its_name_and_type() -> None:
    msg = parse_one("document")
    assert isinstance(msg, InboundMessage)
    assert msg.text == ""
    assert msg.files == (
        InboundFile(
            filename="invoice-2291.pdf",
            content_type="application/pdf",
            size=48213,
            ref="BQACAgQAAxkBAAIBaGX-invoice",
        ),
    )


def test_edited_message_names_the_original() -> None:
    edit = parse_one("edited_message")
    assert edit == MessageEdited(
        inbox_id=INBOX,
        external_id="1111111:1365",
        text="Hello, my parcel (order 2291) has not arrived",
        edited_at=datetime(2015, 9, 7, 17, 6, 30, tzinfo=UTC),
    )


def test_start_asks_for_the_greeting_and_is_still_a_message() -> None:
    msg = parse_one("start")
    assert isinstance(msg, InboundMessage)
    assert msg.wants_greeting and msg.text == "/start"
    assert msg.external_id == "1111111:1364"


@pytest.mark.parametrize(
    ("text", "greets"),
    [
        ("/start ref-campaign-7", True),
        ("/start@switchboard_test_bot", True),
        ("/starting over", False),
        ("please /start", False),
    ],
)
def test_only_the_start_command_greets(text: str, greets: bool) -> None:
    update = payload("start")
    update["message"]["text"] = text
    (msg,) = TelegramAdapter(setup_for()).parse(raw(update))
    assert isinstance(msg, InboundMessage) and msg.wants_greeting is greets


def test_sticker_reads_as_its_emoji() -> None:
    msg = parse_one("sticker")
    assert isinstance(msg, InboundMessage)
    assert msg.text == "[sticker 😀]" and msg.files == ()


def test_location_reads_as_coordinates_with_a_map_link() -> None:
    msg = parse_one("location")
    assert isinstance(msg, InboundMessage)
    assert msg.text.startswith("[location 52.5, 13.4] ")
    assert "openstreetmap.org/?mlat=52.5&mlon=13.4" in msg.text


def test_voice_message_is_a_placeholder_with_the_recording() -> None:
    msg = parse_one("voice")
    assert isinstance(msg, InboundMessage)
    assert msg.text == "[voice message 0:07]"
    assert msg.files == (InboundFile("voice.ogg", "audio/ogg", 20480, ref="AwACAgQAAxkBAAIBvoice"),)


def test_user_blocking_the_bot_makes_them_unreachable() -> None:
    assert parse_one("my_chat_member_kicked") == SenderUnreachable(
        inbox_id=INBOX, sender_id="1111111", reason="blocked the bot"
    )


def test_unknown_update_type_is_ignored_with_a_reason() -> None:
    event = parse_one("unknown_update")
    assert isinstance(event, Ignored) and "message_reaction" in event.reason


def test_channel_post_is_ignored() -> None:
    event = parse_one("channel_post")
    assert isinstance(event, Ignored) and "channel_post" in event.reason


def test_bot_removed_from_a_group_is_not_a_blocked_customer() -> None:
    update = payload("my_chat_member_kicked")
    update["my_chat_member"]["chat"] = {"id": -100555, "title": "Acme", "type": "supergroup"}
    (event,) = TelegramAdapter(setup_for()).parse(raw(update))
    assert isinstance(event, Ignored)


def test_live_location_moving_is_not_an_edit() -> None:
    update = payload("location")
    update["edited_message"] = {**update.pop("message"), "edit_date": 1441645960}
    (event,) = TelegramAdapter(setup_for()).parse(raw(update))
    assert isinstance(event, Ignored)


def test_service_message_in_a_group_is_ignored() -> None:
    update = payload("group_text")
    message = update["message"]
    del message["text"], message["entities"]
    message["new_chat_members"] = [{"id": 3333333, "is_bot": False, "first_name": "Cy"}]
    (event,) = TelegramAdapter(setup_for()).parse(raw(update))
    assert isinstance(event, Ignored)


@pytest.mark.parametrize(
    "breakage",
    [
        {"chat": {"id": "1111111", "type": "private"}},  # a string chat id
        {"chat": {"id": True, "type": "private"}},
        {"message_id": 1.5},
        {"date": 10**20},  # past any calendar
        {"text": 5},
        {"from": {"id": "x", "is_bot": False, "first_name": "Ann"}},
        {"chat": None},
    ],
)
def test_a_message_with_wrongly_typed_fields_is_a_400(breakage: dict[str, object]) -> None:
    update = payload("private_text")
    update["message"].update(breakage)
    with pytest.raises(WebhookRejected) as refused:
        TelegramAdapter(setup_for()).parse(raw(update))
    assert refused.value.status == 400


def test_a_photo_without_sizes_is_a_400() -> None:
    update = payload("photo_caption")
    update["message"]["photo"] = []
    with pytest.raises(WebhookRejected) as refused:
        TelegramAdapter(setup_for()).parse(raw(update))
    assert refused.value.status == 400
