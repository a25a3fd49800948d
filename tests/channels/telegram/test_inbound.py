"""Telegram updates through the real app: files downloaded from the Bot API and kept,
edits kept as revisions, /start answered, a block remembered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select

from conversations.models import Attachment, AttachmentBlob, Message, MessageRevision
from customers.models import Identity
from switchboard.tx import Database
from tests.channels.telegram.support import api_calls, eventually, payload, post_update, texts_in
from tests.conftest import AppClient
from tests.fakes.telegram_api import FakeTelegramApi

ClientMaker = Callable[..., Awaitable[AppClient]]
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x42" * 300
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def stored_files(db: Database) -> list[tuple[str, str, bytes, str]]:
    """(filename, content type, bytes, message text) of every stored attachment."""
    async with db.reading() as session:
        rows = await session.execute(
            select(Attachment.filename, Attachment.content_type, AttachmentBlob.data, Message.text)
            .join(AttachmentBlob, AttachmentBlob.attachment_id == Attachment.id)
            .join(Message, Message.id == Attachment.message_id)
            .order_by(Message.seq)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_photo_and_document_are_downloaded_and_kept_with_the_message(
    tg_client: ClientMaker, db: Database, telegram_api: FakeTelegramApi
) -> None:
    telegram_api.add_file("AgACAgQAAxkBAAIBZ2X-large", JPEG, "photos/file_12.jpg")
    telegram_api.add_file("BQACAgQAAxkBAAIBaGX-invoice", PDF, "documents/file_13.pdf")
    client = await tg_client()
    assert (await post_update(client, payload("photo_caption")))[0] == 200
    assert (await post_update(client, payload("document")))[0] == 200

    async def both() -> list[tuple[str, str, bytes, str]]:
        files = await stored_files(db)
        return files if len(files) == 2 else []

    photo, document = await eventually(both)
    assert photo == ("photo_AQADlarge.jpg", "image/jpeg", JPEG, "The box arrived crushed")
    assert document == ("invoice-2291.pdf", "application/pdf", PDF, "")
    # Only the largest size was fetched, through getFile and the file URL.
    assert [r.fields["file_id"] for r in telegram_api.calls("getFile")] == [
        "AgACAgQAAxkBAAIBZ2X-large",
        "BQACAgQAAxkBAAIBaGX-invoice",
    ]
    assert [r.fields["path"] for r in telegram_api.calls("download")] == [
        "photos/file_12.jpg",
        "documents/file_13.pdf",
    ]


async def test_a_file_telegram_will_not_hand_over_keeps_the_message_with_a_note(
    tg_client: ClientMaker, db: Database, telegram_api: FakeTelegramApi
) -> None:
    client = await tg_client()  # the fake knows no such file: "invalid file_id"
    assert (await post_update(client, payload("photo_caption")))[0] == 200
    (text,) = await eventually(lambda: texts_in(db, "chat:1111111"))
    assert text == "The box arrived crushed\n[photo_AQADlarge.jpg: could not be downloaded]"


async def test_an_edit_is_kept_as_a_revision_and_the_message_shows_the_new_text(
    tg_client: ClientMaker, db: Database
) -> None:
    client = await tg_client()
    assert (await post_update(client, payload("private_text")))[0] == 200
    await eventually(lambda: texts_in(db, "chat:1111111"))
    assert (await post_update(client, payload("edited_message", update_id=829104532)))[0] == 200

    async def revisions() -> list[str]:
        async with db.reading() as session:
            return list((await session.execute(select(MessageRevision.text))).scalars())

    assert await eventually(revisions) == ["Hello, my parcel has not arrived"]
    assert await texts_in(db, "chat:1111111") == ["Hello, my parcel (order 2291) has not arrived"]
    async with db.reading() as session:
        edited = (await session.execute(select(Message.edited_at))).scalar_one()
    assert edited is not None


async def test_start_is_stored_and_answered_with_the_greeting(
    tg_client: ClientMaker, db: Database, telegram_api: FakeTelegramApi
) -> None:
    client = await tg_client()
    assert (await post_update(client, payload("start")))[0] == 200

    (greeting,) = await api_calls(telegram_api, "sendMessage")
    assert greeting.chat_id == 1111111
    assert greeting.fields["text"].startswith("Hello!")
    texts = await texts_in(db, "chat:1111111")
    assert texts[0] == "/start" and texts[1] == greeting.fields["text"]


async def test_a_user_who_blocks_the_bot_becomes_unreachable(
    tg_client: ClientMaker, db: Database
) -> None:
    client = await tg_client()
    assert (await post_update(client, payload("private_text")))[0] == 200
    await eventually(lambda: texts_in(db, "chat:1111111"))
    assert (await post_update(client, payload("my_chat_member_kicked", update_id=829104532)))[
        0
    ] == 200

    async def unreachable() -> bool:
        async with db.reading() as session:
            reachable = (
                await session.execute(
                    select(Identity.reachable).where(Identity.external_id == "1111111")
                )
            ).scalar_one()
        return reachable is False

    assert await eventually(unreachable)
