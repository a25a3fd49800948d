"""Helpers for the inbound email transport tests (SMTP ingress, IMAP polling).

Not a conftest: the test modules import what they use from here.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from conversations.models import InboundEvent, Inbox
from switchboard.crypto import CredentialBox
from switchboard.inboxes import do_ensure_inbox
from switchboard.tx import Database
from tests.channels.email.support import customer_mail
from tests.conftest import SECRET
from tests.dovecot import Mailbox

SUPPORT = "support@example.test"
CUSTOMER = "ann@customer.test"


def email_bytes(
    subject: str,
    body: str = "Hello, my printer is on fire.",
    *,
    sender: str = f"Ann Example <{CUSTOMER}>",
    to: str = SUPPORT,
    message_id: str | None = None,
    extra: dict[str, str] | None = None,
) -> bytes:
    """`customer_mail` with these tests' addresses, with CRLF line ends as on the wire."""
    raw = customer_mail(
        body, sender=sender, to=to, subject=subject, message_id=message_id, headers=extra
    )
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def email_inbox(
    db: Database,
    *,
    key: str = "default",
    address: str = SUPPORT,
    mailbox: Mailbox | None = None,
    imap_password: str | None = None,
    folder: str = "INBOX",
    ingress: bool = True,
    tls: str = "none",
    trust_server: bool = True,
) -> Inbox:
    """An email inbox row; with `mailbox`, it reads that Dovecot mailbox over IMAP
    (`tls` "none", "starttls" or "ssl"; `trust_server`: with Dovecot's CA file)."""
    config: dict[str, Any] = {"address": address, "ingress": ingress}
    credentials = {"smtp_password": "", "imap_password": ""}
    if mailbox is not None:
        config.update(
            imap_host=mailbox.host,
            imap_port=mailbox.imaps_port if tls == "ssl" else mailbox.port,
            imap_username=mailbox.username,
            imap_tls=tls,
            imap_folder=folder,
        )
        if trust_server:
            config["imap_cafile"] = mailbox.cafile
        credentials["imap_password"] = mailbox.password if imap_password is None else imap_password
    return await db.run(
        lambda s: do_ensure_inbox(
            s,
            key=key,
            kind="email",
            name=f"Email {key}",
            config=config,
            credentials=credentials,
            box=CredentialBox(SECRET),
        )
    )


async def filed(db: Database) -> list[InboundEvent]:
    """Every filed email delivery, oldest first."""
    async with db.reading() as session:
        rows = await session.execute(
            select(InboundEvent).where(InboundEvent.channel == "email").order_by(InboundEvent.id)
        )
        return list(rows.scalars())


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll `check` until it returns (or resolves to) something truthy; fail after
    `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.02)
