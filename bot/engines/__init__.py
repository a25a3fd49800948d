"""NLU engines behind one interface (`base.Engine`), chosen by name
(`SWITCHBOARD_BOT_ENGINE`: ``builtin`` by default, or ``rasa``)."""

from __future__ import annotations

import importlib
from typing import Any

from bot.engines.base import Engine, EngineUnavailable

ENGINE_NAMES = ("builtin", "rasa")


def create_engine(name: str = "builtin", **options: Any) -> Engine:
    """The engine called ``name``. Each engine module exposes
    ``create_engine(**options) -> Engine``; ``options`` go to it unchanged
    (e.g. ``url=`` and ``timeout=`` for rasa). Raises EngineUnavailable for an
    engine that is not installed yet and ValueError for an unknown name."""
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown bot engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
    try:
        module = importlib.import_module(f"bot.engines.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"bot.engines.{name}":
            raise
        raise EngineUnavailable(f"the {name} engine is not available in this build") from exc
    factory = getattr(module, "create_engine", None)
    if factory is None:
        raise EngineUnavailable(f"bot.engines.{name} has no create_engine()")
    engine: Engine = factory(**options)
    return engine
