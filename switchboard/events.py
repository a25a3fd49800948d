"""Typed events: frozen dataclasses that travel over the bus as JSON.

An event names the topics it belongs to (`topics()`), so a subscriber (one widget
socket, one agent inbox) receives only what concerns it. Every event carries the actor
that caused it, so automation can ignore its own effects.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

import orjson

_REGISTRY: dict[str, type[Event]] = {}

E = TypeVar("E", bound="type[Event]")


@dataclasses.dataclass(frozen=True)
class Event:
    type_name: ClassVar[str] = ""

    actor: str

    def topics(self) -> tuple[str, ...]:
        return ()

    def to_json(self) -> str:
        return self.encode().decode()

    def encode(self) -> bytes:
        """The event as UTF-8 JSON (what the bus sends)."""
        # Not dataclasses.asdict: it deep-copies every nested dict, once per event.
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        # Non-string keys become strings, as the standard library's json makes them.
        return orjson.dumps({"type": self.type_name, "data": data}, option=orjson.OPT_NON_STR_KEYS)


def register(cls: E) -> E:
    """Class decorator: lets `from_json` rebuild this event on another process."""
    if not cls.type_name:
        raise TypeError(f"{cls.__name__} needs a type_name")
    _REGISTRY[cls.type_name] = cls
    return cls


def from_json(raw: str | bytes) -> Event:
    payload: dict[str, Any] = orjson.loads(raw)
    cls = _REGISTRY[payload["type"]]
    return cls(**payload["data"])


@register
@dataclasses.dataclass(frozen=True)
class OutboxWake(Event):
    """Outbound work was committed; workers should look now rather than at their next poll."""

    type_name: ClassVar[str] = "outbox.wake"

    def topics(self) -> tuple[str, ...]:
        return ("outbox",)


@register
@dataclasses.dataclass(frozen=True)
class InboundWake(Event):
    """A channel delivery was filed; the inbound processor should look now."""

    type_name: ClassVar[str] = "inbound.wake"

    def topics(self) -> tuple[str, ...]:
        return ("inbound",)


@register
@dataclasses.dataclass(frozen=True)
class SessionsEnded(Event):
    """A user's browser session (or all of them, `token_hash` None) was revoked: live
    sockets riding on it close at once, on every process."""

    type_name: ClassVar[str] = "auth.sessions_ended"

    user_id: int
    token_hash: str | None

    def topics(self) -> tuple[str, ...]:
        return (user_topic(self.user_id),)


@register
@dataclasses.dataclass(frozen=True)
class UserRoleChanged(Event):
    """A user's role changed: their live sockets, which were authorised for the old role,
    close at once on every process (the client reconnects under the new one)."""

    type_name: ClassVar[str] = "auth.role_changed"

    user_id: int

    def topics(self) -> tuple[str, ...]:
        return (user_topic(self.user_id),)


def user_topic(user_id: int) -> str:
    return f"user:{user_id}"
