"""Routing rules: validation names the bad field; evaluation is in order, per condition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from routing.rules import RuleFacts, RuleLike, check_rule, first_match, matches
from switchboard.errors import InvalidInput

# A Monday, 10:30 in Berlin (CET, UTC+1).
MONDAY_MORNING = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
SUNDAY = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OFFICE = {"timezone": "Europe/Berlin", "weekly": {"mon": [["09:00", "17:00"]]}}


def rule(conditions: dict[str, Any] | None = None, **actions: Any) -> dict[str, Any]:
    return {"name": "r", "conditions": conditions or {}, "actions": actions or {"priority": "high"}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"conditions": {}, "actions": {"priority": "high"}}, "name"),
        (rule({"colour": ["red"]}), "conditions.colour"),
        (rule({"channels": ["fax"]}), "conditions.channels"),
        (rule({"channels": []}), "conditions.channels"),
        (rule({"inbox_ids": ["1"]}), "conditions.inbox_ids"),
        (rule({"languages": ["english!"]}), "conditions.languages"),
        (rule({"handoff_reasons": ["bored"]}), "conditions.handoff_reasons"),
        (rule({"keywords": "refund"}), "conditions.keywords"),
        (rule({"customer_tags": ["<b>"]}), "conditions.customer_tags"),
        (rule({"business_hours": {**OFFICE, "timezone": "Mars/Base"}}), "business_hours.timezone"),
        (rule({"business_hours": {**OFFICE, "weekly": {"mon": [["17:00", "09:00"]]}}}), "mon"),
        (rule({"business_hours": {**OFFICE, "weekly": {"funday": []}}}), "business_hours.weekly"),
        (rule({"business_hours": {**OFFICE, "weekly": {"mon": [["9am", "5pm"]]}}}), "mon"),
        ({"name": "r", "actions": {}}, "actions"),
        (rule(priority="asap"), "actions.priority"),
        (rule(queue_id=0), "actions.queue_id"),
        (rule(queue_id=True), "actions.queue_id"),
        (rule(assign_user_id="5"), "actions.assign_user_id"),
        (rule(add_tags=["no spaces"]), "actions.add_tags"),
        (rule(reroute=True), "actions.reroute"),
        ({**rule(), "position": 1}, "position"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_rule(body)
    assert field in caught.value.message
    assert caught.value.code == "invalid_rule"


def test_a_good_rule_is_normalised() -> None:
    checked = check_rule(
        rule(
            {"channels": ["email"], "keywords": ["Refund", "refund"], "business_hours": OFFICE},
            queue_id=3,
            add_tags=["Billing"],
        )
    )
    assert checked.conditions["keywords"] == ["refund"]
    assert checked.conditions["business_hours"]["inside"] is True
    assert checked.actions == {"queue_id": 3, "add_tags": ["billing"]}


def facts(**fields: Any) -> RuleFacts:
    return RuleFacts(now=fields.pop("now", MONDAY_MORNING), **fields)


@pytest.mark.parametrize(
    ("conditions", "holds", "fails"),
    [
        ({"channels": ["email"]}, facts(channel="email"), facts(channel="webchat")),
        ({"inbox_ids": [4]}, facts(inbox_id=4), facts(inbox_id=5)),
        ({"languages": ["zh"]}, facts(language="zh-Hant"), facts(language="en")),
        ({"languages": ["zh"]}, facts(language="ZH"), facts(language=None)),
        ({"customer_tiers": ["gold"]}, facts(customer_tier="Gold"), facts(customer_tier=None)),
        ({"customer_tags": ["vip"]}, facts(customer_tags=("vip", "x")), facts(customer_tags=())),
        (
            {"handoff_reasons": ["frustration"]},
            facts(handoff_reason="frustration"),
            facts(handoff_reason="customer_asked"),
        ),
        ({"intents": ["refund_time"]}, facts(intent="refund_time"), facts(intent="greeting")),
        ({"keywords": ["refund"]}, facts(text="I want a REFUND now"), facts(text="fund me")),
        ({"keywords": ["退款"]}, facts(text="我要退款"), facts(text="我要发票")),
        ({"business_hours": OFFICE}, facts(), facts(now=SUNDAY)),
        ({"business_hours": {**OFFICE, "inside": False}}, facts(now=SUNDAY), facts()),
    ],
)
def test_each_condition_holds_and_fails(
    conditions: dict[str, Any], holds: RuleFacts, fails: RuleFacts
) -> None:
    checked = check_rule(rule(conditions)).conditions
    assert matches(checked, holds)
    assert not matches(checked, fails)


def test_business_hours_end_is_exclusive_and_in_the_zones_time() -> None:
    hours = check_rule(rule({"business_hours": OFFICE})).conditions
    # 16:00 UTC is 17:00 in Berlin: closed; 15:59 UTC is 16:59: open.
    assert not matches(hours, facts(now=datetime(2026, 12, 7, 16, 0, tzinfo=UTC)))
    assert matches(hours, facts(now=datetime(2026, 12, 7, 15, 59, tzinfo=UTC)))


def test_all_conditions_of_a_rule_must_hold() -> None:
    both = check_rule(rule({"channels": ["email"], "keywords": ["invoice"]})).conditions
    assert matches(both, facts(channel="email", text="my invoice"))
    assert not matches(both, facts(channel="email", text="hello"))
    assert not matches(both, facts(channel="slack", text="my invoice"))


def test_rules_are_tried_in_order_and_the_first_match_decides() -> None:
    rules = [
        RuleLike(1, 1, {"channels": ["slack"]}, {"priority": "low"}),
        RuleLike(2, 1, {"keywords": ["refund"]}, {"priority": "high"}),
        RuleLike(3, 1, {}, {"priority": "normal"}),  # catch-all
    ]
    assert first_match(rules, facts(channel="slack", text="refund")) is rules[0]
    assert first_match(rules, facts(channel="email", text="refund")) is rules[1]
    assert first_match(rules, facts(channel="email", text="hello")) is rules[2]
    assert first_match(rules[:2], facts(channel="email", text="hello")) is None


def test_business_hours_by_calendar_use_what_the_caller_read() -> None:
    inside = check_rule(rule({"business_hours": {"calendar_id": 2}})).conditions
    outside = check_rule(rule({"business_hours": {"calendar_id": 2, "inside": False}})).conditions
    assert matches(inside, facts(calendars_open={2: True}))
    assert not matches(inside, facts(calendars_open={2: False}))
    assert not matches(inside, facts())  # a calendar deleted since: never open
    assert matches(outside, facts(calendars_open={2: False}))
    with pytest.raises(InvalidInput, match=r"business_hours\.timezone"):
        check_rule(rule({"business_hours": {"calendar_id": 2, "timezone": "UTC"}}))
