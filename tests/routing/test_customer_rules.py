"""Routing rules on the customer's tier and tags, end to end: a customer writes to an
inbox without a bot, the follow-up opens a ticket, the rule puts it in its queue (or
does not), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from customers.profile import check_profile_changes, do_update_profile
from routing.rulebook import do_create_rule
from routing.rules import check_rule
from switchboard.tx import Database
from tests.conftest import create_user
from tests.routing.support import make_queue
from tests.tickets.support import customer_writes, follow_up, make_inbox, tickets_of


async def _rule(db: Database, name: str, conditions: dict[str, Any], queue_id: int) -> None:
    admin = await create_user(db, f"admin-{name.replace(' ', '-')}@example.com", role="admin")
    checked = check_rule(
        {"name": name, "conditions": conditions, "actions": {"queue_id": queue_id}}
    )
    await db.run(lambda s: do_create_rule(s, checked, admin))


async def _ticket_queue(db: Database, inbox_id: int, visitor: str, **profile: Any) -> int | None:
    """A customer (with this profile) writes; the queue the new ticket landed in."""
    conversation_id, customer_id = await customer_writes(db, visitor, "hello", inbox_id=inbox_id)
    if profile:
        changes = check_profile_changes(profile)
        await db.run(lambda s: do_update_profile(s, customer_id, changes))
    await follow_up(db)
    [ticket] = await tickets_of(db, conversation_id)
    return ticket.queue_id


async def test_a_tier_rule_routes_that_tiers_customers_only(db: Database) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    vip_queue = await make_queue(db, "VIP desk")
    await _rule(db, "vips", {"customer_tiers": ["VIP", "gold"]}, vip_queue)

    assert await _ticket_queue(db, inbox_id, "v_tier_vip", tier="Vip") == vip_queue
    assert await _ticket_queue(db, inbox_id, "v_tier_gold", tier="gold") == vip_queue
    assert await _ticket_queue(db, inbox_id, "v_tier_std", tier="standard") is None
    assert await _ticket_queue(db, inbox_id, "v_tier_none") is None


async def test_a_tag_rule_routes_customers_with_any_of_its_tags(db: Database) -> None:
    inbox_id = await make_inbox(db, bot_enabled=False)
    accounts = await make_queue(db, "Key accounts")
    other = await make_queue(db, "Everyone else")
    await _rule(db, "key accounts", {"customer_tags": ["Key-Account", "partner"]}, accounts)
    await _rule(db, "the rest", {}, other)

    tagged = await _ticket_queue(db, inbox_id, "v_tag_key", tags=["billing", "KEY-ACCOUNT"])
    assert tagged == accounts
    assert await _ticket_queue(db, inbox_id, "v_tag_partner", tags=["partner"]) == accounts
    # A tag that only contains the rule's tag is a different tag.
    assert await _ticket_queue(db, inbox_id, "v_tag_near", tags=["key-account-old"]) == other
    assert await _ticket_queue(db, inbox_id, "v_tag_none") == other
