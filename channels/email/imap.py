"""IMAP polling: mail that lands in a mailbox we read is filed like a webhook delivery.

Per email inbox with an `imap_host`: connect (implicit TLS, STARTTLS or plain), log in,
select the folder, and fetch every UID above the cursor (`ImapCursor`) in ascending
order with `BODY.PEEK[]`, so the mailbox's read flags are left to the people using it.
Each message is filed in the same transaction that moves the cursor past it: a crash
never skips a message and never files one twice. A new UIDVALIDITY means the server
renumbered the folder, so the cursor starts over at 0; the dedupe key (the Message-ID)
makes the messages seen before harmless.

Two processes polling one inbox: moving the cursor is a compare-and-set (`last_uid <
uid`, same UIDVALIDITY) done first in the filing transaction. It locks the cursor row
(PostgreSQL) or the database (SQLite) until the commit, so the other poller's attempt
on the same UID waits, then matches no row and files nothing. The unique dedupe key
would catch a double filing anyway; the lock keeps it from even being tried.

Failures (refused connection, wrong password, timeouts) are logged with the inbox and
retried with exponential backoff; they never stop the other inboxes or the server.

Inbox config: `imap_host`, `imap_port` (993 for "ssl", else 143), `imap_tls` ("ssl" |
"starttls" | "none"), `imap_username` (default: the inbox address), `imap_folder`
(default INBOX), optional `imap_cafile` (a private CA); credentials: `imap_password`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aioimaplib import IMAP4, IMAP4_SSL, AioImapException, Command
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Delivery, RawInbound
from channels.email.ingress import EMAIL, delivery_of
from channels.email.models import ImapCursor
from conversations.inbound import do_accept
from conversations.models import Inbox
from switchboard.adapters import AdapterSource
from switchboard.crypto import CredentialBox
from switchboard.db import utcnow
from switchboard.tx import Database

log = logging.getLogger(__name__)

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCHED_UID = re.compile(rb"\bUID (\d+)\b")


class ImapError(Exception):
    """The server said no (login, select, search) or spoke in a way we cannot use."""


@dataclass(frozen=True)
class ImapPolicy:
    interval: float = 30.0  # seconds between passes
    base_delay: float = 5.0  # first retry after a failure, then doubling
    max_delay: float = 600.0
    timeout: float = 30.0  # per IMAP command


@dataclass(frozen=True)
class ImapAccount:
    """Where one inbox's mail is read from (the password decrypted)."""

    inbox_id: int
    inbox_key: str
    host: str
    port: int
    tls: str  # "ssl", "starttls" or "none"
    username: str
    password: str
    folder: str
    cafile: str | None = None  # a private CA (an internal mail server), else the system's

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def __str__(self) -> str:
        return f"inbox {self.inbox_key} ({self.username}@{self.host}:{self.port}/{self.folder})"


def account_of(
    inbox_id: int, key: str, config: Mapping[str, Any], credentials: Mapping[str, str]
) -> ImapAccount | None:
    """The IMAP account an email inbox's config names, or None if it reads no mailbox."""
    host = config.get("imap_host")
    if not host:
        return None
    tls = str(config.get("imap_tls") or "ssl")
    return ImapAccount(
        inbox_id=inbox_id,
        inbox_key=key,
        host=str(host),
        port=int(config.get("imap_port") or (993 if tls == "ssl" else 143)),
        tls=tls,
        username=str(config.get("imap_username") or config.get("address") or ""),
        password=credentials.get("imap_password", ""),
        folder=str(config.get("imap_folder") or "INBOX"),
        cafile=str(config.get("imap_cafile") or "") or None,
    )


async def imap_accounts(db: Database, box: CredentialBox) -> list[ImapAccount]:
    async with db.reading() as session:
        rows = (
            await session.execute(
                select(Inbox.id, Inbox.key, Inbox.config, Inbox.credentials).where(
                    Inbox.kind == EMAIL
                )
            )
        ).all()
    accounts = []
    for inbox_id, key, config, sealed in rows:
        if not (config or {}).get("imap_host"):
            continue
        try:
            credentials = box.open(sealed)
        except Exception:
            log.exception("IMAP: credentials of email inbox %s cannot be read", key)
            continue
        account = account_of(inbox_id, key, config or {}, credentials)
        if account is not None:
            accounts.append(account)
    return accounts


async def has_imap_inboxes(db: Database) -> bool:
    async with db.reading() as session:
        configs = (await session.execute(select(Inbox.config).where(Inbox.kind == EMAIL))).scalars()
        return any((config or {}).get("imap_host") for config in configs)


def _text(response: Any) -> str:
    return " ".join(
        bytes(line).decode("utf-8", "replace") for line in response.lines if line
    ).strip()


def _check(response: Any, what: str) -> None:
    if response.result != "OK":
        raise ImapError(f"{what} refused: {response.result} {_text(response)}"[:300])


async def _starttls(client: IMAP4, account: ImapAccount, seconds: float) -> None:
    # aioimaplib knows the command but not the upgrade: the transport is wrapped here.
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError("the server does not offer STARTTLS")
    response = await asyncio.wait_for(
        protocol.execute(Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)), seconds
    )
    _check(response, "STARTTLS")
    loop = asyncio.get_running_loop()
    transport = await asyncio.wait_for(
        loop.start_tls(
            protocol.transport, protocol, account.tls_context(), server_hostname=account.host
        ),
        seconds,
    )
    protocol.transport = transport
    # RFC 3501 6.2.1: capabilities learnt before TLS must not be trusted.
    await asyncio.wait_for(protocol.capability(), seconds)


@contextlib.asynccontextmanager
async def imap_session(account: ImapAccount, seconds: float) -> AsyncIterator[IMAP4]:
    """A logged-in session; closed on the way out whatever happened."""
    if account.tls == "ssl":
        client: IMAP4 = IMAP4_SSL(
            account.host, account.port, timeout=seconds, ssl_context=account.tls_context()
        )
    else:
        client = IMAP4(account.host, account.port, timeout=seconds)
    try:
        await client.wait_hello_from_server()
        if account.tls == "starttls":
            await _starttls(client, account, seconds)
        _check(await client.login(account.username, account.password), "login")
        yield client
        with contextlib.suppress(Exception):
            await client.logout()
    finally:
        transport = client.protocol.transport
        if transport is not None:
            transport.close()


def _uidvalidity(response: Any) -> int:
    for line in response.lines:
        found = _UIDVALIDITY.search(bytes(line))
        if found:
            return int(found.group(1))
    raise ImapError("SELECT did not say the folder's UIDVALIDITY")


def _untagged(response: Any) -> list[Any]:
    # aioimaplib puts the tagged completion text ("Search completed (0.001 secs).") last.
    return list(response.lines[:-1])


def _uids_after(response: Any, last_uid: int) -> list[int]:
    uids: set[int] = set()
    for line in _untagged(response):
        words = bytes(line).split()
        if words[:1] == [b"SEARCH"]:
            words = words[1:]
        if all(word.isdigit() for word in words):
            uids.update(int(word) for word in words)
    # `UID n:*` always matches the newest message, even when n is beyond it.
    return sorted(uid for uid in uids if uid > last_uid)


def _fetched_body(response: Any, uid: int) -> bytes | None:
    """The message of one `UID FETCH`, or None when the server no longer has it."""
    said_uid = None
    body = None
    for line in _untagged(response):
        if isinstance(line, bytearray):
            if body is None:
                body = bytes(line)
            continue
        found = _FETCHED_UID.search(line)
        if found:
            said_uid = int(found.group(1))
    if body is None or said_uid not in (None, uid):
        return None
    return body


async def _cursor_at(
    db: Database, inbox_id: int, folder: str, uidvalidity: int, account: ImapAccount
) -> int:
    """The last UID filed under this UIDVALIDITY; a changed one starts the folder over."""

    async def work(session: AsyncSession) -> int:
        dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        await session.execute(
            dialect.insert(ImapCursor)
            .values(
                inbox_id=inbox_id,
                folder=folder,
                uidvalidity=uidvalidity,
                last_uid=0,
                updated_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["inbox_id", "folder"])
        )
        cursor = (
            await session.execute(
                select(ImapCursor.uidvalidity, ImapCursor.last_uid).where(
                    ImapCursor.inbox_id == inbox_id, ImapCursor.folder == folder
                )
            )
        ).one()
        if cursor.uidvalidity == uidvalidity:
            return int(cursor.last_uid)
        log.warning(
            "IMAP %s: UIDVALIDITY changed from %s to %s; reading the folder again",
            account,
            cursor.uidvalidity,
            uidvalidity,
        )
        await session.execute(
            update(ImapCursor)
            .where(
                ImapCursor.inbox_id == inbox_id,
                ImapCursor.folder == folder,
                ImapCursor.uidvalidity == cursor.uidvalidity,
            )
            .values(uidvalidity=uidvalidity, last_uid=0, updated_at=utcnow())
        )
        return 0

    return await db.run(work)


async def _file_at_uid(
    session: AsyncSession,
    account: ImapAccount,
    uidvalidity: int,
    uid: int,
    delivery: Delivery | None,
    raw: RawInbound | None,
) -> bool | None:
    """Move the cursor to `uid` and file the message with it: None when another poller
    moved it first, else whether the message was new."""
    moved = await session.execute(
        update(ImapCursor)
        .where(
            ImapCursor.inbox_id == account.inbox_id,
            ImapCursor.folder == account.folder,
            ImapCursor.uidvalidity == uidvalidity,
            ImapCursor.last_uid < uid,
        )
        .values(last_uid=uid, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        return None
    if delivery is None or raw is None:
        return False  # gone from the server between SEARCH and FETCH
    return await do_accept(
        session, inbox_id=account.inbox_id, channel=EMAIL, delivery=delivery, raw=raw
    )


def _filing(
    account: ImapAccount,
    uidvalidity: int,
    uid: int,
    delivery: Delivery | None,
    raw: RawInbound | None,
) -> Callable[[AsyncSession], Awaitable[bool | None]]:
    return lambda session: _file_at_uid(session, account, uidvalidity, uid, delivery, raw)


async def poll_account(
    db: Database, adapters: AdapterSource, account: ImapAccount, policy: ImapPolicy
) -> int:
    """One pass over one mailbox; return how many new messages were filed."""
    filed = 0
    async with imap_session(account, policy.timeout) as client:
        selected = await client.select(account.folder)
        _check(selected, f"SELECT {account.folder}")
        uidvalidity = _uidvalidity(selected)
        last_uid = await _cursor_at(db, account.inbox_id, account.folder, uidvalidity, account)
        found = await client.uid_search(f"UID {last_uid + 1}:*", charset=None)
        _check(found, "UID SEARCH")
        # One message at a time, each committed with the cursor: a long first import
        # holds little memory, and stopping half-way loses nothing.
        for uid in _uids_after(found, last_uid):
            fetched = await client.uid("fetch", str(uid), "(UID BODY.PEEK[])")
            _check(fetched, f"UID FETCH {uid}")
            body = _fetched_body(fetched, uid)
            raw = delivery = None
            if body is not None:
                raw = RawInbound(
                    headers={
                        "x-received-via": "imap",
                        "x-imap-folder": account.folder,
                        "x-imap-uid": f"{uidvalidity}:{uid}",
                    },
                    query={},
                    body=body,
                )
                delivery = await delivery_of(adapters, account.inbox_id, raw)
            new = await db.run(_filing(account, uidvalidity, uid, delivery, raw))
            if new:
                filed += 1
                log.info("IMAP %s: filed UID %s as %s", account, uid, delivery)
    return filed


class ImapPoller:
    """Polls every email inbox that has an IMAP host, each on its own backoff."""

    def __init__(
        self,
        db: Database,
        box: CredentialBox,
        adapters: AdapterSource,
        policy: ImapPolicy | None = None,
    ) -> None:
        self.db = db
        self.box = box
        self.adapters = adapters
        self.policy = policy or ImapPolicy()
        self._failures: dict[int, int] = {}
        self._retry_at: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    async def run_once(self) -> int:
        """Poll every inbox that is due; return how many new messages were filed."""
        accounts = await imap_accounts(self.db, self.box)
        now = time.monotonic()
        due = [a for a in accounts if self._retry_at.get(a.inbox_id, 0.0) <= now]
        counts = await asyncio.gather(*(self._poll(account) for account in due))
        return sum(counts)

    async def _poll(self, account: ImapAccount) -> int:
        try:
            filed = await poll_account(self.db, self.adapters, account, self.policy)
        except (ImapError, AioImapException, OSError, TimeoutError, ssl.SSLError) as exc:
            delay = self._back_off(account)
            log.warning(
                "IMAP %s failed: %s: %s; retrying in %.1f s",
                account,
                type(exc).__name__,
                exc,
                delay,
            )
            return 0
        except Exception:
            delay = self._back_off(account)
            log.exception("IMAP %s failed; retrying in %.1f s", account, delay)
            return 0
        if self._failures.pop(account.inbox_id, None) is not None:
            log.info("IMAP %s works again", account)
        self._retry_at.pop(account.inbox_id, None)
        return filed

    def _back_off(self, account: ImapAccount) -> float:
        failures = self._failures.get(account.inbox_id, 0) + 1
        self._failures[account.inbox_id] = failures
        ceiling = min(self.policy.max_delay, self.policy.base_delay * 2 ** (failures - 1))
        delay = random.uniform(ceiling / 2, ceiling)
        self._retry_at[account.inbox_id] = time.monotonic() + delay
        return delay

    def failures(self, inbox_id: int) -> int:
        """Failed passes in a row for this inbox (0 once one succeeds)."""
        return self._failures.get(inbox_id, 0)

    def wake(self) -> None:
        """Poll now instead of at the end of the interval (new mail was announced)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run_forever(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("IMAP pass failed; retrying")
            pause = self._next_pause()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    def _next_pause(self) -> float:
        pause = self.policy.interval
        if self._retry_at:
            soonest = min(self._retry_at.values()) - time.monotonic()
            pause = min(pause, max(0.0, soonest))
        return pause
