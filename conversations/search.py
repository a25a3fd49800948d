"""Full-text search over messages, customers and tickets, in English and Chinese.

Messages (a million and more) have an inverted index in the database, `message_terms`:
one row per (term, message), the terms made as the knowledge base's search makes them
(`knowledge_base.search`: NFKC, case-folded, traditional → simplified Chinese with
OpenCC; words, and Chinese character bigrams plus single characters, so no segmenter is
needed). A query's Chinese runs become bigrams, which all must match; a word matches
words it begins ("refun" → "refund"). The same table and queries serve SQLite and
PostgreSQL (a primary-key range scan per term).

The index follows the messages table by id (`catch_up`), batch by batch: every search
first indexes whatever arrived since the last one, so a message is found the moment it
is stored. Ids are handed out before commit, so a slow transaction can commit a lower id
after a higher one was indexed: the watermark only passes messages older than
`SETTLE_SECONDS`, and younger ones are indexed again (idempotently) until it does. A
customer's edit rewrites that message's terms in its own transaction (`reindex_message`).

Customers (name, email, phone, each channel identity) and tickets (subject, notes) have
their own term tables (`conversations.search_terms`, written with the rows they index)
and are matched the same way; a phone-like query also matches by its digits. When no
term is rare, every scan newest first examines at most `MAX_SCANNED` rows.

The caller passes its access rules as WHERE clauses, so results hold only what the
caller could open (`web.access`).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.inbox_models import MessageTerm, SearchIndexState
from conversations.models import Conversation, Message
from conversations.search_terms import CustomerTerm, TicketTerm, phone_digits
from customers.models import Customer
from knowledge_base.search import index_terms, query_terms
from switchboard.db import utcnow
from switchboard.errors import InvalidInput
from tickets.models import Ticket, TicketConversation

MAX_TERM = 64
MAX_QUERY = 200
MAX_QUERY_TERMS = 12
PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
CATCH_UP_BATCH = 2000
# A term matching at most this many messages drives the search (see `search_messages`).
SELECTIVE = 5000
CHUNK = 500
# When every term is common, at most this many of the newest messages are examined per
# page; a page that did not fill within them says `truncated` (refine the search).
MAX_SCANNED = 20_000
SETTLE_SECONDS = 30
STATE_NAME = "messages"
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
# Messages above the watermark this process indexed already (they settle within
# seconds), keyed by id and creation time (ids alone repeat across databases).
_recent: dict[tuple[int, str], None] = {}
_RECENT_MAX = 20_000


class Kind(enum.StrEnum):
    MESSAGES = "messages"
    CUSTOMERS = "customers"
    TICKETS = "tickets"


# --- terms ---------------------------------------------------------------------------------


def message_terms(text: str, subject: str | None = None) -> list[str]:
    """The distinct terms a message is indexed under."""
    terms = index_terms(f"{subject or ''} {text or ''}")
    return list(dict.fromkeys(term[:MAX_TERM] for term in terms if term))


@dataclass(frozen=True)
class Query:
    text: str
    terms: tuple[str, ...]  # normalised

    def is_prefix(self, term: str) -> bool:
        """A word (not Chinese) of two or more characters also matches longer words."""
        return len(term) >= 2 and _HAN.search(term) is None


def check_query(raw: object) -> Query:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("q is required", code="query_required")
    text = " ".join(raw.split())
    if len(text) > MAX_QUERY:
        raise InvalidInput(f"q is at most {MAX_QUERY} characters")
    if "\x00" in text:
        raise InvalidInput("q contains a NUL character")
    terms = tuple(term[:MAX_TERM] for term in query_terms(text))[:MAX_QUERY_TERMS]
    if not terms:
        raise InvalidInput("q has no letters or digits to search for", code="query_empty")
    return Query(text=text, terms=terms)


# --- cursors -------------------------------------------------------------------------------


def encode_cursor(kind: Kind, last_id: int) -> str:
    raw = json.dumps({"k": kind.value, "id": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: Kind) -> int:
    bad = InvalidInput("cursor is not valid (pass next_cursor as it was given)", code="bad_cursor")
    if len(cursor) > 200 or not cursor.isascii():
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise bad from None
    if not isinstance(data, dict) or set(data) != {"k", "id"} or data["k"] != kind.value:
        raise bad
    last_id = data["id"]
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 < last_id < 2**31:
        raise bad
    return last_id


# --- indexing ------------------------------------------------------------------------------


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def catch_up(session: AsyncSession, limit: int = CATCH_UP_BATCH) -> int:
    """Index up to `limit` messages past the watermark; how many were new to the index."""
    insert = _insert(session)
    await session.execute(
        insert(SearchIndexState)
        .values(name=STATE_NAME, last_id=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    watermark = (
        await session.execute(
            select(SearchIndexState.last_id)
            .where(SearchIndexState.name == STATE_NAME)
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if watermark is None:
        return 0  # another process is indexing right now (PostgreSQL)
    rows = (
        await session.execute(
            select(Message.id, Message.text, Message.subject, Message.created_at)
            .where(Message.id > watermark)
            .order_by(Message.id)
            .limit(limit)
        )
    ).all()
    newest: list[Any] = []
    if len(rows) == limit:
        # A backlog: the newest messages too, so what just arrived is found now, while
        # the backlog is worked through from the watermark.
        newest = list(
            (
                await session.execute(
                    select(Message.id, Message.text, Message.subject, Message.created_at)
                    .where(Message.id > rows[-1][0])
                    .order_by(Message.id.desc())
                    .limit(limit)
                )
            ).all()
        )
    settled_before = utcnow() - timedelta(seconds=SETTLE_SECONDS)
    new_watermark = watermark
    values: list[dict[str, Any]] = []
    fresh = 0
    for message_id, text, subject, created_at in [*rows, *newest]:
        if (message_id, str(created_at)) not in _recent:
            fresh += 1
            values.extend(
                {"term": term, "message_id": message_id} for term in message_terms(text, subject)
            )
    # The watermark passes the leading run of settled messages, and no further.
    for message_id, _text, _subject, created_at in rows:
        if created_at is None or created_at >= settled_before:
            break
        new_watermark = message_id
    await _add_terms(session, values)
    if new_watermark != watermark:
        await session.execute(
            update(SearchIndexState)
            .where(SearchIndexState.name == STATE_NAME)
            .values(last_id=new_watermark)
        )
    for message_id, _text, _subject, created_at in [*rows, *newest]:
        if message_id > new_watermark:
            _recent[(message_id, str(created_at))] = None
    while len(_recent) > _RECENT_MAX:
        _recent.pop(next(iter(_recent)))
    return fresh


async def reindex_message(
    session: AsyncSession, message_id: int, text: str, subject: str | None
) -> None:
    """A message's text changed (a customer's edit): its terms become the new text's.
    Past the watermark, `catch_up` may not come back to it (it indexed it already), so
    this writes the terms itself, in the edit's transaction."""
    await session.execute(delete(MessageTerm).where(MessageTerm.message_id == message_id))
    await _add_terms(
        session, [{"term": term, "message_id": message_id} for term in message_terms(text, subject)]
    )


async def _add_terms(session: AsyncSession, values: list[dict[str, Any]]) -> None:
    """Term rows, in chunks; one already there (indexed again, or by a racing catch-up)
    is kept."""
    insert = _insert(session)
    for start in range(0, len(values), 5000):
        await session.execute(
            insert(MessageTerm).on_conflict_do_nothing(index_elements=["term", "message_id"]),
            values[start : start + 5000],
        )


async def pending(session: AsyncSession) -> bool:
    """Whether messages past the watermark may need indexing (two index reads)."""
    watermark = (
        await session.execute(
            select(SearchIndexState.last_id).where(SearchIndexState.name == STATE_NAME)
        )
    ).scalar_one_or_none() or 0
    newest = (
        await session.execute(
            select(Message.id, Message.created_at).order_by(Message.id.desc()).limit(1)
        )
    ).first()
    if newest is None or newest.id <= watermark:
        return False
    return (newest.id, str(newest.created_at)) not in _recent


# --- searching -----------------------------------------------------------------------------


def _term_match(query: Query, term: str, *, estimable: bool = False) -> ColumnElement[bool]:
    """Postings of one query term. As a range (the default) it reads the primary key;
    `estimable` (PostgreSQL, where a term is checked per message, not looked up) says it
    as a prefix LIKE instead, whose row count PostgreSQL estimates from statistics: it
    estimates the range's artificial upper bound at one row and would plan as if every
    term were rare. Terms hold no % or _."""
    if not query.is_prefix(term):
        return MessageTerm.term == term
    if estimable:
        return MessageTerm.term.like(term + "%")
    return and_(MessageTerm.term >= term, MessageTerm.term < term + "\U0010ffff")


def _snippet(text: str, query: Query, width: int = 160) -> str:
    """Some text around the first place the query shows up (or the start)."""
    flat = " ".join((text or "").split())
    folded = unicodedata.normalize("NFKC", flat).casefold()
    at = -1
    for word in query.text.casefold().split():
        at = folded.find(word)
        if at >= 0:
            break
    if at < 0 or len(folded) != len(flat):
        at = 0
    start = max(0, at - width // 3)
    snippet = flat[start : start + width]
    return ("…" if start else "") + snippet + ("…" if start + width < len(flat) else "")


@dataclass(frozen=True)
class ResultPage:
    items: list[dict[str, Any]]
    next_cursor: str | None
    # The scan stopped at `MAX_SCANNED` messages before the page filled: older matches
    # may exist (`next_cursor`, when given, scans on past them).
    truncated: bool = False


def _page(
    kind: Kind, items: list[dict[str, Any]], limit: int, floor: int | None = None
) -> ResultPage:
    if floor is not None and len(items) <= limit:
        # A scan stopped short of a full page: go on below where it stopped, if asked.
        return ResultPage(items, encode_cursor(kind, floor + 1), truncated=True)
    more = len(items) > limit
    items = items[:limit]
    return ResultPage(items, encode_cursor(kind, items[-1]["id"]) if more and items else None)


async def _postings(session: AsyncSession, match: ColumnElement[bool], cap: int) -> int:
    """How many messages a term matches, counting no further than `cap`."""
    capped = select(MessageTerm.message_id).where(match).limit(cap).subquery()
    return int((await session.execute(select(func.count()).select_from(capped))).scalar_one())


async def search_messages(
    session: AsyncSession,
    query: Query,
    *,
    visible: ColumnElement[bool],
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> ResultPage:
    """Messages holding every term, newest first, in conversations the caller may see.

    When some term is rare (at most `SELECTIVE` messages), its messages are the
    candidates, read newest first in chunks, so a rare term costs the same however many
    messages exist; when every term is common, the newest messages are scanned until a
    page is full, which stops early when matches are dense. That scan examines at most
    `MAX_SCANNED` messages (terms that never meet, or matches only where the caller may
    not look, would otherwise read every message); a page it leaves short says
    `truncated`, with a cursor that scans the next `MAX_SCANNED` when asked."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    matches = [_term_match(query, term) for term in query.terms]
    checks = [_term_match(query, t, estimable=dialect == "postgresql") for t in query.terms]
    before = decode_cursor(cursor, Kind.MESSAGES) if cursor else None
    statement = (
        select(
            Message.id,
            Message.conversation_id,
            Message.seq,
            Message.text,
            Message.subject,
            Message.direction,
            Message.author_kind,
            Message.private,
            Message.created_at,
            Conversation.customer_id,
            Conversation.channel,
            Customer.name,
            Customer.email,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Customer, Customer.id == Conversation.customer_id)
        .where(visible)
        .order_by(Message.id.desc())
        .limit(limit + 1)
    )
    counts = [await _postings(session, match, SELECTIVE + 1) for match in matches]
    rarest = min(range(len(matches)), key=lambda i: counts[i])
    for i, check in enumerate(checks):
        if i != rarest or counts[rarest] > SELECTIVE:
            statement = statement.where(exists().where(MessageTerm.message_id == Message.id, check))
    rows: list[Any] = []
    floor: int | None = None
    if counts[rarest] > SELECTIVE:
        window = select(Message.id).order_by(Message.id.desc()).offset(MAX_SCANNED).limit(1)
        if before is not None:
            statement = statement.where(Message.id < before)
            window = window.where(Message.id < before)
        floor = (await session.execute(window)).scalar_one_or_none()
        if floor is not None:
            statement = statement.where(Message.id > floor)
        rows = list(await session.execute(statement))
    else:
        candidates = sorted(
            (
                await session.execute(select(MessageTerm.message_id).where(matches[rarest]))
            ).scalars(),
            reverse=True,
        )
        if before is not None:
            candidates = [c for c in candidates if c < before]
        for start in range(0, len(candidates), CHUNK):
            chunk = candidates[start : start + CHUNK]
            rows += list(await session.execute(statement.where(Message.id.in_(chunk))))
            if len(rows) > limit:
                break
    items = [
        {
            "id": row.id,
            "conversation_id": row.conversation_id,
            "seq": row.seq,
            "snippet": _snippet(row.text, query),
            "subject": row.subject,
            "direction": row.direction,
            "author_kind": row.author_kind,
            "private": row.private,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "customer_id": row.customer_id,
            "customer_name": row.name or row.email,
            "channel": row.channel,
        }
        for row in rows
    ]
    return _page(Kind.MESSAGES, items, limit, floor)


def _column_match(column: Any, term: str, *, estimable: bool = False) -> ColumnElement[bool]:
    """`_term_match` for a terms table's `term` column."""
    if len(term) < 2 or _HAN.search(term) is not None:
        return cast("ColumnElement[bool]", column == term)
    if estimable:
        return cast("ColumnElement[bool]", column.like(term + "%"))
    return and_(column >= term, column < term + "\U0010ffff")


def _term_sets(query: Query) -> list[tuple[str, ...]]:
    """What a customer or ticket must hold: every term of the query, or (a phone-like
    query) its digits, which `search_terms` indexes by their suffixes."""
    digits = phone_digits(query.text)
    sets = [query.terms]
    if digits is not None and (digits,) != query.terms:
        sets.append((digits,))
    return sets


async def _by_terms(
    session: AsyncSession,
    terms: Sequence[str],
    *,
    term: Any,
    owner: Any,
    key: Any,
    statement: Any,
    before: int | None,
    limit: int,
) -> tuple[list[Any], int | None]:
    """Rows of `statement` (ordered by `key` descending, limited) whose owner holds every
    term, newest first: driven by the rarest term's postings when it is rare, else by
    scanning newest first, at most `MAX_SCANNED` rows."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    matches = [_column_match(term, t) for t in terms]
    checks = [_column_match(term, t, estimable=dialect == "postgresql") for t in terms]
    counts = []
    for match in matches:
        capped = select(owner).where(match).limit(SELECTIVE + 1).subquery()
        counts.append(
            int((await session.execute(select(func.count()).select_from(capped))).scalar_one())
        )
    rarest = min(range(len(matches)), key=lambda i: counts[i])
    common = counts[rarest] > SELECTIVE
    for i, check in enumerate(checks):
        if i != rarest or common:
            statement = statement.where(exists().where(owner == key, check))
    if before is not None:
        statement = statement.where(key < before)
    if common:
        window = select(key).order_by(key.desc()).offset(MAX_SCANNED).limit(1)
        if before is not None:
            window = window.where(key < before)
        floor = (await session.execute(window)).scalar_one_or_none()
        if floor is not None:
            statement = statement.where(key > floor)
        scanned = list(await session.execute(statement))
        return scanned, floor if floor is not None and len(scanned) <= limit else None
    candidates = sorted(
        (await session.execute(select(owner).where(matches[rarest]))).scalars(), reverse=True
    )
    if before is not None:
        candidates = [c for c in candidates if c < before]
    rows: list[Any] = []
    for start in range(0, len(candidates), CHUNK):
        rows += list(
            await session.execute(statement.where(key.in_(candidates[start : start + CHUNK])))
        )
        if len(rows) > limit:
            break
    return rows, None


async def _search_by_terms(
    session: AsyncSession,
    query: Query,
    *,
    term: Any,
    owner: Any,
    key: Any,
    statement: Any,
    before: int | None,
    limit: int,
) -> tuple[list[Any], int | None]:
    """`_by_terms` for each of the query's term sets, merged; and the floor of a scan
    that stopped short (the page holds nothing at or below it)."""
    found: dict[int, Any] = {}
    floors: list[int] = []
    for terms in _term_sets(query):
        rows, floor = await _by_terms(
            session,
            terms,
            term=term,
            owner=owner,
            key=key,
            statement=statement,
            before=before,
            limit=limit,
        )
        for row in rows:
            found.setdefault(row.id, row)
        if floor is not None:
            floors.append(floor)
    floor = max(floors, default=None)
    ids = [i for i in sorted(found, reverse=True) if floor is None or i > floor]
    return [found[i] for i in ids][: limit + 1], floor


async def search_customers(
    session: AsyncSession,
    query: Query,
    *,
    visible: ColumnElement[bool],
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> ResultPage:
    """Customers whose name, email, phone or a channel identity holds every term of the
    query (words by their beginnings, phone digits anywhere), newest first."""
    statement = (
        select(Customer.id, Customer.name, Customer.email, Customer.phone)
        .where(visible, Customer.merged_into_id.is_(None))
        .order_by(Customer.id.desc())
        .limit(limit + 1)
    )
    rows, floor = await _search_by_terms(
        session,
        query,
        term=CustomerTerm.term,
        owner=CustomerTerm.customer_id,
        key=Customer.id,
        statement=statement,
        before=decode_cursor(cursor, Kind.CUSTOMERS) if cursor else None,
        limit=limit,
    )
    items = [
        {"id": row.id, "name": row.name, "email": row.email, "phone": row.phone} for row in rows
    ]
    return _page(Kind.CUSTOMERS, items, limit, floor)


async def search_tickets(
    session: AsyncSession,
    query: Query,
    *,
    visible: ColumnElement[bool],
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> ResultPage:
    """Tickets whose subject and notes hold every term of the query, newest first."""
    latest_conversation = (
        select(func.max(TicketConversation.conversation_id))
        .where(TicketConversation.ticket_id == Ticket.id)
        .scalar_subquery()
    )
    statement = (
        select(
            Ticket.id,
            Ticket.subject,
            Ticket.status,
            Ticket.priority,
            Ticket.customer_id,
            latest_conversation.label("conversation_id"),
        )
        .where(visible)
        .order_by(Ticket.id.desc())
        .limit(limit + 1)
    )
    rows, floor = await _search_by_terms(
        session,
        query,
        term=TicketTerm.term,
        owner=TicketTerm.ticket_id,
        key=Ticket.id,
        statement=statement,
        before=decode_cursor(cursor, Kind.TICKETS) if cursor else None,
        limit=limit,
    )
    items = [
        {
            "id": row.id,
            "subject": row.subject,
            "status": row.status,
            "priority": row.priority,
            "customer_id": row.customer_id,
            "conversation_id": row.conversation_id,
        }
        for row in rows
    ]
    return _page(Kind.TICKETS, items, limit, floor)
