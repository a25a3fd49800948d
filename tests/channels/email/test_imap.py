"""IMAP polling against a real Dovecot: every message filed once, none skipped, whatever
the server renumbers, whoever else polls, and whatever fails half-way."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from channels.email.imap import ImapPolicy, ImapPoller
from channels.email.models import ImapCursor
from conversations.inbound import do_accept
from switchboard.adapters import AdapterRegistry
from switchboard.bus import InProcessBus
from switchboard.crypto import CredentialBox
from switchboard.db import create_engine, create_sessionmaker
from switchboard.settings import Settings
from switchboard.tx import Database
from switchboard.wiring import adapter_factories
from tests.channels.email.conftest_transports import email_bytes, email_inbox, eventually, filed
from tests.conftest import SECRET
from tests.dovecot import Dovecot, Mailbox, start_dovecot

FAST = ImapPolicy(interval=0.05, base_delay=0.05, max_delay=0.2, timeout=5)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    server = start_dovecot()
    yield server
    server.stop()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    return dovecot.add_mailbox()


@pytest.fixture
async def poller(db: Database) -> AsyncIterator[ImapPoller]:
    registry = AdapterRegistry(db, CredentialBox(SECRET), adapter_factories(), "http://hub.test")
    yield ImapPoller(db, CredentialBox(SECRET), registry, FAST)
    await registry.aclose()


async def cursor(db: Database) -> tuple[int, int]:
    async with db.reading() as session:
        row = (await session.execute(select(ImapCursor))).scalar_one()
        return row.uidvalidity, row.last_uid


async def test_new_messages_are_filed_once_and_only_new_ones_later(
    db: Database, mailbox: Mailbox, poller: ImapPoller
) -> None:
    inbox = await email_inbox(db, mailbox=mailbox)
    mails = [email_bytes(f"question {n}") for n in range(3)]
    for eml in mails:
        await mailbox.append(eml)

    assert await poller.run_once() == 3
    assert await poller.run_once() == 0
    fourth = email_bytes("question 3")
    assert await mailbox.append(fourth) == 4
    assert await poller.run_once() == 1

    rows = await filed(db)
    assert [row.payload for row in rows] == [*mails, fourth]
    assert all(row.inbox_id == inbox.id for row in rows)
    assert [row.headers["x-imap-uid"].split(":")[1] for row in rows] == ["1", "2", "3", "4"]
    assert await cursor(db) == (await mailbox.uidvalidity(), 4)


async def test_a_renumbered_folder_is_read_again_without_duplicates_or_gaps(
    db: Database, mailbox: Mailbox, poller: ImapPoller
) -> None:
    await mailbox.create("Support")
    await email_inbox(db, mailbox=mailbox, folder="Support")
    old = [email_bytes(f"old {n}") for n in range(2)]
    for eml in old:
        await mailbox.append(eml, "Support")
    assert await poller.run_once() == 2
    before = await mailbox.uidvalidity("Support")

    # The folder is rebuilt (a restore, a migration): same mail, new UIDs, new UIDVALIDITY.
    await mailbox.recreate("Support")
    new = email_bytes("arrived during the rebuild")
    for eml in [*old, new]:
        await mailbox.append(eml, "Support")
    after = await mailbox.uidvalidity("Support")
    assert after != before

    assert await poller.run_once() == 1
    assert [row.payload for row in await filed(db)] == [*old, new]
    assert await cursor(db) == (after, 3)


async def test_a_failure_half_way_neither_skips_nor_doubles(
    db: Database, mailbox: Mailbox, poller: ImapPoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    await email_inbox(db, mailbox=mailbox)
    mails = [email_bytes(f"message {n}") for n in range(3)]
    for eml in mails:
        await mailbox.append(eml)
    calls = 0

    async def crash_on_second(session: Any, **kw: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionResetError("database connection lost")
        return await do_accept(session, **kw)

    monkeypatch.setattr("channels.email.imap.do_accept", crash_on_second)
    await poller.run_once()
    assert [row.payload for row in await filed(db)] == mails[:1]
    assert (await cursor(db))[1] == 1  # the failed message did not move the cursor
    await eventually(lambda: poller.run_once())  # after its backoff
    assert [row.payload for row in await filed(db)] == mails


async def test_two_pollers_on_one_mailbox_file_each_message_once(
    db: Database, mailbox: Mailbox, settings: Settings
) -> None:
    await email_inbox(db, mailbox=mailbox)
    mails = [email_bytes(f"race {n}") for n in range(5)]
    for eml in mails:
        await mailbox.append(eml)
    # Two processes: their own engines and registries, one database.
    pollers: list[ImapPoller] = []
    engines = []
    for _ in range(2):
        engine = create_engine(settings.database_url)
        engines.append(engine)
        other = Database(engine, create_sessionmaker(engine), InProcessBus())
        registry = AdapterRegistry(
            other, CredentialBox(SECRET), adapter_factories(), "http://hub.test"
        )
        pollers.append(ImapPoller(other, CredentialBox(SECRET), registry, FAST))
    try:
        counts = await asyncio.gather(*(p.run_once() for p in pollers))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(counts) == 5
    assert sorted(row.payload for row in await filed(db)) == sorted(mails)


async def test_a_refused_login_is_logged_and_retried_until_it_works(
    db: Database, mailbox: Mailbox, poller: ImapPoller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="channels.email.imap")
    inbox = await email_inbox(db, mailbox=mailbox, imap_password="wrong password")
    eml = email_bytes("are you there?")
    await mailbox.append(eml)
    task = asyncio.create_task(poller.run_forever())
    try:
        await eventually(lambda: poller.failures(inbox.id) >= 2)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert "inbox default" in warnings[0] and "login refused" in warnings[0]
        assert "wrong password" not in caplog.text
        assert await filed(db) == []

        await email_inbox(db, mailbox=mailbox)  # the admin fixes the password
        await eventually(lambda: poller.failures(inbox.id) == 0)
    finally:
        poller.stop()
        await task
    assert [row.payload for row in await filed(db)] == [eml]


async def test_an_unreachable_server_does_not_hold_up_other_inboxes(
    db: Database, mailbox: Mailbox, poller: ImapPoller, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    working = await email_inbox(db, mailbox=mailbox)
    broken = await email_inbox(db, key="broken", address="help@example.test", mailbox=mailbox)
    async with db.reading() as session:
        broken_row = await session.get(type(broken), broken.id)
        assert broken_row is not None
        config = dict(broken_row.config)
    config["imap_port"] = dead_port

    async def point_at_nothing(session: Any) -> None:
        row = await session.get(type(broken), broken.id)
        row.config = config

    await db.run(point_at_nothing)
    await mailbox.append(email_bytes("hello"))

    assert await poller.run_once() == 1
    assert poller.failures(broken.id) == 1 and poller.failures(working.id) == 0
    assert any(
        "inbox broken" in r.getMessage() and "Connection" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("tls", ["ssl", "starttls"])
async def test_mail_is_read_over_tls(
    db: Database, dovecot: Dovecot, mailbox: Mailbox, poller: ImapPoller, tls: str
) -> None:
    await email_inbox(db, mailbox=mailbox, tls=tls)
    eml = email_bytes(f"sent over {tls}")
    await mailbox.append(eml)
    assert await poller.run_once() == 1
    assert [row.payload for row in await filed(db)] == [eml]

    # Dovecot logs how each login arrived: "TLS" either way, "secured" for plain ones
    # (ours, arranging the mail).
    def logged_in_over_tls() -> bool:
        return any(
            f"Login: user=<{mailbox.username}>" in line and ", TLS," in line
            for line in dovecot.log().splitlines()
        )

    await eventually(logged_in_over_tls)


@pytest.mark.parametrize("tls", ["ssl", "starttls"])
async def test_a_server_certificate_we_do_not_trust_is_refused(
    db: Database,
    mailbox: Mailbox,
    poller: ImapPoller,
    tls: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox = await email_inbox(db, mailbox=mailbox, tls=tls, trust_server=False)
    await mailbox.append(email_bytes("for the hub only"))
    assert await poller.run_once() == 0
    assert poller.failures(inbox.id) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    assert await filed(db) == []
