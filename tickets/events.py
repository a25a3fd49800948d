"""What `tickets` publishes after commit.

Every ticket event goes to the agents' `inbox` topic (the inbox socket forwards it after
its access check) and to `ticket:<id>`. Not to the conversation topics: widget sockets
listen there and a customer never hears about tickets.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from conversations.events import INBOX_TOPIC
from switchboard.events import Event, register


def ticket_topic(ticket_id: int) -> str:
    return f"ticket:{ticket_id}"


@dataclasses.dataclass(frozen=True)
class TicketEvent(Event):
    ticket_id: int
    # The inbox of the ticket's first conversation, for the socket's inbox check; None
    # for a ticket that covers no conversation.
    inbox_id: int | None
    ticket: dict[str, Any]

    def topics(self) -> tuple[str, ...]:
        return (INBOX_TOPIC, ticket_topic(self.ticket_id))


@register
@dataclasses.dataclass(frozen=True)
class TicketCreated(TicketEvent):
    type_name: ClassVar[str] = "ticket.created"


@register
@dataclasses.dataclass(frozen=True)
class TicketUpdated(TicketEvent):
    """Status, priority, tags, subject, assignee or conversations changed; `changes`
    names each changed field with its old and new value."""

    type_name: ClassVar[str] = "ticket.updated"

    changes: dict[str, Any]


@register
@dataclasses.dataclass(frozen=True)
class TicketNoteAdded(TicketEvent):
    type_name: ClassVar[str] = "ticket.note_added"

    note: dict[str, Any]


@register
@dataclasses.dataclass(frozen=True)
class TicketMerged(TicketEvent):
    """`ticket_id` was merged into `survivor_id` (`ticket` is the survivor's view)."""

    type_name: ClassVar[str] = "ticket.merged"

    survivor_id: int
