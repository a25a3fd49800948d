"""Slack events becoming conversations: threads, edits, deletes and shared files, through
the real app (signed webhook → filed → processed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from conversations.attachments import load_attachment
from conversations.models import Attachment, MessageRevision
from tests.channels.slack.support import (
    conversations,
    eventually,
    messages,
    payload,
    post_event,
)
from tests.conftest import AppClient
from tests.fakes.slack_api import FakeSlackApi
from tests.security.support import tiny_png


async def deliver(client: AppClient, data: dict[str, Any]) -> None:
    status, text = await post_event(client, data)
    assert status == 200, text


async def message_count(db: Any, n: int) -> list[Any]:
    async def probe() -> list[Any] | None:
        found = await messages(db)
        return found if len(found) >= n else None

    return await eventually(probe, what=f"{n} messages")


async def test_a_thread_is_one_conversation(slack_client: AppClient, db: Any) -> None:
    await deliver(slack_client, payload("channel_message"))
    await deliver(slack_client, payload("thread_reply"))
    await deliver(slack_client, payload("thread_broadcast"))
    # A new top-level message in the channel starts another thread.
    await deliver(
        slack_client,
        {
            **payload("channel_message", ts="1700009999.000100", text="other issue"),
            "event_id": "Ev0CHAN0002",
        },
    )
    stored = await message_count(db, 4)
    threads = {c.id: c.thread_key for c in await conversations(db)}
    by_text = {m.text: threads[m.conversation_id] for m in stored}
    root = "C0SUPPORT:1700000000.000200"
    assert by_text["it is still smoking"] == root
    assert by_text["update for everyone: the fire is out"] == root
    assert by_text["other issue"] == "C0SUPPORT:1700009999.000100"
    assert len(threads) == 2
    # One customer behind both threads.
    assert len({c.customer_id for c in await conversations(db)}) == 1


async def test_an_edit_is_kept_as_a_revision(slack_client: AppClient, db: Any) -> None:
    await deliver(slack_client, payload("channel_message"))
    [original] = await message_count(db, 1)
    await deliver(slack_client, payload("message_changed"))

    async def edited() -> Any:
        found = await messages(db)
        return found if found[0].edited_at is not None else None

    [message] = await eventually(edited, what="the edit")
    assert message.text == "printer is on fire (the one on floor 2)"
    async with db.reading() as session:
        revisions = (
            await session.execute(
                select(MessageRevision.text).where(MessageRevision.message_id == original.id)
            )
        ).scalars()
        assert list(revisions) == [original.text]


async def test_a_deleted_message_is_marked_deleted(slack_client: AppClient, db: Any) -> None:
    await deliver(slack_client, payload("channel_message"))
    await message_count(db, 1)
    await deliver(slack_client, payload("message_deleted"))

    async def deleted() -> Any:
        found = await messages(db)
        return found if found[0].deleted_at is not None else None

    [message] = await eventually(deleted, what="the delete")
    assert message.text.startswith("printer is on fire")  # kept for the record


async def test_a_shared_file_is_fetched_with_the_bot_token_and_stored(
    slack_client: AppClient, slack_api: FakeSlackApi, db: Any
) -> None:
    image = tiny_png()
    shared = slack_api.add_file("smoke.png", image, "image/png")
    await deliver(slack_client, payload("file_share", files=[shared]))
    [message] = await message_count(db, 1)
    assert message.text == "here is a photo of the smoke"
    assert slack_api.downloads == [
        (shared["url_private"].split(slack_api.url, 1)[1], "Bearer xoxb-1111-2222-fake")
    ]
    async with db.reading() as session:
        attachment_id = (
            await session.execute(select(Attachment.id).where(Attachment.message_id == message.id))
        ).scalar_one()
        meta, data = await load_attachment(session, attachment_id) or (None, b"")
    assert data == image
    assert meta is not None and meta.filename == "smoke.png"
