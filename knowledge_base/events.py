"""What the bot listens for: the published knowledge base changed, so retrain."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from switchboard.events import Event, register

TOPIC = "knowledge_base"


@register
@dataclasses.dataclass(frozen=True)
class PublishedArticlesChanged(Event):
    """An article was published, unpublished, or edited while published; the training
    set (`published_training_set`) is different after this commit."""

    type_name: ClassVar[str] = "knowledge_base.published_changed"

    article_id: int
    version: int

    def topics(self) -> tuple[str, ...]:
        return (TOPIC,)
