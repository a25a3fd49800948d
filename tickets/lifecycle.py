"""Which status changes a ticket allows, and who may make them: one table of data.

A cause says what drives the change: an agent (API or inbox), the customer replying,
a merge closing the merged ticket, or the system (later: auto-close, SLA actions).
Anything not in the table is refused with a 409 that names both statuses.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from switchboard.errors import Conflict, InvalidInput
from tickets.models import TicketStatus


class Cause(enum.StrEnum):
    AGENT = "agent"
    CUSTOMER = "customer"
    MERGE = "merge"
    SYSTEM = "system"


_S = TicketStatus
_AGENT = frozenset({Cause.AGENT})
_MERGE = frozenset({Cause.MERGE})

TRANSITIONS: Mapping[tuple[TicketStatus, TicketStatus], frozenset[Cause]] = {
    (_S.NEW, _S.OPEN): frozenset({Cause.AGENT, Cause.SYSTEM}),
    (_S.NEW, _S.PENDING): _AGENT,
    (_S.NEW, _S.ON_HOLD): _AGENT,
    (_S.NEW, _S.SOLVED): _AGENT,
    (_S.NEW, _S.CLOSED): _MERGE,
    (_S.OPEN, _S.PENDING): _AGENT,
    (_S.OPEN, _S.ON_HOLD): _AGENT,
    (_S.OPEN, _S.SOLVED): _AGENT,
    (_S.OPEN, _S.CLOSED): _MERGE,
    # The customer answered what we were waiting for.
    (_S.PENDING, _S.OPEN): frozenset({Cause.AGENT, Cause.CUSTOMER}),
    (_S.PENDING, _S.ON_HOLD): _AGENT,
    (_S.PENDING, _S.SOLVED): _AGENT,
    (_S.PENDING, _S.CLOSED): _MERGE,
    # A customer reply does not end a wait on a third party; an agent decides.
    (_S.ON_HOLD, _S.OPEN): _AGENT,
    (_S.ON_HOLD, _S.PENDING): _AGENT,
    (_S.ON_HOLD, _S.SOLVED): _AGENT,
    (_S.ON_HOLD, _S.CLOSED): _MERGE,
    # Reopened by a customer reply within the reopen window, or by an agent.
    (_S.SOLVED, _S.OPEN): frozenset({Cause.AGENT, Cause.CUSTOMER}),
    (_S.SOLVED, _S.CLOSED): frozenset({Cause.AGENT, Cause.SYSTEM, Cause.MERGE}),
    # Closed is final: a later message starts a new ticket.
}


def parse_status(raw: object) -> TicketStatus:
    if not isinstance(raw, str) or raw not in TicketStatus.__members__.values():
        allowed = ", ".join(s.value for s in TicketStatus)
        raise InvalidInput(f"status must be one of {allowed}", code="invalid_status")
    return TicketStatus(raw)


def allowed_next(current: TicketStatus, cause: Cause = Cause.AGENT) -> list[TicketStatus]:
    """The statuses `cause` may move a ticket in `current` to, in lifecycle order."""
    return [to for to in TicketStatus if cause in TRANSITIONS.get((current, to), frozenset())]


def check_transition(current: str, to: TicketStatus, cause: Cause) -> None:
    """Raise `Conflict` (409) naming both statuses unless `cause` may make this change."""
    frm = TicketStatus(current)
    if cause in TRANSITIONS.get((frm, to), frozenset()):
        return
    raise Conflict(
        f"a ticket cannot go from {frm.value} to {to.value}"
        + ("" if cause == Cause.AGENT else f" ({cause.value})"),
        code="transition_forbidden",
    )
