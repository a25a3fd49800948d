"""Stored routing rules: create, change, reorder and delete them (every state kept as a
version with who and when), and apply them to a ticket as it opens.

`apply_rules` runs inside the transaction that opens the ticket (called from
`tickets.service`), so a ticket is never committed unrouted and a crash cannot lose the
routing: the decision is durable with the ticket itself. Assignment then happens in the
routing worker, off the opening path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import BotConversation
from conversations.models import Conversation
from conversations.service import latest_customer_texts
from customers.models import Customer
from customers.profile import customer_tags
from routing.events import RoutingWake
from routing.models import Queue, RoutingRule, RoutingRuleVersion, TicketRouting
from routing.rules import CheckedRule, RuleFacts, RuleLike, calendar_ids, first_match
from switchboard.db import utcnow
from switchboard.errors import InvalidInput, NotFound
from switchboard.models import Role, User
from switchboard.tx import emit
from tickets.business_hours import NoBusinessTime, spans
from tickets.models import Ticket, TicketTag
from tickets.service import lock_profile
from tickets.sla import calendar_of_row
from tickets.sla_models import SlaCalendar

_STAFF = {Role.AGENT, Role.SUPERVISOR, Role.ADMIN}
MAX_RULES = 500


def rule_view(rule: RoutingRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "position": rule.position,
        "enabled": rule.enabled,
        "conditions": rule.conditions,
        "actions": rule.actions,
        "version": rule.version,
        "updated_at": rule.updated_at.isoformat(),
        "updated_by": rule.updated_by_user_id,
    }


def _snapshot(rule: RoutingRule) -> dict[str, Any]:
    view = rule_view(rule)
    return {k: view[k] for k in ("name", "position", "enabled", "conditions", "actions")}


def _version(session: AsyncSession, rule: RoutingRule, change: str, actor_id: int | None) -> None:
    session.add(
        RoutingRuleVersion(
            rule_id=rule.id,
            version=rule.version,
            change=change,
            snapshot=_snapshot(rule),
            actor_user_id=actor_id,
            created_at=rule.updated_at,
        )
    )


async def _check_references(session: AsyncSession, checked: CheckedRule) -> None:
    """Ids in actions must name something that exists (checked on save, not at use)."""
    queue_id = checked.actions.get("queue_id")
    if queue_id is not None and await session.get(Queue, queue_id) is None:
        raise InvalidInput("actions.queue_id: no such queue", code="invalid_rule")
    calendar_id = checked.conditions.get("business_hours", {}).get("calendar_id")
    if calendar_id is not None and await session.get(SlaCalendar, calendar_id) is None:
        raise InvalidInput(
            "conditions.business_hours.calendar_id: no such calendar", code="invalid_rule"
        )
    user_id = checked.actions.get("assign_user_id")
    if user_id is not None:
        user = await session.get(User, user_id)
        if user is None or not user.active or user.role not in _STAFF:
            raise InvalidInput(
                "actions.assign_user_id: must name an active staff member", code="invalid_rule"
            )


async def list_rules(session: AsyncSession) -> list[RoutingRule]:
    rows = await session.execute(
        select(RoutingRule)
        .where(RoutingRule.deleted_at.is_(None))
        .order_by(RoutingRule.position, RoutingRule.id)
    )
    return list(rows.scalars())


async def get_rule(session: AsyncSession, rule_id: int) -> RoutingRule:
    rule = await session.get(RoutingRule, rule_id)
    if rule is None or rule.deleted_at is not None:
        raise NotFound("rule not found")
    return rule


async def do_create_rule(session: AsyncSession, checked: CheckedRule, actor_id: int) -> RoutingRule:
    """A new rule, last in the order."""
    await _check_references(session, checked)
    count, last = (
        await session.execute(
            select(func.count(), func.max(RoutingRule.position)).where(
                RoutingRule.deleted_at.is_(None)
            )
        )
    ).one()
    if count >= MAX_RULES:
        raise InvalidInput(f"at most {MAX_RULES} rules", code="too_many_rules")
    rule = RoutingRule(
        name=checked.name,
        enabled=checked.enabled,
        conditions=checked.conditions,
        actions=checked.actions,
        position=(last or 0) + 1,
        version=1,
        updated_at=utcnow(),
        updated_by_user_id=actor_id,
    )
    session.add(rule)
    await session.flush()
    _version(session, rule, "created", actor_id)
    return rule


async def do_update_rule(
    session: AsyncSession, rule_id: int, checked: CheckedRule, actor_id: int
) -> RoutingRule:
    """Replace the rule's name, conditions and actions (a new version)."""
    await _check_references(session, checked)
    rule = await get_rule(session, rule_id)
    rule.name, rule.enabled = checked.name, checked.enabled
    rule.conditions, rule.actions = checked.conditions, checked.actions
    rule.version += 1
    rule.updated_at, rule.updated_by_user_id = utcnow(), actor_id
    _version(session, rule, "updated", actor_id)
    await session.flush()
    return rule


async def do_delete_rule(session: AsyncSession, rule_id: int, actor_id: int) -> None:
    """Retire the rule; its versions stay readable."""
    rule = await get_rule(session, rule_id)
    rule.deleted_at = rule.updated_at = utcnow()
    rule.version += 1
    rule.updated_by_user_id = actor_id
    _version(session, rule, "deleted", actor_id)
    await session.flush()


async def do_reorder_rules(
    session: AsyncSession, ordered_ids: Sequence[int], actor_id: int
) -> list[RoutingRule]:
    """Put the rules in this order; the list must name every rule exactly once."""
    rules = await list_rules(session)
    if sorted(ordered_ids) != sorted(r.id for r in rules) or len(set(ordered_ids)) != len(
        ordered_ids
    ):
        raise InvalidInput("ids: must list every rule exactly once", code="invalid_order")
    by_id = {r.id: r for r in rules}
    now = utcnow()
    for position, rule_id in enumerate(ordered_ids, start=1):
        rule = by_id[rule_id]
        if rule.position != position:
            rule.position = position
            rule.version += 1
            rule.updated_at, rule.updated_by_user_id = now, actor_id
            _version(session, rule, "reordered", actor_id)
    await session.flush()
    return [by_id[i] for i in ordered_ids]


async def rule_versions(session: AsyncSession, rule_id: int) -> list[dict[str, Any]]:
    if await session.get(RoutingRule, rule_id) is None:
        raise NotFound("rule not found")
    rows = await session.execute(
        select(RoutingRuleVersion)
        .where(RoutingRuleVersion.rule_id == rule_id)
        .order_by(RoutingRuleVersion.version)
    )
    return [
        {
            "version": v.version,
            "change": v.change,
            "rule": v.snapshot,
            "actor_user_id": v.actor_user_id,
            "created_at": v.created_at.isoformat(),
        }
        for v in rows.scalars()
    ]


# --- applying ----------------------------------------------------------------------------------


def _open_at(row: SlaCalendar, now: datetime) -> bool:
    """Whether `now` is business time in the calendar (its first span starts at `now`)."""
    try:
        start, _end = next(spans(calendar_of_row(row), now))
    except (NoBusinessTime, ValueError):
        return False
    return start <= now


async def ticket_facts(
    session: AsyncSession, ticket: Ticket, conversation_id: int | None
) -> RuleFacts:
    """What the rules may look at for this ticket, read from its conversation."""
    now = utcnow()
    reason = ticket.reason.split(":", 1)[0].strip() if ticket.reason else None
    handoff_reason = reason if ticket.source == "bot_handoff" else None
    text = ticket.subject or ""
    customer = await session.get(Customer, ticket.customer_id)
    language = customer.locale if customer is not None else None
    # The customer's tier and tags (customers.profile), normalised as rules store them.
    tier = customer.tier if customer is not None else None
    tags = tuple(await customer_tags(session, ticket.customer_id))
    if conversation_id is None:
        return RuleFacts(
            now=now,
            language=language,
            customer_tier=tier,
            customer_tags=tags,
            handoff_reason=handoff_reason,
            text=text,
        )
    conversation = await session.get(Conversation, conversation_id)
    bot = await session.get(BotConversation, conversation_id)
    intent = None
    if bot is not None:
        language = bot.locale or language
        if bot.handoff_guesses:
            intent = str(bot.handoff_guesses[0][0])
    texts = await latest_customer_texts(session, conversation_id, 1)
    latest = texts[0] if texts else None
    return RuleFacts(
        now=now,
        channel=conversation.channel if conversation else None,
        inbox_id=conversation.inbox_id if conversation else None,
        language=language,
        customer_tier=tier,
        customer_tags=tags,
        handoff_reason=handoff_reason,
        intent=intent,
        text=f"{text}\n{latest or ''}",
    )


async def apply_rules(
    session: AsyncSession, ticket: Ticket, conversation_id: int | None
) -> dict[str, Any]:
    """Run the rules for a new ticket and apply the first match's actions; what changed
    (empty when no rule matched). A rule naming a queue or agent deleted since it was
    saved skips that action rather than failing the ticket."""
    stored = [r for r in await list_rules(session) if r.enabled]
    rules = [RuleLike(r.id, r.version, r.conditions, r.actions) for r in stored]
    facts = await ticket_facts(session, ticket, conversation_id)
    wanted = calendar_ids(rules)
    if wanted:
        rows = await session.execute(select(SlaCalendar).where(SlaCalendar.id.in_(wanted)))
        facts = dataclasses.replace(
            facts,
            calendars_open={row.id: _open_at(row, facts.now) for row in rows.scalars()},
        )
    rule = first_match(rules, facts)
    actions: dict[str, Any] = rule.actions if rule is not None else {}
    changed: dict[str, Any] = {}
    queue_id = actions.get("queue_id")
    if queue_id is not None and await session.get(Queue, queue_id) is not None:
        ticket.queue_id = queue_id
        changed["queue_id"] = queue_id
    if "priority" in actions and actions["priority"] != ticket.priority:
        changed["priority"] = {"from": ticket.priority, "to": actions["priority"]}
        ticket.priority = actions["priority"]
    if "sla_policy_id" in actions:
        ticket.sla_policy_id = changed["sla_policy_id"] = actions["sla_policy_id"]
    if actions.get("add_tags"):
        have = set(
            (await session.execute(select(TicketTag.tag).where(TicketTag.ticket_id == ticket.id)))
            .scalars()
            .all()
        )
        added = [t for t in actions["add_tags"] if t not in have]
        for tag in added:
            session.add(TicketTag(ticket_id=ticket.id, tag=tag))
        if added:
            changed["tags"] = {"added": added, "removed": []}
    assignee = actions.get("assign_user_id")
    if assignee is not None:
        user = await session.get(User, assignee)
        if user is not None and user.active and user.role in _STAFF:
            # A rule's assignment is an admin's standing choice, like one by hand: it
            # may exceed capacity, and the assigner counts it (`lock_profile`).
            await lock_profile(session, assignee)
            ticket.assignee_user_id = changed["assignee"] = assignee
    session.add(
        TicketRouting(
            ticket_id=ticket.id,
            language=(facts.language or None) and facts.language[:20],
            skills=list(actions.get("require_skills", [])),
            rule_id=rule.id if rule else None,
            rule_version=rule.version if rule else None,
            routed_at=facts.now,
        )
    )
    if rule is not None:
        changed["rule"] = {"id": rule.id, "version": rule.version}
    if ticket.queue_id is not None and ticket.assignee_user_id is None:
        emit(session, RoutingWake(actor="system"))
    return changed
