"""What the bot listens for: the published knowledge base changed, so retrain."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from switchboard.events import Event, register

TOPIC = "knowledge_base"


@register
@dataclasses.dataclass(frozen=True)
class PublishedArticlesChanged(Event):
    """Articles were published, unpublished, or edited while published: the training set
    (`published_training_set`) is different after this commit. One event per
    transaction, naming every article it changed, so an import of hundreds of articles
    asks for one retraining, not hundreds."""

    type_name: ClassVar[str] = "knowledge_base.published_changed"

    article_ids: list[int]

    def topics(self) -> tuple[str, ...]:
        return (TOPIC,)
