"""Identified web-chat visitors: the site signs who its logged-in user is.

Each web-chat inbox has an identity secret (inbox credentials, key `identity_secret`,
made on first use; `switchboard inbox show-identity-secret` prints it for an admin). The
site's server computes, with that secret as the HMAC-SHA256 key (its UTF-8 bytes):

    identifier_hash = hex(HMAC(secret, user_id))
    email_hash      = hex(HMAC(secret, user_id + "\\n" + email))   # only with an email

and passes user_id, identifier_hash and optionally email, email_hash and name to
`POST /widget/session`. The email is signed too, bound to the user: with only
identifier_hash signed, any logged-in user of the site could claim someone else's address
next to their own valid hash and be linked to that person's customer record.

Every claim must check out, or none counts: a missing, short, altered or foreign hash,
an email without its hash, an unusable user id all give an anonymous visitor, with no
hint of which part failed (SECURITY item 37). Hashes are compared at full length in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.webchat.tokens import USER_ID_PATTERN
from conversations.models import ChannelKind, Inbox
from customers.keys import normalise_email
from switchboard.crypto import CredentialBox, CredentialsUnreadable
from switchboard.db import utcnow
from switchboard.errors import NotFound

log = logging.getLogger(__name__)

IDENTITY_SECRET = "identity_secret"  # noqa: S105  # a credentials key, not a secret
USER_ID = re.compile(rf"^{USER_ID_PATTERN}$")
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_NAME = 200


@dataclass(frozen=True)
class VisitorClaims:
    """What a site vouched for about its logged-in user, every part checked."""

    user_id: str
    email: str | None  # normalised
    name: str | None


def _sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def identifier_hash(secret: str, user_id: str) -> str:
    return _sign(secret, user_id)


def email_hash(secret: str, user_id: str, email: str) -> str:
    return _sign(secret, f"{user_id}\n{email}")


def _hash_matches(supplied: object, expected: str) -> bool:
    if not isinstance(supplied, str) or not _HEX_DIGEST.fullmatch(supplied):
        return False
    return hmac.compare_digest(supplied.lower().encode(), expected.encode())


def check_visitor_claims(secret: str | None, data: Mapping[str, object]) -> VisitorClaims | None:
    """The verified claims in a session request, or None: an anonymous visitor."""
    user_id = data.get("user_id")
    if user_id is None and data.get("email") is None:
        return None
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)  # {"user_id": 42} is signed as "42"
    if not secret or not isinstance(user_id, str) or not USER_ID.fullmatch(user_id):
        return None
    valid = _hash_matches(data.get("identifier_hash"), identifier_hash(secret, user_id))
    email = data.get("email")
    address = None
    if email is not None:
        address = normalise_email(email)
        valid = (
            valid
            and address is not None
            and isinstance(email, str)
            and _hash_matches(data.get("email_hash"), email_hash(secret, user_id, email))
        )
    if not valid:
        return None
    name = data.get("name")
    return VisitorClaims(user_id=user_id, email=address, name=_clean_name(name))


def _clean_name(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    # No control characters, lone surrogates (PostgreSQL refuses them) or unassigned ones.
    kept = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cs", "Co", "Cn"))
    return " ".join(kept.split())[:MAX_NAME] or None


def identity_secret(inbox: Inbox, box: CredentialBox) -> str | None:
    """The inbox's identity secret, or None if there is none (or it cannot be read)."""
    try:
        return box.open(inbox.credentials).get(IDENTITY_SECRET) or None
    except CredentialsUnreadable:
        log.warning("web-chat inbox %s: credentials unreadable; visitors stay anonymous", inbox.key)
        return None


async def do_ensure_identity_secret(
    session: AsyncSession, inbox_key: str, box: CredentialBox
) -> str:
    """The identity secret of the web-chat inbox with this key, made on first use."""
    inbox = (
        await session.execute(
            select(Inbox)
            .where(Inbox.kind == ChannelKind.WEBCHAT, Inbox.key == inbox_key)
            # Two admins asking at once must not each be shown a different new secret.
            .with_for_update()
        )
    ).scalar_one_or_none()
    if inbox is None:
        raise NotFound(f"no web-chat inbox with key {inbox_key!r}")
    credentials = box.open(inbox.credentials)
    if not credentials.get(IDENTITY_SECRET):
        credentials[IDENTITY_SECRET] = secrets.token_hex(32)
        inbox.credentials = box.seal(credentials)
        inbox.updated_at = utcnow()
        await session.flush()
    return credentials[IDENTITY_SECRET]
