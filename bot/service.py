"""The bot's storage side: claiming pending turns, recording a turn in one
transaction, hand-back, per-inbox settings and the missed-questions list.

A *pending turn* needs no row of its own: a conversation in a bot-enabled inbox whose
last message is newer than the bot's ``handled_seq`` has one. So intake does no extra
work for the bot; the worker finds turns with one query over recently active
conversations and claims them under a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite serialises writers), like the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.events import BotStateChanged
from bot.inbox_settings import settings_from_row
from bot.models import BotConversation, BotInboxSettings, BotMode, BotReply
from bot.policy import (
    Answer,
    BotMemory,
    BotSettings,
    Choice,
    Clarify,
    CustomerFacts,
    Handoff,
    HandoffReason,
    Rephrase,
    Turn,
)
from conversations.models import (
    AuthorKind,
    Conversation,
    ConversationStatus,
    Inbox,
    Message,
)
from conversations.service import do_reply
from conversations.text import MAX_TEXT_CHARS
from customers.models import Customer
from customers.profile import customer_tags
from knowledge_base.markdown import plain_text, render_answer
from switchboard.db import utcnow
from switchboard.errors import Conflict, NotFound
from switchboard.tx import emit
from tickets.csat import csat_choices
from tickets.service import do_open_for_conversation

# A Telegram command such as /start: the channel answers it, the bot does not.
_COMMAND_PREFIX = "/"


# --- claiming turns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnPolicy:
    lease: timedelta = timedelta(seconds=60)
    batch: int = 20
    poll_interval: float = 2.0
    # Only conversations active this recently are looked at, so a pass reads an index
    # range rather than every conversation ever; a turn older than this is left alone.
    window: timedelta = timedelta(hours=24)
    engine_timeout: float = 5.0


def _insert_missing_state(dialect: str, conversation_ids: Sequence[int]) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    now = utcnow()
    rows = [
        {"conversation_id": cid, "mode": BotMode.BOT.value, "handled_seq": 0, "misses": 0,
         "updated_at": now}
        for cid in conversation_ids
    ]  # fmt: skip
    return (
        module.insert(BotConversation.__table__)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["conversation_id"])
    )


def _free(now: datetime) -> Any:
    return or_(BotConversation.lease_until.is_(None), BotConversation.lease_until < now)


async def find_pending_turns(
    session: AsyncSession, now: datetime, policy: TurnPolicy
) -> list[tuple[int, bool]]:
    """Conversations with a pending bot turn: (id, whether the bot has a state row).
    Read-only, so an idle worker's pass never takes SQLite's write lock."""
    rows = await session.execute(
        select(Conversation.id, BotConversation.conversation_id.is_not(None))
        .join(Inbox, and_(Inbox.id == Conversation.inbox_id, Inbox.bot_enabled.is_(True)))
        .outerjoin(BotConversation, BotConversation.conversation_id == Conversation.id)
        .where(
            Conversation.last_message_at >= now - policy.window,
            Conversation.status == ConversationStatus.OPEN,
            or_(
                BotConversation.conversation_id.is_(None),
                and_(
                    BotConversation.mode == BotMode.BOT,
                    Conversation.last_seq > BotConversation.handled_seq,
                    _free(now),
                ),
            ),
        )
        .order_by(Conversation.last_message_at)
        .limit(policy.batch)
    )
    return [(cid, bool(known)) for cid, known in rows]


async def claim_turns(
    session: AsyncSession,
    now: datetime,
    owner: str,
    policy: TurnPolicy,
    candidates: Sequence[tuple[int, bool]],
) -> list[int]:
    """Lease the candidates' turns to this worker (``owner``); the ids it got. Each is
    checked again under the row lock: another worker may have taken or finished it."""
    missing = [cid for cid, known in candidates if not known]
    if missing:
        dialect = session.get_bind().dialect.name
        await session.execute(_insert_missing_state(dialect, missing))
    last_seq = (
        select(Conversation.last_seq)
        .where(Conversation.id == BotConversation.conversation_id)
        .scalar_subquery()
    )
    lockable = list(
        (
            await session.execute(
                select(BotConversation.conversation_id)
                .where(
                    BotConversation.conversation_id.in_([cid for cid, _known in candidates]),
                    BotConversation.mode == BotMode.BOT,
                    BotConversation.handled_seq < last_seq,
                    _free(now),
                )
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if not lockable:
        return []
    claimed = await session.execute(
        update(BotConversation)
        .where(BotConversation.conversation_id.in_(lockable), _free(now))
        .values(lease_owner=owner, lease_until=now + policy.lease)
        .returning(BotConversation.conversation_id)
    )
    return sorted(claimed.scalars())


# --- one turn -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnInput:
    """What a claimed turn is decided from, read before the engine runs."""

    conversation_id: int
    inbox_id: int
    handled_seq: int
    # The newest message looked at; the turn covers everything up to it.
    seen_seq: int
    question_message_id: int | None
    text: str
    agent_replied: bool
    memory: BotMemory
    customer: CustomerFacts
    settings: BotSettings

    @property
    def needs_reply(self) -> bool:
        return self.question_message_id is not None and not self.agent_replied


def _memory(state: BotConversation) -> BotMemory:
    pending = tuple(
        Choice(c["topic"], c["title"], float(c["confidence"])) for c in state.pending_choices or []
    )
    return BotMemory(misses=state.misses, locale=state.locale, pending=pending)


def customer_facts(customer: Customer | None, tags: Sequence[str] = ()) -> CustomerFacts:
    """What hand-off rules may look at: the customer's tier and tags (`tags`, read by the
    caller from `customers.profile`); addresses only when verified."""
    if customer is None:
        return CustomerFacts()
    tier = customer.tier
    # Only a verified address: `email` is whatever a From: header or a widget form
    # claimed, and a rule must not let anyone jump the queue by typing a VIP's address.
    emails = (customer.verified_email,) if customer.verified_email else ()
    return CustomerFacts(
        tier=tier if isinstance(tier, str) else None,
        tags=frozenset(t for t in tags if isinstance(t, str)),
        emails=emails,
    )


async def load_turn(session: AsyncSession, conversation_id: int, owner: str) -> TurnInput | None:
    """The claimed turn's input, or None if the claim was lost meanwhile."""
    state = await session.get(BotConversation, conversation_id)
    conversation = await session.get(Conversation, conversation_id)
    if state is None or conversation is None or state.lease_owner != owner:
        return None
    messages = list(
        (
            await session.execute(
                select(Message)
                .where(Message.conversation_id == conversation_id, Message.seq > state.handled_seq)
                .order_by(Message.seq)
            )
        ).scalars()
    )
    question: Message | None = None
    agent_replied = False
    for message in messages:
        if message.author_kind == AuthorKind.AGENT and not message.private:
            agent_replied = True
            question = None  # answered by a person: nothing left for the bot
        elif message.author_kind == AuthorKind.CUSTOMER and _answerable(message):
            question = message
    settings = settings_from_row(await session.get(BotInboxSettings, conversation.inbox_id))
    customer = await session.get(Customer, conversation.customer_id)
    tags = await customer_tags(session, customer.id) if customer is not None else []
    return TurnInput(
        conversation_id=conversation_id,
        inbox_id=conversation.inbox_id,
        handled_seq=state.handled_seq,
        seen_seq=messages[-1].seq if messages else state.handled_seq,
        question_message_id=question.id if question is not None else None,
        text=question.text if question is not None else "",
        agent_replied=agent_replied,
        memory=_memory(state),
        customer=customer_facts(customer, tags),
        settings=settings,
    )


def _answerable(message: Message) -> bool:
    text = message.text.strip()
    # Auto-replies and bounces are never answered (mail loops); nor are bare commands
    # the channel answers itself (Telegram's /start gets the hub's greeting).
    if message.automatic or message.deleted_at is not None or not text:
        return False
    return not (text.startswith(_COMMAND_PREFIX) and " " not in text)


def _reply_text(turn: Turn) -> tuple[str, str | None]:
    """(plain text for every channel, safe HTML where the page can show it). An answer
    may be longer than a message may be (20,000 against 10,000 characters) or have no
    text at all (only an image link): cut or replaced, so the reply is always stored."""
    decision = turn.decision
    if isinstance(decision, Answer):
        text = plain_text(decision.text)
        if len(text) > MAX_TEXT_CHARS:
            text = text[: MAX_TEXT_CHARS - 1] + "…"
        if not text.strip():
            text = decision.article.question
        return text, render_answer(decision.text)
    return decision.text, None


def _guesses(turn: Turn) -> list[list[Any]]:
    decision = turn.decision
    if isinstance(decision, Handoff | Rephrase):
        return [[label, conf] for label, conf in decision.guesses]
    if isinstance(decision, Clarify):
        return [[c.topic, round(c.confidence, 4)] for c in decision.choices]
    if isinstance(decision, Answer):
        return [[decision.topic, round(decision.confidence, 4)]]
    return []


def bot_state_view(state: BotConversation | None) -> dict[str, Any]:
    """The bot's standing in a conversation, as the agent sees it."""
    if state is None:
        return {"mode": BotMode.BOT.value, "misses": 0, "locale": None, "handoff": None,
                "pending_choices": []}  # fmt: skip
    handoff = None
    if state.handoff_reason is not None:
        handoff = {
            "reason": state.handoff_reason,
            "detail": state.handoff_detail,
            "guesses": [
                {"topic": label, "confidence": conf} for label, conf in state.handoff_guesses or []
            ],
            "at": state.handed_off_at.isoformat() if state.handed_off_at else None,
        }
    return {
        "mode": state.mode,
        "misses": state.misses,
        "locale": state.locale,
        "handoff": handoff,
        "pending_choices": state.pending_choices or [],
    }


class TurnLost(Exception):
    """Another worker took this turn over (our lease expired): store nothing."""


async def do_complete_turn(
    session: AsyncSession,
    turn_input: TurnInput,
    turn: Turn | None,
    *,
    owner: str,
    fingerprint: str | None = None,
) -> int | None:
    """Store the bot's reply (through the outbox), its explanation and the new state, and
    release the claim — all or nothing. Returns the reply's message id, if any."""
    state = await session.get(BotConversation, turn_input.conversation_id, with_for_update=True)
    if (
        state is None
        or state.lease_owner != owner
        or state.handled_seq != turn_input.handled_seq
        or state.mode != BotMode.BOT
    ):
        raise TurnLost(str(turn_input.conversation_id))
    now = utcnow()
    state.lease_owner = None
    state.lease_until = None
    state.updated_at = now
    state.handled_seq = turn_input.seen_seq
    if turn_input.agent_replied:
        _hand_off(state, HandoffReason.AGENT_REPLIED, "an agent answered the customer", [], now)
        _emit_state(session, turn_input, state)
        return None
    if turn is None:
        return None
    decision = turn.decision
    text, html = _reply_text(turn)
    reply = await do_reply(
        session,
        conversation_id=turn_input.conversation_id,
        text=text,
        author_kind=AuthorKind.BOT,
    )
    reply.html = html
    answer = decision if isinstance(decision, Answer) else None
    session.add(
        BotReply(
            message_id=reply.id,
            conversation_id=turn_input.conversation_id,
            inbox_id=turn_input.inbox_id,
            question_message_id=turn_input.question_message_id,
            kind=decision.kind.value,
            topic=answer.topic if answer else None,
            article_id=answer.article.article_id if answer else None,
            article_version=answer.article.version if answer else None,
            confidence=round(answer.confidence, 4) if answer else None,
            locale=turn.memory.locale,
            reason=decision.reason.value if isinstance(decision, Handoff) else None,
            guesses=_guesses(turn),
            choices=[{"topic": c.topic, "title": c.title} for c in decision.choices]
            if isinstance(decision, Clarify)
            else None,
            model_fingerprint=fingerprint,
            created_at=now,
        )
    )
    state.misses = turn.memory.misses
    state.locale = turn.memory.locale
    state.pending_choices = [
        {"topic": c.topic, "title": c.title, "confidence": round(c.confidence, 4)}
        for c in turn.memory.pending
    ] or None
    if isinstance(decision, Handoff):
        guesses = [[label, conf] for label, conf in decision.guesses]
        _hand_off(state, decision.reason, decision.detail, guesses, now)
        await _note_for_agents(session, turn_input.conversation_id, decision)
        await open_ticket_for_handoff(session, turn_input.conversation_id, decision)
        _emit_state(session, turn_input, state)
    # The bot's own reply is now the newest message: nothing is pending until the
    # customer writes again (unless they already did while the engine ran).
    state.handled_seq = await _newest_seq_unless_customer_wrote(session, turn_input, reply.seq)
    return reply.id


async def _newest_seq_unless_customer_wrote(
    session: AsyncSession, turn_input: TurnInput, reply_seq: int
) -> int:
    wrote_meanwhile = (
        await session.execute(
            select(Message.id)
            .where(
                Message.conversation_id == turn_input.conversation_id,
                Message.seq > turn_input.seen_seq,
                Message.seq < reply_seq,
                Message.author_kind == AuthorKind.CUSTOMER,
            )
            .limit(1)
        )
    ).first()
    return turn_input.seen_seq if wrote_meanwhile else reply_seq


def _hand_off(
    state: BotConversation, reason: HandoffReason, detail: str, guesses: list[Any], now: datetime
) -> None:
    state.mode = BotMode.HUMAN
    state.misses = 0
    state.pending_choices = None
    state.handoff_reason = reason.value
    state.handoff_detail = detail[:500]
    state.handoff_guesses = guesses
    state.handed_off_at = now


def _emit_state(session: AsyncSession, turn_input: TurnInput, state: BotConversation) -> None:
    emit(
        session,
        BotStateChanged(
            actor="bot:0",
            conversation_id=turn_input.conversation_id,
            inbox_id=turn_input.inbox_id,
            bot=bot_state_view(state),
        ),
    )


async def _note_for_agents(session: AsyncSession, conversation_id: int, handoff: Handoff) -> None:
    """An internal note in the conversation: why the bot handed off and what it guessed."""
    guesses = ", ".join(f"{label} ({conf:.2f})" for label, conf in handoff.guesses) or "none"
    text = f"Bot handed off: {handoff.reason.value} — {handoff.detail}. Best guesses: {guesses}."
    await do_reply(
        session,
        conversation_id=conversation_id,
        text=text,
        author_kind=AuthorKind.SYSTEM,
        private=True,
    )


async def open_ticket_for_handoff(
    session: AsyncSession, conversation_id: int, handoff: Handoff
) -> None:
    """The one place a hand-off opens a ticket (issue 5), in the hand-off's transaction:
    the ticket exists exactly when the customer was told a person will answer."""
    await do_open_for_conversation(
        session,
        conversation_id=conversation_id,
        source="bot_handoff",
        reason=f"{handoff.reason.value}: {handoff.detail}"[:200],
        actor="bot:0",
    )


# --- hand-back, views, missed questions --------------------------------------------------------


async def do_hand_back(
    session: AsyncSession, conversation_id: int, *, user_id: int
) -> dict[str, Any]:
    """An agent gives the conversation back to the bot: it answers the customer's next
    message, not anything said before."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation not found")
    inbox = await session.get(Inbox, conversation.inbox_id)
    if inbox is None or not inbox.bot_enabled:
        raise Conflict("the bot is off in this conversation's inbox", code="bot_disabled")
    state = await session.get(BotConversation, conversation_id, with_for_update=True)
    if state is None:
        state = BotConversation(conversation_id=conversation_id)
        session.add(state)
    elif state.mode == BotMode.BOT:
        raise Conflict("the bot already has this conversation", code="already_bot")
    state.mode = BotMode.BOT
    state.misses = 0
    state.pending_choices = None
    state.handoff_reason = None
    state.handoff_detail = None
    state.handoff_guesses = None
    state.handed_off_at = None
    state.lease_owner = None
    state.lease_until = None
    state.updated_at = utcnow()
    note = await do_reply(
        session,
        conversation_id=conversation_id,
        text="Handed back to the bot.",
        author_kind=AuthorKind.SYSTEM,
        author_user_id=user_id,
        private=True,
    )
    state.handled_seq = note.seq
    view = bot_state_view(state)
    emit(
        session,
        BotStateChanged(
            actor=f"agent:{user_id}",
            conversation_id=conversation_id,
            inbox_id=conversation.inbox_id,
            bot=view,
        ),
    )
    return view


async def conversation_bot_state(
    session: AsyncSession, conversation: Conversation
) -> dict[str, Any]:
    """`bot_state_view` plus whether the bot is on in the conversation's inbox at all."""
    inbox = await session.get(Inbox, conversation.inbox_id)
    state = await session.get(BotConversation, conversation.id)
    return {"enabled": bool(inbox and inbox.bot_enabled), **bot_state_view(state)}


async def conversation_bot_view(session: AsyncSession, conversation_id: int) -> dict[str, Any]:
    """The bot's state plus the explanation of each bot message in the conversation."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation not found")
    state = await conversation_bot_state(session, conversation)
    replies = (
        await session.execute(
            select(BotReply)
            .where(BotReply.conversation_id == conversation_id)
            .order_by(BotReply.message_id)
        )
    ).scalars()
    return {**state, "replies": [reply_view(r) for r in replies]}


async def choices_by_message(
    session: AsyncSession, message_ids: Sequence[int]
) -> dict[int, list[str]]:
    """The options a Clarify offered, by bot message id, for channels with buttons; also
    the rating buttons of a CSAT request (`tickets.csat`), which rides the same path."""
    if not message_ids:
        return {}
    rows = await session.execute(
        select(BotReply.message_id, BotReply.choices).where(
            BotReply.message_id.in_(list(message_ids)), BotReply.choices.is_not(None)
        )
    )
    found = {mid: [c["title"] for c in choices or []] for mid, choices in rows}
    return found | await csat_choices(session, [m for m in message_ids if m not in found])


def reply_view(reply: BotReply) -> dict[str, Any]:
    return {
        "message_id": reply.message_id,
        "question_message_id": reply.question_message_id,
        "kind": reply.kind,
        "topic": reply.topic,
        "article_id": reply.article_id,
        "article_version": reply.article_version,
        "confidence": reply.confidence,
        "locale": reply.locale,
        "reason": reply.reason,
        "guesses": [{"topic": label, "confidence": conf} for label, conf in reply.guesses],
        "choices": reply.choices or [],
        "created_at": reply.created_at.isoformat(),
    }


async def do_enable_bot_on_webchat(session: AsyncSession) -> int:
    """Switch the bot on in every web-chat inbox (`switchboard demo`); how many."""
    switched = await session.execute(
        update(Inbox).where(Inbox.kind == "webchat").values(bot_enabled=True)
    )
    return int(switched.rowcount)  # type: ignore[attr-defined]
