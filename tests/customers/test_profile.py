"""A customer's profile: tier, lifecycle stage, tags, attributes and staff notes, through
the checks and the REST API (SECURITY.md 4: 20, 22, 23, 26, 28, 32)."""

from __future__ import annotations

from typing import Any

import pytest

from customers.models import CustomerNote, CustomerTag
from customers.profile import (
    MAX_ATTRIBUTES,
    MAX_TAGS,
    check_attributes,
    check_profile_changes,
    check_tags,
    check_tier,
)
from switchboard.errors import InvalidInput
from switchboard.tx import Database
from tests.conftest import AppClient, create_user, login
from tests.customers.support import count, email_from, email_inbox, intake
from tests.security.support import bearer, staff_token

NOT_FOUND = {"error": {"code": "not_found", "message": "customer not found"}}


def test_tags_and_tiers_are_normalised_like_ticket_tags() -> None:
    assert check_tags([" VIP ", "vip", "Key-Account", "会员"]) == ("key-account", "vip", "会员")
    assert check_tier(" Gold ") == "gold"
    assert check_tier("") is None and check_tier(None) is None
    for bad in ("two words", "<b>", "a\nb", "x" * 51):
        with pytest.raises(InvalidInput):
            check_tags([bad])
        with pytest.raises(InvalidInput):
            check_tier(bad)
    with pytest.raises(InvalidInput, match="at most 50 tags"):
        check_tags([f"t{i}" for i in range(MAX_TAGS + 1)])


def test_attributes_are_a_bounded_object_of_scalars() -> None:
    assert check_attributes({"seats": 12, "plan": "pro", "beta": True, "mrr": 99.5}) == {
        "beta": True,
        "mrr": 99.5,
        "plan": "pro",
        "seats": 12,
    }
    bad: list[Any] = [
        [],
        "plan=pro",
        {"nested": {"a": 1}},
        {"list": [1]},
        {"none": None},
        {"": 1},
        {"has space": 1},
        {"k" * 65: 1},
        {"big": 2**60},
        {"nan": float("nan")},
        {"ctl": "a\x00b"},
        {"long": "x" * 501},
        {f"k{i}": i for i in range(MAX_ATTRIBUTES + 1)},
        {f"k{i}": "x" * 400 for i in range(30)},  # over the byte cap
    ]
    for value in bad:
        with pytest.raises(InvalidInput) as caught:
            check_attributes(value)
        assert caught.value.code == "invalid_attributes", value


def test_a_change_names_only_profile_fields() -> None:
    for body in ({"name": "x"}, {"tier": "vip", "merged_into_id": 2}, {"id": 1}, {}):
        with pytest.raises(InvalidInput):
            check_profile_changes(body)
    with pytest.raises(InvalidInput, match="lifecycle_stage"):
        check_profile_changes({"lifecycle_stage": "vip"})


async def _customer(db: Database) -> int:
    mailed = await intake(db, email_from(await email_inbox(db), "kim@example.com", verified=False))
    assert mailed.customer_id is not None
    return mailed.customer_id


async def test_staff_read_and_change_the_profile(client: AppClient, db: Database) -> None:
    customer_id = await _customer(db)
    path = f"/api/v1/customers/{customer_id}"
    _, token = await staff_token(db, "ann@example.com", "agent")
    headers = bearer(token)

    fresh = (await (await client.get(path, headers=headers)).json())["customer"]
    assert (fresh["tier"], fresh["lifecycle_stage"], fresh["tags"], fresh["attributes"]) == (
        None,
        None,
        [],
        {},
    )
    change = {
        "tier": "VIP",
        "lifecycle_stage": "customer",
        "tags": ["Key-Account", "billing", "billing"],
        "attributes": {"plan": "<script>alert(1)</script>", "seats": 12},
    }
    response = await client.patch(path, json=change, headers=headers)
    assert response.status == 200, await response.text()
    changed = (await response.json())["customer"]
    assert changed["tier"] == "vip" and changed["lifecycle_stage"] == "customer"
    assert changed["tags"] == ["billing", "key-account"]
    # Stored as given (text), escaped wherever a page shows it.
    assert changed["attributes"] == {"plan": "<script>alert(1)</script>", "seats": 12}
    again = (await (await client.get(path, headers=headers)).json())["customer"]
    assert {k: again[k] for k in change} == {k: changed[k] for k in change}

    # Only the fields sent change; tags and attributes are replaced as a whole.
    response = await client.patch(path, json={"tags": ["vip"], "tier": None}, headers=headers)
    after = (await response.json())["customer"]
    assert (after["tier"], after["tags"], after["lifecycle_stage"]) == (None, ["vip"], "customer")
    assert after["attributes"] == {"plan": "<script>alert(1)</script>", "seats": 12}


@pytest.mark.parametrize(
    "body",
    [
        {"tier": "two words"},
        {"lifecycle_stage": "vip"},
        {"tags": "vip"},
        {"tags": ["ok", "not ok"]},
        {"attributes": {"nested": {"a": 1}}},
        {"attributes": {"plan": "pro"}, "name": "Mallory"},
        {"tier": "vip", "merged_into_id": 1},
        {"tier": "vip", "verified_email": "boss@example.com"},
        {"tier": "a\u0000b"},
    ],
)
async def test_bad_changes_are_a_400_and_change_nothing(
    client: AppClient, db: Database, body: dict[str, Any]
) -> None:
    customer_id = await _customer(db)
    path = f"/api/v1/customers/{customer_id}"
    _, token = await staff_token(db, "ann@example.com", "agent")
    headers = bearer(token)
    await client.patch(path, json={"tier": "gold", "tags": ["billing"]}, headers=headers)
    before = (await (await client.get(path, headers=headers)).json())["customer"]

    response = await client.patch(path, json=body, headers=headers)

    assert response.status == 400, body
    assert (await response.json())["error"]["message"]
    assert (await (await client.get(path, headers=headers)).json())["customer"] == before


async def test_who_may_change_a_profile_and_add_notes(client: AppClient, db: Database) -> None:
    customer_id = await _customer(db)
    path = f"/api/v1/customers/{customer_id}"
    change = {"tier": "vip"}
    note = {"body": "called about the invoice"}

    assert (await client.patch(path, json=change)).status == 401
    assert (await client.post(f"{path}/notes", json=note)).status == 401
    assert (await client.get(f"{path}/notes")).status == 401
    for role in ("agent", "supervisor", "admin"):
        _, token = await staff_token(db, f"{role}@example.com", role)
        assert (await client.patch(path, json=change, headers=bearer(token))).status == 200
        added = await client.post(f"{path}/notes", json=note, headers=bearer(token))
        assert added.status == 201, role
    for raw in ("999999", "0", "abc", "2147483648"):
        response = await client.patch(
            f"/api/v1/customers/{raw}", json=change, headers=bearer(token)
        )
        assert (response.status, await response.json()) == (404, NOT_FOUND), raw
        response = await client.post(
            f"/api/v1/customers/{raw}/notes", json=note, headers=bearer(token)
        )
        assert (response.status, await response.json()) == (404, NOT_FOUND), raw
        response = await client.get(f"/api/v1/customers/{raw}/notes", headers=bearer(token))
        assert (response.status, await response.json()) == (404, NOT_FOUND), raw
    assert await count(db, CustomerNote) == 3


async def test_a_browser_change_needs_the_csrf_token(client: AppClient, db: Database) -> None:
    customer_id = await _customer(db)
    path = f"/api/v1/customers/{customer_id}"
    await create_user(db, "sam@example.com")
    csrf = await login(client, "sam@example.com")

    assert (await client.patch(path, json={"tags": ["vip"]})).status == 403
    assert (await client.post(f"{path}/notes", json={"body": "hi"})).status == 403
    assert await count(db, CustomerTag) == 0 and await count(db, CustomerNote) == 0
    headers = {"X-CSRF-Token": csrf}
    assert (await client.patch(path, json={"tags": ["vip"]}, headers=headers)).status == 200
    assert (await client.post(f"{path}/notes", json={"body": "hi"}, headers=headers)).status == 201


async def test_notes_keep_author_and_time_newest_first(client: AppClient, db: Database) -> None:
    customer_id = await _customer(db)
    path = f"/api/v1/customers/{customer_id}/notes"
    ann_id, ann = await staff_token(db, "ann@example.com", "agent")
    bob_id, bob = await staff_token(db, "bob@example.com", "supervisor")

    first = await client.post(path, json={"body": "  first call  "}, headers=bearer(ann))
    assert first.status == 201
    made = (await first.json())["note"]
    assert (made["author_id"], made["body"], made["customer_id"]) == (
        ann_id,
        "first call",
        customer_id,
    )
    # The author is the caller, whatever the body says.
    second = await client.post(
        path, json={"body": "second <b>call</b>", "author_id": ann_id}, headers=bearer(bob)
    )
    assert second.status == 400
    second = await client.post(path, json={"body": "second <b>call</b>"}, headers=bearer(bob))
    assert second.status == 201

    listed = (await (await client.get(path, headers=bearer(ann))).json())["notes"]
    assert [(n["author_id"], n["body"]) for n in listed] == [
        (bob_id, "second <b>call</b>"),
        (ann_id, "first call"),
    ]
    assert all(n["created_at"] for n in listed)
    for bad in ({"body": ""}, {"body": "   "}, {"body": 5}, {"body": "a\u0000b"}, {}):
        assert (await client.post(path, json=bad, headers=bearer(ann))).status == 400, bad
    assert await count(db, CustomerNote) == 2
