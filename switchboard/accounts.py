"""Users, passwords, browser sessions and API tokens.

Tokens are random; only their SHA-256 is stored, so a database leak hands out no login.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.db import UTCDateTime, utcnow
from switchboard.errors import Conflict, InvalidInput
from switchboard.events import SessionsEnded
from switchboard.models import ApiToken, AuthSession, Role, User
from switchboard.tx import emit

SESSION_LIFETIME = timedelta(days=14)
_hasher = PasswordHasher()
# Verified against when the email is unknown, so both cases cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 10


def token_digest(token: str) -> str:
    # surrogatepass: a header with bytes that are not UTF-8 reaches us with surrogates in
    # it; such a token matches nothing, and must not crash the request with a 500.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() or c < " " for c in email):
        raise InvalidInput("not an email address", code="invalid_email")
    return email


async def do_create_user(
    session: AsyncSession, *, email: str, name: str, role: str, password: str
) -> User:
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    email = normalise_email(email)
    if (await session.execute(select(User.id).where(User.email == email))).first():
        raise Conflict(f"a user with email {email} exists already")
    user = User(
        email=email, name=name.strip() or email, role=role, password_hash=_hasher.hash(password)
    )
    session.add(user)
    await session.flush()
    return user


async def hash_password(password: str) -> str:
    """The Argon2 hash of a new password, computed off the event loop."""
    return await asyncio.to_thread(_hasher.hash, password)


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The active user with this email and password, or None (same cost either way)."""
    try:
        email = normalise_email(email)
    except InvalidInput:
        email = ""
    user = (
        await session.execute(select(User).where(User.email == email, User.active.is_(True)))
    ).scalar_one_or_none()
    try:
        # Argon2 is deliberately slow: keep it off the event loop.
        await asyncio.to_thread(
            _hasher.verify, user.password_hash if user else _DUMMY_HASH, password
        )
    except (VerificationError, InvalidHashError):
        return None
    return user


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf_token: str


async def do_start_session(session: AsyncSession, user: User) -> NewSession:
    """A fresh token at every login (no session fixation)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        AuthSession(
            token_hash=token_digest(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return NewSession(token, csrf)


# Every signed-in request runs one of these two: built once, with the values bound per
# call (building a four-condition select and its cache key cost ~150 µs of CPU each time).
_SESSION_USER = (
    select(User, AuthSession)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        AuthSession.token_hash == bindparam("token_hash"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > bindparam("now", type_=UTCDateTime),
        User.active.is_(True),
    )
)
_TOKEN_USER = (
    select(User)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        User.active.is_(True),
    )
)


async def session_user(session: AsyncSession, token: str) -> tuple[User, AuthSession] | None:
    row = (
        await session.execute(_SESSION_USER, {"token_hash": token_digest(token), "now": utcnow()})
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def do_end_session(session: AsyncSession, token: str) -> None:
    digest = token_digest(token)
    user_id = (
        await session.execute(
            update(AuthSession)
            .where(AuthSession.token_hash == digest, AuthSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(AuthSession.user_id)
        )
    ).scalar_one_or_none()
    if user_id is not None:
        emit(session, SessionsEnded(actor=f"user:{user_id}", user_id=user_id, token_hash=digest))


async def do_end_all_sessions(session: AsyncSession, user_id: int) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    emit(session, SessionsEnded(actor=f"user:{user_id}", user_id=user_id, token_hash=None))


async def do_revoke_everything(session: AsyncSession, user_id: int) -> int:
    """End every browser session and API token of the user; the number of tokens."""
    await do_end_all_sessions(session, user_id)
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def do_set_password(session: AsyncSession, user_id: int, password_hash: str) -> int:
    """A new password: every session and API token made with the old one ends."""
    await session.execute(
        update(User).where(User.id == user_id).values(password_hash=password_hash)
    )
    return await do_revoke_everything(session, user_id)


async def do_create_api_token(session: AsyncSession, user: User, name: str) -> str:
    token = "sbt_" + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=token_digest(token), user_id=user.id, name=name))
    await session.flush()
    return token


async def token_user(session: AsyncSession, token: str) -> User | None:
    found = await session.execute(_TOKEN_USER, {"token_hash": token_digest(token)})
    return found.scalar_one_or_none()


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return (
        await session.execute(select(User).where(User.email == normalise_email(email)))
    ).scalar_one_or_none()
