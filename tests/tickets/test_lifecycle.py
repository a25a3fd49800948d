"""Every status change, allowed and forbidden, as the lifecycle table says and as stored."""

from __future__ import annotations

import itertools

import pytest

from switchboard.errors import Conflict
from switchboard.tx import Database
from tests.conftest import create_user
from tests.tickets.support import activities, customer_writes, get_ticket, open_ticket, set_status
from tickets.lifecycle import TRANSITIONS, Cause, allowed_next, check_transition
from tickets.models import TicketStatus

S = TicketStatus
AGENT_MAY = {
    S.NEW: {S.OPEN, S.PENDING, S.ON_HOLD, S.SOLVED},
    S.OPEN: {S.PENDING, S.ON_HOLD, S.SOLVED},
    S.PENDING: {S.OPEN, S.ON_HOLD, S.SOLVED},
    S.ON_HOLD: {S.OPEN, S.PENDING, S.SOLVED},
    S.SOLVED: {S.OPEN, S.CLOSED},
    S.CLOSED: set(),
}
# A path from new to each status, through agent changes only.
PATH = {
    S.NEW: [],
    S.OPEN: [S.OPEN],
    S.PENDING: [S.PENDING],
    S.ON_HOLD: [S.ON_HOLD],
    S.SOLVED: [S.SOLVED],
    S.CLOSED: [S.SOLVED, S.CLOSED],
}


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(S, S)))
def test_agent_transitions_follow_the_table(frm: TicketStatus, to: TicketStatus) -> None:
    if frm == to:
        return
    if to in AGENT_MAY[frm]:
        check_transition(frm, to, Cause.AGENT)
    else:
        with pytest.raises(Conflict) as refused:
            check_transition(frm, to, Cause.AGENT)
        assert refused.value.status == 409
        assert refused.value.message == f"a ticket cannot go from {frm.value} to {to.value}"


def test_the_customer_only_reopens_or_answers_a_wait() -> None:
    customer = {(f, t) for (f, t), causes in TRANSITIONS.items() if Cause.CUSTOMER in causes}
    assert customer == {(S.PENDING, S.OPEN), (S.SOLVED, S.OPEN)}
    with pytest.raises(Conflict, match=r"from on_hold to open \(customer\)"):
        check_transition(S.ON_HOLD, S.OPEN, Cause.CUSTOMER)


def test_a_merge_closes_from_any_status_but_closed() -> None:
    merge = {f for (f, t), causes in TRANSITIONS.items() if Cause.MERGE in causes}
    assert merge == set(S) - {S.CLOSED}
    assert all(t == S.CLOSED for (f, t), c in TRANSITIONS.items() if Cause.MERGE in c)


def test_closed_is_final_for_every_cause() -> None:
    for cause in Cause:
        assert allowed_next(S.CLOSED, cause) == []


async def test_every_agent_transition_on_a_stored_ticket(db: Database) -> None:
    agent_id = await create_user(db, "lifecycle@example.com")
    for n, (frm, to) in enumerate(itertools.product(S, S)):
        if frm == to:
            continue
        conversation_id, _ = await customer_writes(db, f"v_lc_{n}")
        ticket = await open_ticket(db, conversation_id)
        for step in PATH[frm]:
            await set_status(db, ticket.id, step)
        before = len(await activities(db, ticket.id))
        if to in AGENT_MAY[frm]:
            await set_status(db, ticket.id, to, actor=f"agent:{agent_id}")
            assert (await get_ticket(db, ticket.id)).status == to
            entry = (await activities(db, ticket.id))[-1]
            assert (entry["kind"], entry["actor"], entry["data"]) == (
                "status",
                f"agent:{agent_id}",
                {"from": frm.value, "to": to.value},
            )
        else:
            with pytest.raises(Conflict) as refused:
                await set_status(db, ticket.id, to)
            if frm == S.CLOSED:
                assert refused.value.message == f"ticket {ticket.id} is closed"
            else:
                assert f"from {frm.value} to {to.value}" in refused.value.message
            assert (await get_ticket(db, ticket.id)).status == frm
            assert len(await activities(db, ticket.id)) == before
