"""What `routing` publishes: a wake-up for the assignment worker on every process."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from switchboard.events import Event, register

ROUTING_TOPIC = "routing"
# Floor-wide news for supervisors' dashboards (the agent socket subscribes a supervisor
# or admin to it).
SUPERVISOR_TOPIC = "supervisor"


@register
@dataclasses.dataclass(frozen=True)
class RoutingWake(Event):
    """Work for assignment was committed (a routed ticket, an agent online, more room):
    the worker should look now rather than at its next poll."""

    type_name: ClassVar[str] = "routing.wake"

    def topics(self) -> tuple[str, ...]:
        return (ROUTING_TOPIC,)


@register
@dataclasses.dataclass(frozen=True)
class AgentPresenceChanged(Event):
    """An agent's presence changed (online, away, offline), on any process."""

    type_name: ClassVar[str] = "agent.presence_changed"

    user_id: int
    presence: str

    def topics(self) -> tuple[str, ...]:
        return (SUPERVISOR_TOPIC,)
