"""What the SLA breach worker publishes: a clock about to breach, or breached.

Both are ticket events, so the inbox socket forwards them to agents and supervisors
after its access check, like every other ticket change.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from switchboard.events import register
from tickets.events import TicketEvent


@dataclasses.dataclass(frozen=True)
class SlaAlert(TicketEvent):
    metric: str
    due_at: str


@register
@dataclasses.dataclass(frozen=True)
class SlaWarning(SlaAlert):
    """The clock is due within the warning lead (`SWITCHBOARD_SLA_WARNING_MINUTES`)."""

    type_name: ClassVar[str] = "ticket.sla_warning"


@register
@dataclasses.dataclass(frozen=True)
class SlaBreached(SlaAlert):
    type_name: ClassVar[str] = "ticket.sla_breached"
