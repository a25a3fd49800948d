"""An inbox's bot thresholds and hand-off rules: read, checked and changed by admins."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import BotInboxSettings
from bot.policy import RULE_FIELDS, BotSettings, Rule
from conversations.models import Inbox
from switchboard.db import utcnow
from switchboard.errors import InvalidInput, NotFound

MAX_RULES = 50


def settings_from_row(row: BotInboxSettings | None) -> BotSettings:
    if row is None:
        return BotSettings()
    rules = tuple(
        Rule(field=r["field"], value=r["value"], reason=r.get("reason", "")) for r in row.rules
    )
    return BotSettings(row.confidence, row.margin, row.clarify_gap, rules)


def settings_view(inbox_id: int, settings: BotSettings, bot_enabled: bool) -> dict[str, Any]:
    return {
        "inbox_id": inbox_id,
        "bot_enabled": bot_enabled,
        "confidence": settings.confidence,
        "margin": settings.margin,
        "clarify_gap": settings.clarify_gap,
        "rules": [{"field": r.field, "value": r.value, "reason": r.reason} for r in settings.rules],
    }


async def load_inbox_settings(session: AsyncSession, inbox_id: int) -> tuple[Inbox, BotSettings]:
    inbox = await session.get(Inbox, inbox_id)
    if inbox is None:
        raise NotFound("inbox not found")
    return inbox, settings_from_row(await session.get(BotInboxSettings, inbox_id))


def _fraction(data: dict[str, Any], name: str, current: float) -> float:
    value = data.get(name, current)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a number from 0 to 1")
    if not 0 <= value <= 1:
        raise InvalidInput(f"{name} must be a number from 0 to 1")
    return float(value)


def check_rules(raw: Any) -> tuple[Rule, ...]:
    if not isinstance(raw, list):
        raise InvalidInput("rules must be a list")
    if len(raw) > MAX_RULES:
        raise InvalidInput(f"at most {MAX_RULES} rules")
    rules = []
    for n, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise InvalidInput(f"rule {n} must be an object with field, value and reason")
        field, value, reason = item.get("field"), item.get("value"), item.get("reason", "")
        if field not in RULE_FIELDS:
            raise InvalidInput(f"rule {n}: field must be one of {', '.join(RULE_FIELDS)}")
        if not isinstance(value, str) or not value.strip() or len(value) > 320:
            raise InvalidInput(f"rule {n}: value must be a non-empty string of at most 320")
        if not isinstance(reason, str) or len(reason) > 200:
            raise InvalidInput(f"rule {n}: reason must be a string of at most 200 characters")
        rules.append(Rule(field=field, value=value.strip(), reason=reason.strip()))
    return tuple(rules)


async def do_update_settings(
    session: AsyncSession, inbox_id: int, data: dict[str, Any], *, user_id: int
) -> dict[str, Any]:
    """Change an inbox's bot switch, thresholds or rules; fields left out keep their value.
    Everything is checked before anything is written."""
    inbox, current = await load_inbox_settings(session, inbox_id)
    enabled = data.get("bot_enabled", inbox.bot_enabled)
    if not isinstance(enabled, bool):
        raise InvalidInput("bot_enabled must be true or false")
    wanted = BotSettings(
        confidence=_fraction(data, "confidence", current.confidence),
        margin=_fraction(data, "margin", current.margin),
        clarify_gap=_fraction(data, "clarify_gap", current.clarify_gap),
        rules=check_rules(data["rules"]) if "rules" in data else current.rules,
    )
    row = await session.get(BotInboxSettings, inbox_id)
    if row is None:
        row = BotInboxSettings(inbox_id=inbox_id)
        session.add(row)
    row.confidence, row.margin, row.clarify_gap = (
        wanted.confidence,
        wanted.margin,
        wanted.clarify_gap,
    )
    row.rules = [{"field": r.field, "value": r.value, "reason": r.reason} for r in wanted.rules]
    row.updated_by_user_id = user_id
    row.updated_at = utcnow()
    inbox.bot_enabled = enabled
    return settings_view(inbox_id, wanted, enabled)
