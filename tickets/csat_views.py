"""How a CSAT survey looks in the ticket view and the report (no other imports, so
`tickets.service` can use it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.csat_models import CsatSurvey


def survey_view(survey: CsatSurvey) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": survey.id,
        "ticket_id": survey.ticket_id,
        "conversation_id": survey.conversation_id,
        "inbox_id": survey.inbox_id,
        "customer_id": survey.customer_id,
        "agent_id": survey.agent_user_id,
        "locale": survey.locale,
        "skipped": survey.skipped,
        "requested_at": iso(survey.requested_at),
        "expires_at": iso(survey.expires_at),
        "rating": survey.rating,
        "comment": survey.comment,
        "answered_via": survey.answered_via,
        "rated_at": iso(survey.rated_at),
        "commented_at": iso(survey.commented_at),
    }


# Left out of the ticket view: every agent who may see a ticket gets its view, over REST
# and in live ticket events, but comments are for supervisors and admins, who read them
# in the CSAT report (`GET /api/v1/csat?ticket_id=`). `commented_at` says one exists.
NOT_IN_TICKET_VIEW = frozenset({"comment"})


def ticket_survey_view(survey: CsatSurvey) -> dict[str, Any]:
    return {k: v for k, v in survey_view(survey).items() if k not in NOT_IN_TICKET_VIEW}


async def csat_views(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Each ticket's survey (if it has one), for the ticket view: without the comment."""
    if not ticket_ids:
        return {}
    rows = await session.execute(
        select(CsatSurvey).where(CsatSurvey.ticket_id.in_(list(ticket_ids)))
    )
    return {s.ticket_id: ticket_survey_view(s) for s in rows.scalars()}
