"""The single chokepoint for what a caller may see. Every read goes through `access_*`.

For now every agent, supervisor and admin sees every inbox; queues and memberships
narrow this later without changing any caller.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Conversation
from switchboard.errors import NotFound
from switchboard.models import Role, User

STAFF_ROLES = {Role.AGENT, Role.SUPERVISOR, Role.ADMIN}
# Row ids are 32-bit integers: a larger number names nothing, and PostgreSQL (asyncpg)
# and SQLite refuse to even compare with it, which would surface as a 500.
MAX_ROW_ID = 2**31 - 1


def visible_inbox_ids(user: User) -> Sequence[int] | None:
    """Inbox ids the user may see, or None for all of them."""
    if user.role not in STAFF_ROLES:
        return []
    return None


def may_see_inbox(user: User, inbox_id: int) -> bool:
    visible = visible_inbox_ids(user)
    return visible is None or inbox_id in visible


async def access_conversation_by_id(
    session: AsyncSession, user: User, conversation_id: int
) -> Conversation:
    """The conversation, if the user may see it. Outsiders get the same 404 as for a
    conversation that does not exist."""
    if not 0 < conversation_id <= MAX_ROW_ID:
        raise NotFound("conversation not found")
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or not may_see_inbox(user, conversation.inbox_id):
        raise NotFound("conversation not found")
    return conversation
