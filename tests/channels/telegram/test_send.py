"""Sending through the Bot API (the fake): texts, files, splitting, pacing, and what each
of Telegram's refusals means for the outbox."""

from __future__ import annotations

import dataclasses
import datetime as dt
import warnings
from collections.abc import Sequence

import pytest
from telegram.error import RetryAfter

from channels.base import DeliveryFailed, InboundFile, OutboundFile, OutboundMessage
from channels.telegram.adapter import TelegramAdapter
from channels.telegram.pacing import telegram_pacer
from channels.telegram.sending import OutcomeUnknown, retry_seconds, utf16_len
from tests.channels.telegram.support import setup_for
from tests.clock import FakeTime
from tests.fakes.telegram_api import (
    TOKEN,
    FakeTelegramApi,
    bad_request,
    blocked,
    disconnect,
    rate_limited,
    server_error,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n%%EOF\n"


def reply(
    text: str,
    files: Sequence[OutboundFile] = (),
    chat: int = 1111111,
    outbox_id: int = 1,
) -> OutboundMessage:
    return OutboundMessage(
        outbox_id=outbox_id,
        message_id=outbox_id,
        conversation_id=1,
        inbox_id=7,
        seq=2,
        thread_key=f"chat:{chat}",
        recipient_id=str(chat),
        text=text,
        author_kind="agent",
        files=files,
    )


async def test_text_reaches_the_chat_as_written(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    receipt = await paced.send(reply("Your order ships *today* <b>", chat=1111111))
    group = await paced.send(reply("Open on Sunday, 10-16.", chat=-1001234567890))
    first, second = telegram_api.sent()
    assert (first.method, first.chat_id, first.fields["text"]) == (
        "sendMessage",
        1111111,
        "Your order ships *today* <b>",
    )
    assert "parse_mode" not in first.fields  # an agent's text is never read as markup
    assert (second.chat_id, second.fields["text"]) == (-1001234567890, "Open on Sunday, 10-16.")
    assert receipt.external_id == "1111111:5001"
    assert group.external_id == "-1001234567890:5002"


async def test_files_go_as_photo_or_document_with_the_text_as_first_caption(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    files = [
        OutboundFile("label.png", "image/png", PNG),
        OutboundFile("invoice.pdf", "application/pdf", PDF),
    ]
    receipt = await paced.send(reply("Here are the label and the invoice.", files))
    photo, document = telegram_api.sent()
    assert photo.method == "sendPhoto" and photo.chat_id == 1111111
    assert photo.fields["caption"] == "Here are the label and the invoice."
    assert (photo.files["photo"].filename, photo.files["photo"].data) == ("label.png", PNG)
    assert document.method == "sendDocument" and "caption" not in document.fields
    assert (document.files["document"].filename, document.files["document"].data) == (
        "invoice.pdf",
        PDF,
    )
    assert receipt.external_id == "1111111:5001"


async def test_long_text_is_split_within_telegram_limits(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    paragraph = "Step " + "🚚" * 50 + " then wait.\n"
    text = paragraph * 120  # about 13,000 UTF-16 units
    await paced.send(reply(text, [OutboundFile("invoice.pdf", "application/pdf", PDF)]))
    sent = telegram_api.sent()
    texts = [r.fields["text"] for r in sent if r.method == "sendMessage"]
    assert len(texts) >= 4 and all(utf16_len(t) <= 4096 for t in texts)
    position = 0  # the chunks are the text in order, cut at a line break or a space
    for chunk in texts:
        assert text.startswith(chunk, position)
        position += len(chunk)
        if position < len(text):
            assert text[position] in " \n"
            position += 1
    assert position == len(text)
    # Too long for a caption: the file follows the text, without one.
    assert sent[-1].method == "sendDocument" and "caption" not in sent[-1].fields


async def test_flood_control_hands_back_telegrams_retry_after(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi, fake_time: FakeTime
) -> None:
    telegram_api.script("sendMessage", rate_limited(7))
    with pytest.raises(DeliveryFailed) as failed:
        await paced.send(reply("hello"))
    assert failed.value.retry_after == 7 and not failed.value.permanent
    # Nothing else goes to that chat before Telegram's time is up.
    await paced.send(reply("hello again"))
    assert fake_time.slept == [7.0]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi, status: int
) -> None:
    telegram_api.script("sendMessage", server_error(status))
    with pytest.raises(DeliveryFailed) as failed:
        await paced.send(reply("hello"))
    assert not failed.value.permanent and not failed.value.recipient_unreachable


async def test_a_blocked_bot_marks_the_recipient_unreachable(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    telegram_api.script("sendMessage", blocked())
    with pytest.raises(DeliveryFailed) as failed:
        await paced.send(reply("hello"))
    assert failed.value.recipient_unreachable and failed.value.permanent
    assert "blocked by the user" in failed.value.reason


async def test_a_bad_request_is_permanent(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    telegram_api.script("sendMessage", bad_request("chat not found"))
    with pytest.raises(DeliveryFailed) as failed:
        await paced.send(reply("hello"))
    assert failed.value.permanent and not failed.value.recipient_unreachable


async def test_a_dropped_answer_is_an_unknown_outcome_not_a_retry(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    telegram_api.script("sendMessage", disconnect())
    with pytest.raises(OutcomeUnknown):
        await paced.send(reply("hello"))
    assert len(telegram_api.calls("sendMessage")) == 1  # it did reach Telegram


async def test_an_unreachable_api_is_retried(telegram_api: FakeTelegramApi) -> None:
    await telegram_api.close()  # nothing listens there any more: connection refused
    adapter = TelegramAdapter(setup_for(telegram_api.url))
    with pytest.raises(DeliveryFailed) as failed:
        await adapter.send(reply("hello"))
    assert not failed.value.permanent
    await adapter.aclose()


async def test_a_rejected_token_never_shows_in_the_error(telegram_api: FakeTelegramApi) -> None:
    wrong = "987654321:AAwrong-token-that-is-secret"
    setup = setup_for(telegram_api.url)
    adapter = TelegramAdapter(
        dataclasses.replace(setup, credentials={**setup.credentials, "bot_token": wrong})
    )
    with pytest.raises(DeliveryFailed) as failed:
        await adapter.send(reply("hello"))
    assert not failed.value.permanent
    assert wrong not in failed.value.reason and TOKEN not in failed.value.reason
    await adapter.aclose()


async def test_a_retry_after_a_partial_send_does_not_repeat_what_arrived(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    files = [
        OutboundFile("a.png", "image/png", PNG),
        OutboundFile("b.pdf", "application/pdf", PDF),
    ]
    telegram_api.script("sendDocument", rate_limited(2))
    with pytest.raises(DeliveryFailed):
        await paced.send(reply("two files", files, outbox_id=41))
    receipt = await paced.send(reply("two files", files, outbox_id=41))
    assert [r.method for r in telegram_api.sent()] == ["sendPhoto", "sendDocument", "sendDocument"]
    assert len(telegram_api.calls("sendPhoto")) == 1
    assert receipt.external_id == "1111111:5001"  # the first part, sent on the first try


async def test_sends_to_one_chat_are_paced_one_per_second(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi, fake_time: FakeTime
) -> None:
    for n in range(3):
        await paced.send(reply(f"part {n}", outbox_id=n + 1))
    assert fake_time.slept == [1.0, 1.0]
    assert [r.fields["text"] for r in telegram_api.sent()] == ["part 0", "part 1", "part 2"]


def test_pacer_limits_groups_chats_and_the_bot_as_a_whole() -> None:
    time = FakeTime()
    pacer = telegram_pacer(time.clock, time.sleep)
    far = time.now + 100
    # Sends at the same moment each take the next slot before waiting.
    assert [pacer.reserve(1, far) for _ in range(3)] == [0, 1.0, 2.0]  # 1/s per chat
    assert [pacer.reserve(-100, far) for _ in range(2)] == [0, 3.0]  # 20/min in a group
    # The bot as a whole: 30/s, whichever chats the sends are for.
    assert [pacer.reserve_overall() for _ in range(3)] == pytest.approx([0, 1 / 30, 2 / 30])
    pacer.hold(2, 30)
    with pytest.raises(DeliveryFailed) as failed:
        pacer.reserve(2, time.now + 20)  # not worth holding the outbox row for
    assert failed.value.retry_after == pytest.approx(30)


def test_retry_after_is_read_in_either_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PTB_TIMEDELTA")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22's int form warns
        as_int = RetryAfter(4)
    assert retry_seconds(as_int) == 4.0
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    assert retry_seconds(RetryAfter(dt.timedelta(seconds=4))) == 4.0


async def test_the_bot_token_stays_out_of_the_logs(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    telegram_api.add_file("F-1", PDF, "documents/file_1.pdf")
    await paced.send(reply("hello"))
    assert await paced.fetch(InboundFile("a.pdf", ref="F-1")) == PDF
    assert "sendMessage" in caplog.text and "documents/file_1.pdf" in caplog.text
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text


async def test_a_file_past_the_download_limit_or_unknown_is_given_up_at_once(
    paced: TelegramAdapter, telegram_api: FakeTelegramApi
) -> None:
    telegram_api.add_file("F-big", b"\0" * (20 * 1024 * 1024 + 1), "videos/big.mp4")
    assert await paced.fetch(InboundFile("big.mp4", ref="F-big")) == b""  # "too large" note
    with pytest.raises(DeliveryFailed) as gone:
        await paced.fetch(InboundFile("old.pdf", ref="F-expired"))
    assert gone.value.permanent  # the message is kept with "could not be downloaded"
    assert telegram_api.calls("download") == []
