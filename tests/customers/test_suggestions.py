"""Same phone, same name, same unverified email: suggested, never merged by themselves."""

from __future__ import annotations

from typing import Any

from customers.keys import name_key, normalise_email, phone_key
from customers.merge import do_merge
from customers.models import Customer
from customers.suggestions import SAME_EMAIL, SAME_NAME, SAME_PHONE, merge_suggestions
from switchboard.tx import Database


async def add(db: Database, **fields: Any) -> int:
    async def make(session: Any) -> int:
        customer = Customer(**fields)
        session.add(customer)
        await session.flush()
        return customer.id

    return await db.run(make)


async def suggested(db: Database, customer_id: int) -> list[tuple[int, tuple[str, ...]]]:
    async with db.reading() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        return [(s.customer.id, s.reasons) for s in await merge_suggestions(session, customer)]


async def test_same_phone_and_same_name_are_suggested_with_their_reasons(db: Database) -> None:
    ann = await add(db, name="Ann  Lee", phone="+44 20 7946 0958")
    same_phone = await add(db, name="A. Lee", phone="0044 (20) 7946-0958")
    same_name = await add(db, name="ann lee")
    both = await add(db, name="ANN LEE", phone="+44-20-7946-0958")
    await add(db, name="Bob Stone", phone="+44 20 7946 0000")

    assert await suggested(db, ann) == [
        (both, (SAME_PHONE, SAME_NAME)),
        (same_phone, (SAME_PHONE,)),
        (same_name, (SAME_NAME,)),
    ]
    # Nothing was merged: every record is still live.
    async with db.reading() as session:
        for customer_id in (ann, same_phone, same_name, both):
            found = await session.get(Customer, customer_id)
            assert found is not None and found.merged_into_id is None


async def test_trivial_names_and_short_numbers_suggest_nothing(db: Database) -> None:
    guest = await add(db, name="Guest", phone="1234")
    await add(db, name="guest", phone="1234")
    short = await add(db, name="Al")
    await add(db, name="al")
    assert await suggested(db, guest) == []
    assert await suggested(db, short) == []


async def test_records_merged_away_are_not_suggested(db: Database) -> None:
    cleo = await add(db, name="Cleo Moss")
    twin = await add(db, name="Cleo Moss")
    other = await add(db, name="cleo moss")
    await db.run(lambda s: do_merge(s, survivor_id=other, merged_id=twin, actor_user_id=None))
    assert await suggested(db, cleo) == [(other, (SAME_NAME,))]
    assert await suggested(db, twin) == []


async def test_same_email_in_any_case_is_suggested(db: Database) -> None:
    dan = await add(db, email="dan@example.com")
    shouty = await add(db, email="dan@example.com", name="Dan")
    assert await suggested(db, dan) == [(shouty, (SAME_EMAIL,))]


def test_keys() -> None:
    assert name_key("  Zoë\tMüller ") == name_key("zoë müller") == "zoë müller"
    assert name_key("ＡＮＮ ＬＥＥ") == "ann lee"  # full-width letters
    assert name_key("Visitor") is None and name_key("") is None and name_key("--") is None
    assert phone_key("+1 (555) 010-9999") == phone_key("001 555 010 9999") == "15550109999"
    assert phone_key("٠١٢٣٤٥٦٧٨٩") == "0123456789"  # Arabic-Indic digits
    assert phone_key("12345") is None and phone_key("call me") is None
    assert normalise_email(" Ann@Example.COM ") == "ann@example.com"
    for bad in ("ann", "ann@", "@x.io", "a@b@c.io", "a b@c.io", "ann@localhost", 42, None):
        assert normalise_email(bad) is None, bad
