"""CSAT rules on SQLite and PostgreSQL: what a rating is, one survey per ticket, the
per-inbox switch, replies inside and outside the window, two workers at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import AuthorKind, Inbox, Message
from switchboard.db import utcnow
from switchboard.tx import Database
from tests.conftest import create_user
from tests.tickets.support import (
    customer_writes,
    follow_up,
    get_ticket,
    make_inbox,
    open_ticket,
    set_status,
    tickets_of,
)
from tickets.csat import BUTTONS, CsatPolicy, do_send_requests, parse_rating
from tickets.csat_links import RatingLinks
from tickets.csat_models import CsatSurvey

LINKS = RatingLinks("test-secret", "http://hub.example")


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("4", 4),
        (" 5 ", 5),
        ("４", 4),  # full-width
        ("五", 5),
        ("三分", 3),
        ("1!", 1),
        ("5 stars", 5),
        ("4 – Good", 4),  # the English button
        ("5 – 非常满意", 5),
        ("2 – 較差", 2),
        ("3 the app crashed again", None),
        ("45", None),
        ("0", None),
        ("6", None),
        ("thanks", None),
        ("", None),
    ],
)
def test_what_counts_as_a_rating(text: str, rating: int | None) -> None:
    assert parse_rating(text) == rating


async def send_requests(
    db: Database, policy: CsatPolicy | None = None, at_offset: float = 0
) -> int:
    now = utcnow() + timedelta(seconds=at_offset)
    return await db.run(lambda s: do_send_requests(s, now, policy or CsatPolicy(), LINKS))


async def surveys(db: Database) -> list[CsatSurvey]:
    async with db.reading() as session:
        return list((await session.execute(select(CsatSurvey).order_by(CsatSurvey.id))).scalars())


async def bot_texts(db: Database, conversation_id: int) -> list[str]:
    async with db.reading() as session:
        rows = await session.execute(
            select(Message.text)
            .where(
                Message.conversation_id == conversation_id, Message.author_kind == AuthorKind.BOT
            )
            .order_by(Message.seq)
        )
        return list(rows.scalars())


async def solved_ticket(db: Database, visitor: str, **inbox: bool) -> tuple[int, int, int]:
    """(inbox id, conversation id, ticket id) of a ticket an agent has solved."""
    inbox_id = await make_inbox(db, **inbox)
    conversation_id, _ = await customer_writes(db, visitor, "my parcel is late", inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    await follow_up(db)
    agent = await create_user(db, f"{visitor}@example.com")
    await set_status(db, ticket.id, "solved", actor=f"agent:{agent}")
    return inbox_id, conversation_id, ticket.id


async def test_solve_reopen_solve_sends_one_request(db: Database) -> None:
    _, conversation_id, ticket_id = await solved_ticket(db, "v_cs_once")
    assert await send_requests(db) == 1
    await set_status(db, ticket_id, "open", actor="system")
    agent = await create_user(db, "again@example.com")
    await set_status(db, ticket_id, "solved", actor=f"agent:{agent}")
    assert await send_requests(db) == 0
    [survey] = await surveys(db)
    assert survey.ticket_id == ticket_id and survey.skipped is None
    texts = await bot_texts(db, conversation_id)
    assert len(texts) == 1 and "1 (poor) to 5 (excellent)" in texts[0]


async def test_switched_off_inbox_gets_no_request(db: Database) -> None:
    inbox_id, conversation_id, _ = await solved_ticket(db, "v_cs_off")

    async def switch_off(session: AsyncSession) -> None:
        inbox = await session.get(Inbox, inbox_id)
        assert inbox is not None
        inbox.config = {"csat_enabled": False}

    await db.run(switch_off)
    await send_requests(db)
    [survey] = await surveys(db)
    assert survey.skipped == "disabled"
    assert await bot_texts(db, conversation_id) == []


async def test_a_ticket_solved_by_the_system_is_not_surveyed(db: Database) -> None:
    inbox_id = await make_inbox(db)
    conversation_id, _ = await customer_writes(db, "v_cs_sys", inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    await set_status(db, ticket.id, "solved", actor="system")
    await send_requests(db)
    assert [s.skipped for s in await surveys(db)] == ["not_by_agent"]
    assert await bot_texts(db, conversation_id) == []


async def test_reply_digit_rates_and_other_text_reopens(db: Database) -> None:
    inbox_id, conversation_id, ticket_id = await solved_ticket(db, "v_cs_digit")
    await send_requests(db)
    await customer_writes(db, "v_cs_digit", "４", n=1, inbox_id=inbox_id)
    await follow_up(db)
    assert (await get_ticket(db, ticket_id)).status == "solved"
    [survey] = await surveys(db)
    assert (survey.rating, survey.answered_via) == (4, "reply")
    await customer_writes(db, "v_cs_digit", "fast and friendly", n=2, inbox_id=inbox_id)
    await follow_up(db)
    [survey] = await surveys(db)
    assert survey.comment == "fast and friendly"
    assert (await get_ticket(db, ticket_id)).status == "solved"
    # The comment is taken; a further message is a new question and reopens the ticket.
    await customer_writes(db, "v_cs_digit", "one more thing: the invoice", n=3, inbox_id=inbox_id)
    await follow_up(db)
    assert (await get_ticket(db, ticket_id)).status == "open"
    texts = await bot_texts(db, conversation_id)
    assert texts[1].startswith("Thank you for your rating") and texts[2] == (
        "Thank you for your comment."
    )


async def test_a_digit_after_the_window_is_an_ordinary_message(db: Database) -> None:
    inbox_id, conversation_id, ticket_id = await solved_ticket(db, "v_cs_late")
    # The request went out two hours ago with a one-hour window.
    await send_requests(db, CsatPolicy(window=timedelta(hours=1)), at_offset=-7200)
    await customer_writes(db, "v_cs_late", "5", n=1, inbox_id=inbox_id)
    await follow_up(db)
    [survey] = await surveys(db)
    assert survey.rating is None
    assert (await get_ticket(db, ticket_id)).status == "open"  # the normal reopen rule
    assert len(await tickets_of(db, conversation_id)) == 1


async def test_chinese_customer_gets_a_chinese_request(db: Database) -> None:
    inbox_id = await make_inbox(db)
    conversation_id, _ = await customer_writes(db, "v_cs_zh", "我的包裹還沒到", inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    agent = await create_user(db, "zh@example.com")
    await set_status(db, ticket.id, "solved", actor=f"agent:{agent}")
    await send_requests(db)
    [survey] = await surveys(db)
    assert survey.locale == "zh-Hant"
    assert (await bot_texts(db, conversation_id))[0].startswith("我們的服務怎麼樣")


async def test_two_workers_at_once_send_each_request_once(db: Database) -> None:
    tickets = [await solved_ticket(db, f"v_cs_pair{i}") for i in range(4)]
    done = await asyncio.gather(send_requests(db), send_requests(db))
    assert sum(done) == 4
    assert sorted(s.ticket_id for s in await surveys(db)) == sorted(t[2] for t in tickets)
    async with db.reading() as session:
        requests = (
            await session.execute(
                select(func.count(Message.id)).where(Message.author_kind == AuthorKind.BOT)
            )
        ).scalar_one()
    assert requests == 4


async def test_the_request_carries_buttons_to_telegram_like_a_clarify(db: Database) -> None:
    """The bot's channel hook (`bot.channel_hooks.BotChoices`) hands the rating labels
    to the adapter, which makes them Telegram's one-time reply keyboard."""
    from bot.channel_hooks import BotChoices
    from channels.base import OutboundMessage
    from channels.telegram.adapter import _keyboard

    _, conversation_id, _ = await solved_ticket(db, "v_cs_tg")
    await send_requests(db)
    [survey] = await surveys(db)
    assert survey.message_id is not None
    message_id = survey.message_id
    outbound = OutboundMessage(
        outbox_id=1,
        message_id=message_id,
        conversation_id=conversation_id,
        inbox_id=survey.inbox_id,
        seq=2,
        thread_key="t",
        recipient_id="r",
        text="…",
        author_kind=AuthorKind.BOT,
    )
    async with db.reading() as session:
        sent = await BotChoices().before_send(session, outbound)
    assert sent.extra["choices"] == BUTTONS["en"]
    keyboard = _keyboard(sent.extra["choices"])
    assert keyboard is not None and keyboard.one_time_keyboard
    assert [row[0].text for row in keyboard.keyboard] == BUTTONS["en"]


@pytest.mark.parametrize(
    ("channel", "has_link"),
    [("webchat", False), ("telegram", False), ("email", True), ("slack", True)],
)
def test_channels_without_buttons_get_the_link_and_all_get_the_digit_line(
    channel: str, has_link: bool
) -> None:
    from tickets.csat import request_text

    text = request_text("zh-Hans", channel, "http://hub.example/csat/1.2.x")
    assert "请回复数字 1 到 5。" in text
    assert ("http://hub.example/csat/1.2.x" in text) is has_link


async def test_a_comment_after_a_poor_rating_reopens_the_ticket(db: Database) -> None:
    inbox_id, conversation_id, ticket_id = await solved_ticket(db, "v_cs_poor")
    await send_requests(db)
    await customer_writes(db, "v_cs_poor", "1", n=1, inbox_id=inbox_id)
    await follow_up(db)
    assert (await get_ticket(db, ticket_id)).status == "solved"
    complaint = "still broken, the refund never came"
    await customer_writes(db, "v_cs_poor", complaint, n=2, inbox_id=inbox_id)
    await follow_up(db)
    [survey] = await surveys(db)
    assert (survey.rating, survey.comment) == (1, complaint)  # still the comment
    assert (await get_ticket(db, ticket_id)).status == "open"  # and an agent hears of it
    assert len(await tickets_of(db, conversation_id)) == 1
    # Not thanked as if the matter were closed.
    assert "Thank you for your comment." not in await bot_texts(db, conversation_id)
