"""Queues, their members and agents' routing profiles: reading and writing.

`do_*` functions write within the caller's transaction. Removing an agent from a queue
takes effect at the next request (ticket visibility reads memberships every time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.events import RoutingWake
from routing.models import AgentProfile, Presence, Queue, QueueMember, Strategy
from routing.rules import _LANGUAGE, _SKILL, MAX_LIST
from switchboard.db import utcnow
from switchboard.errors import Conflict, InvalidInput, NotFound
from switchboard.models import Role, User
from switchboard.tx import emit
from tickets.models import ACTIVE_STATUSES, Ticket, TicketStatus

STAFF = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})
MAX_QUEUE_NAME = 100
MAX_CAPACITY = 100
DEFAULT_CAPACITY = 5


def check_queue_fields(raw: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    unknown = sorted(set(raw) - {"name", "strategy"})
    if unknown:
        raise InvalidInput(f"{unknown[0][:40]}: unknown field", code="invalid_queue")
    out: dict[str, Any] = {}
    if "name" in raw or not partial:
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_QUEUE_NAME:
            raise InvalidInput(
                f"name: must be 1 to {MAX_QUEUE_NAME} characters", code="invalid_queue"
            )
        out["name"] = name.strip()
    if "strategy" in raw:
        if raw["strategy"] not in Strategy.__members__.values():
            allowed = ", ".join(s.value for s in Strategy)
            raise InvalidInput(f"strategy: must be one of {allowed}", code="invalid_queue")
        out["strategy"] = raw["strategy"]
    return out


def queue_view(queue: Queue, member_ids: Sequence[int]) -> dict[str, Any]:
    return {
        "id": queue.id,
        "name": queue.name,
        "strategy": queue.strategy,
        "member_ids": list(member_ids),
        "created_at": queue.created_at.isoformat(),
        "updated_at": queue.updated_at.isoformat(),
    }


async def members_of(session: AsyncSession, queue_ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {q: [] for q in queue_ids}
    if queue_ids:
        rows = await session.execute(
            select(QueueMember.queue_id, QueueMember.user_id)
            .where(QueueMember.queue_id.in_(queue_ids))
            .order_by(QueueMember.user_id)
        )
        for queue_id, user_id in rows:
            out[queue_id].append(user_id)
    return out


async def list_queues(session: AsyncSession, *, member: int | None = None) -> list[dict[str, Any]]:
    """Every queue, or only those `member` belongs to."""
    query = select(Queue).order_by(Queue.name)
    if member is not None:
        query = query.where(
            Queue.id.in_(select(QueueMember.queue_id).where(QueueMember.user_id == member))
        )
    queues = list((await session.execute(query)).scalars())
    members = await members_of(session, [q.id for q in queues])
    return [queue_view(q, members[q.id]) for q in queues]


async def get_queue(session: AsyncSession, queue_id: int) -> Queue:
    queue = await session.get(Queue, queue_id)
    if queue is None:
        raise NotFound("queue not found")
    return queue


async def _name_free(session: AsyncSession, name: str, but: int | None = None) -> None:
    query = select(Queue.id).where(func.lower(Queue.name) == name.lower())
    if but is not None:
        query = query.where(Queue.id != but)
    if (await session.execute(query)).first() is not None:
        raise Conflict(f"a queue named {name!r} exists", code="queue_exists")


async def do_create_queue(session: AsyncSession, fields: Mapping[str, Any]) -> Queue:
    await _name_free(session, fields["name"])
    now = utcnow()
    queue = Queue(
        name=fields["name"],
        strategy=fields.get("strategy", Strategy.ROUND_ROBIN),
        created_at=now,
        updated_at=now,
    )
    session.add(queue)
    await session.flush()
    return queue


async def do_update_queue(session: AsyncSession, queue_id: int, fields: Mapping[str, Any]) -> Queue:
    queue = await get_queue(session, queue_id)
    if "name" in fields:
        await _name_free(session, fields["name"], but=queue.id)
        queue.name = fields["name"]
    if "strategy" in fields:
        queue.strategy = fields["strategy"]
    queue.updated_at = utcnow()
    await session.flush()
    return queue


async def do_delete_queue(session: AsyncSession, queue_id: int) -> None:
    """Delete a queue whose tickets are all closed (they keep their assignees and lose
    the queue). One with other tickets is refused: a ticket in no queue is every
    agent's to see (`tickets.access`), so deleting would widen who sees them."""
    # Locked first: a ticket routed into the queue meanwhile is committed before the
    # count (its foreign key check waits for this lock, or this lock for it).
    queue = (
        await session.execute(
            select(Queue)
            .where(Queue.id == queue_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if queue is None:
        raise NotFound("queue not found")
    left = (
        await session.execute(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.queue_id == queue.id, Ticket.status != TicketStatus.CLOSED)
        )
    ).scalar_one()
    if left:
        raise Conflict(
            f"queue {queue.name!r} still has {left} ticket(s) that are not closed; "
            "move or close them before deleting the queue",
            code="queue_not_empty",
        )
    await session.delete(queue)
    await session.flush()


async def _staff_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.active or user.role not in STAFF:
        raise InvalidInput("user_id: must name an active staff member", code="invalid_user")
    return user


async def ensure_profile(session: AsyncSession, user_id: int) -> AgentProfile:
    profile = await session.get(AgentProfile, user_id)
    if profile is None:
        profile = AgentProfile(
            user_id=user_id,
            capacity=DEFAULT_CAPACITY,
            skills=[],
            languages=[],
            presence=Presence.OFFLINE,
            wants=Presence.ONLINE,
            presence_changed_at=utcnow(),
        )
        session.add(profile)
        await session.flush()
    return profile


async def do_add_member(session: AsyncSession, queue_id: int, user_id: int) -> None:
    queue = await get_queue(session, queue_id)
    await _staff_user(session, user_id)
    await ensure_profile(session, user_id)
    if await session.get(QueueMember, (queue.id, user_id)) is None:
        session.add(QueueMember(queue_id=queue.id, user_id=user_id, added_at=utcnow()))
        await session.flush()
        # The new member may be online with room: held tickets can go now.
        emit(session, RoutingWake(actor="system"))


async def do_remove_member(session: AsyncSession, queue_id: int, user_id: int) -> None:
    await get_queue(session, queue_id)
    await session.execute(
        delete(QueueMember).where(QueueMember.queue_id == queue_id, QueueMember.user_id == user_id)
    )


def check_profile_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(raw) - {"capacity", "skills", "languages"})
    if unknown:
        raise InvalidInput(f"{unknown[0][:40]}: unknown field", code="invalid_agent")
    out: dict[str, Any] = {}
    if "capacity" in raw:
        capacity = raw["capacity"]
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise InvalidInput("capacity: must be a whole number", code="invalid_agent")
        if not 0 <= capacity <= MAX_CAPACITY:
            raise InvalidInput(f"capacity: must be 0 to {MAX_CAPACITY}", code="invalid_agent")
        out["capacity"] = capacity
    for key, pattern in (("skills", _SKILL), ("languages", _LANGUAGE)):
        if key in raw:
            values = raw[key]
            if not isinstance(values, list) or len(values) > MAX_LIST:
                raise InvalidInput(
                    f"{key}: must be a list of at most {MAX_LIST}", code="invalid_agent"
                )
            for value in values:
                if not isinstance(value, str) or not pattern.match(value):
                    raise InvalidInput(
                        f"{key}: {str(value)[:40]!r} is not allowed", code="invalid_agent"
                    )
            out[key] = sorted({v.lower() for v in values})
    return out


async def open_loads(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, int]:
    """Active (new, open, pending, on hold) tickets assigned to each user."""
    out = dict.fromkeys(user_ids, 0)
    if user_ids:
        rows = await session.execute(
            select(Ticket.assignee_user_id, func.count())
            .where(
                Ticket.assignee_user_id.in_(user_ids),
                Ticket.status.in_([s.value for s in ACTIVE_STATUSES]),
            )
            .group_by(Ticket.assignee_user_id)
        )
        for user_id, count in rows:
            if user_id is not None:
                out[user_id] = count
    return out


def agent_view(
    user: User, profile: AgentProfile | None, queue_ids: list[int], load: int
) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "capacity": profile.capacity if profile else DEFAULT_CAPACITY,
        "skills": profile.skills if profile else [],
        "languages": profile.languages if profile else [],
        "presence": profile.presence if profile else Presence.OFFLINE.value,
        "presence_changed_at": profile.presence_changed_at.isoformat() if profile else None,
        "queue_ids": queue_ids,
        "open_tickets": load,
    }


async def list_agents(
    session: AsyncSession, user_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Staff members with their routing profile, presence, queues and open-ticket count."""
    query = (
        select(User, AgentProfile)
        .outerjoin(AgentProfile, AgentProfile.user_id == User.id)
        .where(User.active.is_(True), User.role.in_([r.value for r in STAFF]))
        .order_by(User.id)
    )
    if user_ids is not None:
        query = query.where(User.id.in_(user_ids))
    rows = (await session.execute(query)).all()
    ids = [u.id for u, _p in rows]
    queues: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        for queue_id, user_id in await session.execute(
            select(QueueMember.queue_id, QueueMember.user_id)
            .where(QueueMember.user_id.in_(ids))
            .order_by(QueueMember.queue_id)
        ):
            queues[user_id].append(queue_id)
    loads = await open_loads(session, ids)
    return [agent_view(u, p, queues[u.id], loads[u.id]) for u, p in rows]


async def do_update_profile(session: AsyncSession, user_id: int, fields: Mapping[str, Any]) -> None:
    await _staff_user(session, user_id)
    profile = await ensure_profile(session, user_id)
    for key, value in fields.items():
        setattr(profile, key, value)
    await session.flush()
    emit(session, RoutingWake(actor="system"))
