"""CSAT: a 1–5 rating request when an agent solves a ticket, and its answer.

Requests go out from a worker, not from the solve itself: the worker claims solved
tickets that have no survey row yet (tickets locked with SKIP LOCKED on PostgreSQL, so
several processes split the work; SQLite serialises writers) and writes the survey row
and the request message (through the outbox) in one transaction. `csat_surveys.ticket_id`
is unique, so a ticket is surveyed at most once across processes and across solve /
reopen / solve again; a ticket that gets no request (CSAT off in its inbox, no
conversation, not solved by an agent) gets a `skipped` row, so it is never looked at
again.

The request goes to the ticket's latest conversation, in the customer's language (the
bot's for the conversation, else detected from their last message). Web chat and
Telegram show buttons (`choices_by_message`, the bot's Clarify mechanism); every channel
says "reply with a digit"; channels without buttons (email, Slack) also get a signed
link to the rating page (`tickets.csat_links`).

Answers: the ticket follow-up (`tickets.followup`) hands customer messages to
`take_answers` before its reopen rule. Within the window a digit (1–5, full-width
１–５, 一…五) or a button's label is the rating, and the next message within
`COMMENT_WINDOW` of it is the comment; neither reopens the ticket, except a comment
after a rating of 1–3 (`REOPEN_AT_OR_BELOW`): it is kept as the comment and also goes
through the normal reopen rule, so a complaint reaches an agent. Ratings and comments
that do not reopen are thanked (except by email: see `NO_AUTOMATIC_THANKS`). Anything
else, or
anything after the window, follows the normal rule. A rating can be changed (another
digit, the page again) until the window ends, never after.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.events import INBOX_TOPIC
from conversations.models import AuthorKind, Conversation, Direction, Inbox, Message
from conversations.service import do_reply, latest_customer_texts
from switchboard.background import BackgroundWorker
from switchboard.bus import Resync
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound
from switchboard.events import Event
from switchboard.settings import Settings
from switchboard.tx import Database
from tickets.csat_links import RatingLinks
from tickets.csat_models import CsatSurvey
from tickets.csat_views import survey_view  # noqa: F401  (re-exported for the API)
from tickets.events import TicketUpdated
from tickets.models import Ticket, TicketActivity, TicketConversation, TicketStatus

EN, ZH_HANS, ZH_HANT = "en", "zh-Hans", "zh-Hant"
LOCALES = (EN, ZH_HANS, ZH_HANT)
# Channels whose adapters show a message's choices as buttons.
BUTTON_CHANNELS = frozenset({"webchat", "telegram"})
MAX_COMMENT = 2000
# Email sends at most one automatic reply per customer an hour (SECURITY §4 item 14, in
# `channels.email.threading`): the request is that one, so a thanks would only be
# dropped by the loop guard. Email ratings are thanked by the rating page only.
NO_AUTOMATIC_THANKS = frozenset({"email"})
# How long after a rating the next message counts as its comment (not a new question).
COMMENT_WINDOW = timedelta(hours=1)
# A comment after a rating this low or lower also reopens the ticket (reopen window).
REOPEN_AT_OR_BELOW = 3
INBOX_SWITCH = "csat_enabled"  # the key in `inboxes.config`; absent means on

_REQUEST = {
    EN: "How did we do? Please rate our help from 1 (poor) to 5 (excellent).",
    ZH_HANS: "我们的服务怎么样？请为我们打分：1（很差）到 5（很好）。",
    ZH_HANT: "我們的服務怎麼樣？請為我們評分：1（很差）到 5（很好）。",
}
_DIGITS = {
    EN: "Reply with a digit from 1 to 5.",
    ZH_HANS: "请回复数字 1 到 5。",
    ZH_HANT: "請回覆數字 1 到 5。",
}
_LINK = {
    EN: "Or rate us on this page (you can add a comment there): {url}",
    ZH_HANS: "也可以在此页面评分（可附上意见）：{url}",
    ZH_HANT: "也可以在此頁面評分（可附上意見）：{url}",
}
_THANKS = {
    EN: "Thank you for your rating! If you like, tell us more in your next message.",
    ZH_HANS: "感谢您的评分！如有意见，欢迎在下一条消息中告诉我们。",
    ZH_HANT: "感謝您的評分！如有意見，歡迎在下一則訊息中告訴我們。",
}
_THANKS_COMMENT = {
    EN: "Thank you for your comment.",
    ZH_HANS: "感谢您的意见。",
    ZH_HANT: "感謝您的意見。",
}
BUTTONS = {
    EN: ["1 – Very poor", "2 – Poor", "3 – OK", "4 – Good", "5 – Excellent"],
    ZH_HANS: ["1 – 很差", "2 – 较差", "3 – 一般", "4 – 满意", "5 – 非常满意"],
    ZH_HANT: ["1 – 很差", "2 – 較差", "3 – 一般", "4 – 滿意", "5 – 非常滿意"],
}
_ZH_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
# After NFKC (full-width １ is 1): one digit, optionally "分"/"星"/"stars"/"/5", and
# end punctuation. Nothing else: "3 the app crashed again" is a message, not a rating.
_RATING = re.compile(r"^([1-5一二三四五])\s*(?:分|星|颗星|stars?|/\s*5)?\s*[.!。！]*$")
_BY_LABEL = {
    unicodedata.normalize("NFKC", label).casefold(): n
    for labels in BUTTONS.values()
    for n, label in enumerate(labels, 1)
}


def parse_rating(text: str | None) -> int | None:
    """The rating a message gives (1–5), or None if it is not one."""
    if not text:
        return None
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    if folded in _BY_LABEL:
        return _BY_LABEL[folded]
    found = _RATING.match(folded)
    if found is None:
        return None
    return _ZH_DIGITS.get(found[1]) or int(found[1])


def inbox_enabled(inbox: Inbox) -> bool:
    return bool((inbox.config or {}).get(INBOX_SWITCH, True))


@dataclass(frozen=True)
class CsatPolicy:
    # How long after the request a digit counts as a rating and the link works.
    window: timedelta = timedelta(hours=72)
    # Tickets solved longer ago than this are not surveyed any more.
    look_back: timedelta = timedelta(days=2)
    batch: int = 50
    poll_interval: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> CsatPolicy:
        return cls(window=timedelta(hours=settings.csat_window_hours))


# --- requests --------------------------------------------------------------------------


async def _solver(session: AsyncSession, ticket_id: int) -> tuple[str, int | None]:
    """(actor, user id) of the latest change to solved in the ticket's timeline."""
    rows = await session.execute(
        select(TicketActivity.actor, TicketActivity.actor_user_id, TicketActivity.data)
        .where(TicketActivity.ticket_id == ticket_id, TicketActivity.kind == "status")
        .order_by(TicketActivity.id.desc())
        .limit(20)
    )
    for actor, user_id, data in rows:
        if (data or {}).get("to") == TicketStatus.SOLVED:
            return actor, user_id
    return "", None


async def _locale(session: AsyncSession, conversation_id: int) -> str:
    from bot.models import BotConversation  # bot imports tickets: not at the top
    from bot.policy import detect_locale

    known = (
        await session.execute(
            select(BotConversation.locale).where(BotConversation.conversation_id == conversation_id)
        )
    ).scalar_one_or_none()
    if known in LOCALES:
        return str(known)
    locale: str | None = None
    for text in reversed(await latest_customer_texts(session, conversation_id, 3)):
        locale = detect_locale(text, locale)
    return locale or EN


def request_text(locale: str, channel: str, link: str) -> str:
    lines = [_REQUEST[locale], _DIGITS[locale]]
    if channel not in BUTTON_CHANNELS:
        lines.append(_LINK[locale].format(url=link))
    return "\n".join(lines)


async def _survey_ticket(
    session: AsyncSession, ticket: Ticket, now: datetime, policy: CsatPolicy, links: RatingLinks
) -> CsatSurvey:
    conversation = (
        await session.execute(
            select(Conversation)
            .join(TicketConversation, TicketConversation.conversation_id == Conversation.id)
            .where(TicketConversation.ticket_id == ticket.id)
            .order_by(TicketConversation.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if conversation is None:  # not claimed: `do_send_requests` asks for one
        raise NotFound("ticket has no conversation")
    actor, agent_id = await _solver(session, ticket.id)
    survey = CsatSurvey(
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
        agent_user_id=agent_id,
        locale=EN,
        requested_at=now,
        expires_at=now + policy.window,
    )
    survey.conversation_id = conversation.id
    survey.inbox_id = conversation.inbox_id
    inbox = await session.get(Inbox, conversation.inbox_id)
    if agent_id is None or not actor.startswith("agent:"):
        survey.skipped = "not_by_agent"
    elif inbox is None or not inbox_enabled(inbox):
        survey.skipped = "disabled"
    session.add(survey)
    await session.flush()
    if survey.skipped is None:
        survey.locale = await _locale(session, conversation.id)
        channel = inbox.kind if inbox is not None else ""
        text = request_text(survey.locale, channel, links.url(survey.id, survey.expires_at))
        message = await do_reply(
            session, conversation_id=conversation.id, text=text, author_kind=AuthorKind.BOT
        )
        survey.message_id = message.id
    return survey


async def do_send_requests(
    session: AsyncSession, now: datetime, policy: CsatPolicy, links: RatingLinks
) -> int:
    """One pass: survey (or mark skipped) solved tickets that have no survey yet."""
    no_survey = ~exists().where(CsatSurvey.ticket_id == Ticket.id)
    has_conversation = exists().where(TicketConversation.ticket_id == Ticket.id)
    tickets = (
        (
            await session.execute(
                select(Ticket)
                .where(
                    Ticket.status == TicketStatus.SOLVED,
                    Ticket.solved_at >= now - policy.look_back,
                    has_conversation,
                    no_survey,
                )
                .order_by(Ticket.id)
                .limit(policy.batch)
                # The same lock a ticket change takes (`tickets.service.lock_ticket`):
                # a solve committing now is waited for, another worker skips these rows.
                .with_for_update(skip_locked=True, key_share=True)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    done = 0
    for ticket in tickets:
        if ticket.status != TicketStatus.SOLVED:
            continue  # reopened between the look and the lock
        await _survey_ticket(session, ticket, now, policy, links)
        done += 1
    return done


class CsatWorker(BackgroundWorker):
    """Sends rating requests; woken when a ticket is solved, in any process."""

    wake_topic: ClassVar[str] = INBOX_TOPIC

    def __init__(self, db: Database, policy: CsatPolicy, links: RatingLinks) -> None:
        super().__init__(db.bus)
        self.db = db
        self.policy = policy
        self.links = links

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> CsatWorker:
        return cls(
            db,
            CsatPolicy.from_settings(settings),
            RatingLinks(settings.secret_key, settings.public_url),
        )

    async def run_once(self) -> int:
        now = utcnow()
        return await self.db.run(lambda s: do_send_requests(s, now, self.policy, self.links))

    async def pause(self) -> float:
        return self.policy.poll_interval

    def heard(self, item: Event | Resync) -> None:
        if isinstance(item, TicketUpdated) and item.ticket.get("status") == "solved":
            self.wake()


# --- answers ---------------------------------------------------------------------------


async def _thank(session: AsyncSession, survey: CsatSurvey, texts: dict[str, str]) -> None:
    inbox = await session.get(Inbox, survey.inbox_id)
    if inbox is None or inbox.kind in NO_AUTOMATIC_THANKS:
        return
    await do_reply(
        session,
        conversation_id=survey.conversation_id,
        text=texts.get(survey.locale, texts[EN]),
        author_kind=AuthorKind.BOT,
    )


async def take_answers(session: AsyncSession, conversation_id: int, since: datetime) -> bool:
    """Store customer messages from `since` on that answer the conversation's survey.
    True if every one of them did (then they must not reopen the ticket)."""
    survey = (
        await session.execute(
            select(CsatSurvey)
            .where(
                CsatSurvey.conversation_id == conversation_id,
                CsatSurvey.message_id.is_not(None),
            )
            .order_by(CsatSurvey.id.desc())
            .limit(1)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if survey is None:
        return False
    messages = (
        await session.execute(
            select(Message.text, Message.created_at)
            .where(
                Message.conversation_id == conversation_id,
                Message.direction == Direction.INBOUND,
                Message.author_kind == AuthorKind.CUSTOMER,
                Message.automatic.is_(False),
                Message.created_at >= since,
            )
            .order_by(Message.seq)
        )
    ).all()
    if not messages:
        return False
    for text, at in messages:
        if not survey.requested_at <= at < survey.expires_at:
            return False
        rating = parse_rating(text)
        if rating is not None:
            survey.rating, survey.rated_at, survey.answered_via = rating, at, "reply"
            await _thank(session, survey, _THANKS)
        elif (
            survey.rated_at is not None
            and survey.comment is None
            and at - survey.rated_at <= COMMENT_WINDOW
            and text
        ):
            survey.comment, survey.commented_at = text[:MAX_COMMENT], at
            if survey.rating is not None and survey.rating <= REOPEN_AT_OR_BELOW:
                # After a poor rating the comment is usually the complaint itself
                # ("still broken, the refund never came"): kept as the comment, and the
                # normal reopen rule runs so an agent hears of it.
                return False
            await _thank(session, survey, _THANKS_COMMENT)
        else:
            return False
    return True


def check_answer(rating: object, comment: object) -> tuple[int, str | None]:
    """The rating page's form, checked whole."""
    if rating not in ("1", "2", "3", "4", "5"):
        raise InvalidInput("choose a rating from 1 to 5", code="invalid_rating")
    if comment is not None and not isinstance(comment, str):
        raise InvalidInput("comment must be text", code="invalid_comment")
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT or "\x00" in text:
        raise InvalidInput(
            f"comment must be at most {MAX_COMMENT} characters", code="invalid_comment"
        )
    return int(rating), text or None


async def get_survey(session: AsyncSession, survey_id: int) -> CsatSurvey:
    survey = await session.get(CsatSurvey, survey_id)
    if survey is None or survey.message_id is None:
        raise NotFound("survey not found")
    return survey


async def do_rate_by_link(
    session: AsyncSession, survey_id: int, rating: int, comment: str | None, now: datetime
) -> CsatSurvey:
    """The rating page's answer; refused (409) once the survey's window has ended."""
    survey = (
        await session.execute(
            select(CsatSurvey)
            .where(CsatSurvey.id == survey_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if survey is None or survey.message_id is None:
        raise NotFound("survey not found")
    if now >= survey.expires_at:
        raise Conflict("this rating can no longer be changed", code="csat_closed")
    survey.rating, survey.rated_at, survey.answered_via = rating, now, "link"
    if comment is not None:
        survey.comment, survey.commented_at = comment, now
    return survey


# --- reading ---------------------------------------------------------------------------


async def csat_choices(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, list[str]]:
    """The rating buttons of request messages, by message id (`bot.service`)."""
    if not message_ids:
        return {}
    rows = await session.execute(
        select(CsatSurvey.message_id, CsatSurvey.locale).where(
            CsatSurvey.message_id.in_(list(message_ids))
        )
    )
    return {mid: list(BUTTONS.get(locale, BUTTONS[EN])) for mid, locale in rows if mid}
