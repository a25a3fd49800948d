"""One customer, many identities: which senders land on the same record by themselves.

Only verified joins verified. A verified address seen on email and in the web chat is
one customer; the same address unverified on one side stays a separate record with a
merge suggestion; From: alone is never identity.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from customers.models import Customer, Identity
from customers.service import do_resolve_sender
from customers.suggestions import SAME_EMAIL, merge_suggestions
from switchboard.tx import Database
from tests.conftest import AppClient, Backend
from tests.customers.support import (
    count,
    customers,
    email_from,
    email_inbox,
    identities,
    identity,
    identity_secret,
    intake,
    signed_claims,
    start_session,
    wait_until_blocked_on_a_lock,
    webchat_inbox,
)


async def test_verified_email_on_email_and_web_chat_is_one_customer(
    client: AppClient, db: Database
) -> None:
    inbox_id = await email_inbox(db)
    mailed = await intake(db, email_from(inbox_id, "Ann@Example.com", verified=True))
    secret = await identity_secret(db)
    web = await webchat_inbox(db)

    session = await start_session(
        client, web.public_key, signed_claims(secret, "shop-1001", "ann@example.com", "Ann Lee")
    )

    assert session["visitor_id"] == "user:shop-1001"
    assert await count(db, Customer) == 1
    chat = await identity(db, "user:shop-1001")
    assert chat is not None and chat.customer_id == mailed.customer_id and chat.verified
    mail = await identity(db, "ann@example.com")
    assert mail is not None and mail.verified
    (customer,) = await customers(db)
    assert customer.verified_email == "ann@example.com"


async def test_web_chat_first_then_verified_mail_joins_the_same_customer(
    client: AppClient, db: Database
) -> None:
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    await start_session(client, web.public_key, signed_claims(secret, "77", "bo@example.com"))
    inbox_id = await email_inbox(db)

    mailed = await intake(db, email_from(inbox_id, "bo@example.com", verified=True))

    chat = await identity(db, "user:77")
    assert chat is not None and chat.customer_id == mailed.customer_id
    assert await count(db, Customer) == 1


async def test_unverified_mail_with_the_same_address_stays_apart_and_is_suggested(
    client: AppClient, db: Database
) -> None:
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    await start_session(client, web.public_key, signed_claims(secret, "u-5", "cy@example.com"))
    inbox_id = await email_inbox(db)

    # From: cy@example.com, but nothing vouched for it: anyone can write that header.
    mailed = await intake(db, email_from(inbox_id, "cy@example.com", verified=False))

    chat = await identity(db, "user:u-5")
    assert chat is not None and chat.customer_id != mailed.customer_id
    mail = await identity(db, "cy@example.com")
    assert mail is not None and not mail.verified
    async with db.reading() as session:
        stranger = await session.get(Customer, mailed.customer_id)
        assert stranger is not None and stranger.email == "cy@example.com"
        assert stranger.verified_email is None
        suggested = await merge_suggestions(session, stranger)
    assert [(s.customer.id, s.reasons) for s in suggested] == [(chat.customer_id, (SAME_EMAIL,))]


async def test_the_same_unverified_address_in_two_inboxes_is_two_customers_suggested(
    db: Database,
) -> None:
    first, second = await email_inbox(db, "sales"), await email_inbox(db, "support")
    a = await intake(db, email_from(first, "dee@example.com", verified=False))
    b = await intake(db, email_from(second, "dee@example.com", verified=False))

    assert a.customer_id != b.customer_id
    async with db.reading() as session:
        customer = await session.get(Customer, a.customer_id)
        assert customer is not None
        suggested = await merge_suggestions(session, customer)
    assert [(s.customer.id, s.reasons) for s in suggested] == [(b.customer_id, (SAME_EMAIL,))]


async def test_an_email_channel_vouches_only_for_the_senders_own_address(db: Database) -> None:
    inbox_id = await email_inbox(db)
    secret_holder = await intake(db, email_from(inbox_id, "eve@example.com", verified=True))
    message = email_from(inbox_id, "mallory@example.com", verified=False)
    forged = dataclasses.replace(message, verified_email="eve@example.com")

    result = await intake(db, forged)

    assert result.customer_id != secret_holder.customer_id
    mallory = await identity(db, "mallory@example.com")
    assert mallory is not None and not mallory.verified


async def test_a_known_unverified_sender_becomes_verified_when_the_address_is_free(
    db: Database,
) -> None:
    inbox_id = await email_inbox(db)
    first = await intake(db, email_from(inbox_id, "fay@example.com", verified=False, n=1))
    second = await intake(db, email_from(inbox_id, "fay@example.com", verified=True, n=2))

    assert first.customer_id == second.customer_id
    mail = await identity(db, "fay@example.com")
    assert mail is not None and mail.verified
    (customer,) = await customers(db)
    assert customer.verified_email == "fay@example.com"


async def test_a_known_sender_is_never_moved_to_the_verified_holder_by_itself(
    client: AppClient, db: Database
) -> None:
    inbox_id = await email_inbox(db)
    early = await intake(db, email_from(inbox_id, "gus@example.com", verified=False, n=1))
    secret = await identity_secret(db)
    web = await webchat_inbox(db)
    await start_session(client, web.public_key, signed_claims(secret, "gus", "gus@example.com"))

    later = await intake(db, email_from(inbox_id, "gus@example.com", verified=True, n=2))

    # The mail identity keeps its record (and conversation); an agent merges if it is him.
    assert later.customer_id == early.customer_id
    mail = await identity(db, "gus@example.com")
    assert mail is not None and not mail.verified
    assert await count(db, Customer) == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_first_messages_at_once_with_one_verified_address_make_one_customer(
    db: Database, backend: Backend
) -> None:
    web = await webchat_inbox(db)
    mail_inboxes = [await email_inbox(db, f"box{n}") for n in range(3)]

    async def chat(user: str) -> int:
        resolved = await db.run(
            lambda s: do_resolve_sender(
                s,
                inbox_id=web.id,
                channel="webchat",
                external_id=f"user:{user}",
                display_name="Hal",
                verified_email="hal@example.com",
                verified=True,
            )
        )
        return resolved.customer_id

    async def mail(inbox_id: int) -> int:
        result = await intake(db, email_from(inbox_id, "hal@example.com", verified=True))
        assert result.customer_id is not None
        return result.customer_id

    owners = await asyncio.gather(
        *(mail(i) for i in mail_inboxes), chat("hal-1"), chat("hal-2"), chat("hal-3")
    )

    assert len(set(owners)) == 1
    assert await count(db, Customer) == 1
    assert await count(db, Identity) == 6
    assert all(i.verified for i in await identities(db))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_second_first_message_waiting_on_the_first_links_to_its_record(
    db: Database, backend: Backend
) -> None:
    """The race made certain: the second starts while the first has created the record
    holding the address but not committed it (PostgreSQL: the second waits on the unique
    index, then finds the committed record)."""
    web = await webchat_inbox(db)
    inbox_id = await email_inbox(db)
    async with db.sessionmaker() as first, first.begin():
        mine = await do_resolve_sender(
            first,
            inbox_id=inbox_id,
            channel="email",
            external_id="ida@example.com",
            display_name=None,
            verified_email="ida@example.com",
        )
        second = asyncio.create_task(
            db.run(
                lambda s: do_resolve_sender(
                    s,
                    inbox_id=web.id,
                    channel="webchat",
                    external_id="user:ida",
                    display_name=None,
                    verified_email="IDA@example.com",
                    verified=True,
                )
            )
        )
        await wait_until_blocked_on_a_lock(db, backend)
    theirs = await second

    assert theirs.customer_id == mine.customer_id and theirs.created is False
    assert await count(db, Customer) == 1
