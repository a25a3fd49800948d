"""Helpers for the knowledge-base tests: staff with API tokens, an article to start from."""

from __future__ import annotations

from typing import Any

from switchboard import accounts
from switchboard.models import User
from switchboard.tx import Database
from tests.conftest import create_user

HOURS: dict[str, Any] = {
    "key": "opening_hours",
    "question": "When are you open?",
    "phrasings": ["opening hours", "what time do you open", "are you open on sunday"],
    "answer_markdown": "We are open **9:00-18:00**, Monday to Friday.",
    "locale": "en",
    "category": "store",
    "tags": ["hours"],
}


async def staff_token(db: Database, email: str, role: str) -> tuple[int, str]:
    """A user with this role and an API token for them."""
    user_id = await create_user(db, email, role=role)

    async def issue(session: Any) -> str:
        user = await session.get(User, user_id)
        return await accounts.do_create_api_token(session, user, "tests")

    return user_id, await db.run(issue)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
