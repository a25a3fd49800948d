"""Routing rules as data: checked on save, kept with every version, evaluated in order.

A rule is `{"name", "enabled", "conditions", "actions"}`. All of a rule's conditions must
hold (an absent condition holds); rules are tried in `position` order and the first rule
that matches decides — its actions are applied and no later rule is looked at.

Conditions (each optional):
- `channels`: ["email", "webchat", "telegram", "slack"]; `inbox_ids`: [1, 2]
- `languages`: ["en", "zh"] — the bot's locale for the conversation, else the customer's
  (a prefix match: "zh" matches "zh-Hant")
- `customer_tiers`, `customer_tags`: any of these (the customer's profile,
  `customers.profile`; tiers compare lowercased, tags as normalised tags)
- `handoff_reasons`: the bot's hand-off reason (`bot.policy.HandoffReason` values);
  `intents`: the bot's top guess at hand-off
- `keywords`: any of these words or phrases in the subject or the customer's message
  (case-insensitive)
- `business_hours`: `{"calendar_id": 2, "inside": true}` (an SLA business-hours calendar,
  holidays included) or an inline `{"timezone": "Europe/Berlin", "weekly": {"mon":
  [["09:00", "17:00"]], ...}}` — holds inside (with `"inside": false`, outside) the hours

Actions (at least one): `queue_id`, `priority`, `add_tags`, `sla_policy_id`,
`assign_user_id` (straight to that agent, whatever the queue's strategy), and
`require_skills` (for the skills strategy).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.policy import HandoffReason
from switchboard.errors import InvalidInput
from tickets.checks import check_priority, check_tag, check_tags

CHANNELS = ("email", "webchat", "telegram", "slack")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_NAME = 200
MAX_LIST = 50
MAX_KEYWORD = 100
MAX_ROW_ID = 2**31 - 1
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_SKILL = re.compile(r"^[\w\-.]{1,50}$")

CONDITION_KEYS = frozenset(
    {
        "channels",
        "inbox_ids",
        "languages",
        "customer_tiers",
        "customer_tags",
        "handoff_reasons",
        "intents",
        "keywords",
        "business_hours",
    }
)
ACTION_KEYS = frozenset(
    {"queue_id", "priority", "add_tags", "sla_policy_id", "assign_user_id", "require_skills"}
)


def _bad(path: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{path}: {problem}", code="invalid_rule")


def _list(raw: object, path: str) -> list[Any]:
    if not isinstance(raw, list) or not raw:
        raise _bad(path, "must be a non-empty list")
    if len(raw) > MAX_LIST:
        raise _bad(path, f"at most {MAX_LIST} values")
    return raw


def _strings(raw: object, path: str, pattern: re.Pattern[str] | None = None) -> list[str]:
    values = _list(raw, path)
    out: list[str] = []
    for item in values:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_KEYWORD:
            raise _bad(path, f"each value is a string of 1 to {MAX_KEYWORD} characters")
        if pattern is not None and not pattern.match(item):
            raise _bad(path, f"{item[:40]!r} is not allowed here")
        out.append(item.strip().lower())
    return sorted(set(out))


def row_id(raw: object, path: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= MAX_ROW_ID:
        raise _bad(path, "must be a positive whole number")
    return raw


def _minutes(raw: object, path: str) -> int:
    if not isinstance(raw, str) or not _HHMM.match(raw):
        raise _bad(path, "times are HH:MM, 00:00 to 24:00")
    hours, minutes = raw.split(":")
    return int(hours) * 60 + int(minutes)


def _business_hours(raw: object) -> dict[str, Any]:
    path = "conditions.business_hours"
    if not isinstance(raw, dict):
        raise _bad(path, "must be an object with calendar_id, or timezone and weekly")
    if "calendar_id" in raw:
        unknown = set(raw) - {"calendar_id", "inside"}
        if unknown:
            raise _bad(f"{path}.{sorted(unknown)[0][:40]}", "not allowed with calendar_id")
        inside = raw.get("inside", True)
        if not isinstance(inside, bool):
            raise _bad(f"{path}.inside", "must be true or false")
        return {"calendar_id": row_id(raw["calendar_id"], f"{path}.calendar_id"), "inside": inside}
    unknown = set(raw) - {"timezone", "weekly", "inside"}
    if unknown:
        raise _bad(f"{path}.{sorted(unknown)[0][:40]}", "unknown field")
    zone = raw.get("timezone")
    try:
        if not isinstance(zone, str) or not zone:
            raise KeyError(zone)
        ZoneInfo(zone)
    except (KeyError, ValueError, ZoneInfoNotFoundError):
        raise _bad(f"{path}.timezone", "must be an IANA time zone such as Europe/Berlin") from None
    weekly = raw.get("weekly")
    if not isinstance(weekly, dict) or not weekly:
        raise _bad(f"{path}.weekly", "must map days (mon..sun) to [[from, to], ...]")
    checked: dict[str, list[list[str]]] = {}
    for day, spans in weekly.items():
        if day not in DAYS:
            raise _bad(f"{path}.weekly", f"{str(day)[:10]!r} is not one of {', '.join(DAYS)}")
        day_path = f"{path}.weekly.{day}"
        if not isinstance(spans, list) or len(spans) > 10:
            raise _bad(day_path, "must be a list of at most 10 [from, to] pairs")
        for span in spans:
            if not isinstance(span, list) or len(span) != 2:
                raise _bad(day_path, "each span is [from, to]")
            if _minutes(span[0], day_path) >= _minutes(span[1], day_path):
                raise _bad(day_path, "a span must end after it starts")
        checked[day] = [[str(a), str(b)] for a, b in spans]
    inside = raw.get("inside", True)
    if not isinstance(inside, bool):
        raise _bad(f"{path}.inside", "must be true or false")
    return {"timezone": zone, "weekly": checked, "inside": inside}


def check_conditions(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _bad("conditions", "must be an object")
    unknown = sorted(set(raw) - CONDITION_KEYS)
    if unknown:
        raise _bad(f"conditions.{unknown[0][:40]}", "unknown condition")
    out: dict[str, Any] = {}
    if "channels" in raw:
        channels = _strings(raw["channels"], "conditions.channels")
        if any(c not in CHANNELS for c in channels):
            raise _bad("conditions.channels", f"channels are {', '.join(CHANNELS)}")
        out["channels"] = channels
    if "inbox_ids" in raw:
        ids = _list(raw["inbox_ids"], "conditions.inbox_ids")
        out["inbox_ids"] = sorted({row_id(i, "conditions.inbox_ids") for i in ids})
    if "languages" in raw:
        out["languages"] = _strings(raw["languages"], "conditions.languages", _LANGUAGE)
    for key in ("customer_tiers", "intents", "keywords"):
        if key in raw:
            out[key] = _strings(raw[key], f"conditions.{key}")
    if "customer_tags" in raw:
        try:
            out["customer_tags"] = list(check_tags(_list(raw["customer_tags"], "x")))
        except InvalidInput as exc:
            raise _bad("conditions.customer_tags", exc.message) from None
    if "handoff_reasons" in raw:
        reasons = _strings(raw["handoff_reasons"], "conditions.handoff_reasons")
        allowed = [r.value for r in HandoffReason]
        if any(r not in allowed for r in reasons):
            raise _bad("conditions.handoff_reasons", f"reasons are {', '.join(allowed)}")
        out["handoff_reasons"] = reasons
    if "business_hours" in raw:
        out["business_hours"] = _business_hours(raw["business_hours"])
    return out


def check_actions(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise _bad("actions", "must be an object with at least one action")
    unknown = sorted(set(raw) - ACTION_KEYS)
    if unknown:
        raise _bad(f"actions.{unknown[0][:40]}", "unknown action")
    out: dict[str, Any] = {}
    for key in ("queue_id", "sla_policy_id", "assign_user_id"):
        if key in raw:
            out[key] = row_id(raw[key], f"actions.{key}")
    if "priority" in raw:
        try:
            out["priority"] = check_priority(raw["priority"]).value
        except InvalidInput as exc:
            raise _bad("actions.priority", exc.message) from None
    if "add_tags" in raw:
        try:
            out["add_tags"] = [check_tag(t) for t in _list(raw["add_tags"], "actions.add_tags")]
        except InvalidInput as exc:
            raise _bad("actions.add_tags", exc.message) from None
        out["add_tags"] = sorted(set(out["add_tags"]))
    if "require_skills" in raw:
        out["require_skills"] = _strings(raw["require_skills"], "actions.require_skills", _SKILL)
    return out


@dataclass(frozen=True)
class CheckedRule:
    name: str
    enabled: bool
    conditions: dict[str, Any]
    actions: dict[str, Any]


def check_rule(raw: Mapping[str, Any]) -> CheckedRule:
    """A whole rule from a request body, or a 400 naming the first bad field."""
    unknown = sorted(set(raw) - {"name", "enabled", "conditions", "actions"})
    if unknown:
        raise _bad(unknown[0][:40], "unknown field")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise _bad("name", f"must be 1 to {MAX_NAME} characters")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _bad("enabled", "must be true or false")
    return CheckedRule(
        name=name.strip(),
        enabled=enabled,
        conditions=check_conditions(raw.get("conditions")),
        actions=check_actions(raw.get("actions")),
    )


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFacts:
    """What the rules look at for one new ticket."""

    now: datetime
    channel: str | None = None
    inbox_id: int | None = None
    language: str | None = None
    customer_tier: str | None = None
    customer_tags: Sequence[str] = ()
    handoff_reason: str | None = None
    intent: str | None = None
    text: str = ""
    # Whether `now` is business time, per calendar id the rules name (read by the caller).
    calendars_open: Mapping[int, bool] = field(default_factory=dict)


def in_business_hours(hours: Mapping[str, Any], facts: RuleFacts) -> bool:
    if "calendar_id" in hours:
        # A calendar deleted since the rule was saved: never business time.
        return facts.calendars_open.get(hours["calendar_id"], False)
    now = facts.now
    local = now.astimezone(ZoneInfo(hours["timezone"]))
    minute = local.hour * 60 + local.minute
    for start, end in hours["weekly"].get(DAYS[local.weekday()], []):
        if _minutes(start, "") <= minute < _minutes(end, ""):
            return True
    return False


def _language_matches(wanted: Sequence[str], language: str | None) -> bool:
    if not language:
        return False
    lang = language.lower()
    return any(lang == w or lang.startswith(w + "-") for w in wanted)


def _keyword_in(keyword: str, text: str) -> bool:
    # Latin-script keywords must start a word ("fund" is not in "refund", "refund" is in
    # "refunded"); scripts written without spaces, such as Chinese, match anywhere.
    if keyword.isascii():
        return re.search(r"(?<!\w)" + re.escape(keyword), text) is not None
    return keyword in text


def matches(conditions: Mapping[str, Any], facts: RuleFacts) -> bool:
    """Whether every condition holds for these facts."""
    if "channels" in conditions and facts.channel not in conditions["channels"]:
        return False
    if "inbox_ids" in conditions and facts.inbox_id not in conditions["inbox_ids"]:
        return False
    if "languages" in conditions and not _language_matches(conditions["languages"], facts.language):
        return False
    if "customer_tiers" in conditions and (
        (facts.customer_tier or "").lower() not in conditions["customer_tiers"]
    ):
        return False
    if "customer_tags" in conditions and not set(conditions["customer_tags"]) & set(
        facts.customer_tags
    ):
        return False
    if (
        "handoff_reasons" in conditions
        and facts.handoff_reason not in conditions["handoff_reasons"]
    ):
        return False
    if "intents" in conditions and (facts.intent or "").lower() not in conditions["intents"]:
        return False
    if "keywords" in conditions:
        text = facts.text.lower()
        if not any(_keyword_in(k, text) for k in conditions["keywords"]):
            return False
    if "business_hours" in conditions:
        hours = conditions["business_hours"]
        if in_business_hours(hours, facts) != hours["inside"]:
            return False
    return True


@dataclass(frozen=True)
class RuleLike:
    id: int
    version: int
    conditions: dict[str, Any]
    actions: dict[str, Any]


def calendar_ids(rules: Sequence[RuleLike]) -> set[int]:
    """The business-hours calendars these rules name."""
    return {
        r.conditions["business_hours"]["calendar_id"]
        for r in rules
        if "calendar_id" in r.conditions.get("business_hours", {})
    }


def first_match(rules: Sequence[RuleLike], facts: RuleFacts) -> RuleLike | None:
    """The first rule (in the given order) whose conditions hold."""
    for rule in rules:
        if matches(rule.conditions, facts):
            return rule
    return None
