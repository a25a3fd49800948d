"""What `routing` publishes: a wake-up for the assignment worker on every process."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from switchboard.events import Event, register

ROUTING_TOPIC = "routing"


@register
@dataclasses.dataclass(frozen=True)
class RoutingWake(Event):
    """Work for assignment was committed (a routed ticket, an agent online, more room):
    the worker should look now rather than at its next poll."""

    type_name: ClassVar[str] = "routing.wake"

    def topics(self) -> tuple[str, ...]:
        return (ROUTING_TOPIC,)
