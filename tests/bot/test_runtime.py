"""The bot's runtime keeps its model in step with the published knowledge base: an edit
changes the next answer without a restart, a slow training never holds up a bot turn,
a failed one keeps the old model, a burst of publishes costs a bounded number of
trainings, and every process (another app instance, a change made by the CLI) catches up.

Training runs in the real worker process (`training.training_pool`) unless a test needs
a thread. Waits use a generous deadline for failure only; nothing here measures time.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.engines.base import Prediction, TrainedModel, TrainingExample
from bot.engines.builtin import BuiltinEngine, BuiltinModel
from bot.runtime import BotRuntime, LoadedBot, NoModel, create_runtime
from bot.training import training_pool
from knowledge_base import commands
from knowledge_base.commands import DEMO_KB
from knowledge_base.service import (
    do_create_article,
    do_update_article,
    get_article_by_key,
)
from switchboard.bus import InProcessBus, create_bus
from switchboard.db import create_engine, create_sessionmaker
from switchboard.settings import Settings, SettingsError, load_settings
from switchboard.tx import Database

DEADLINE = 60.0  # seconds; only ever reached when the test fails
LOCKER = "I forgot the pin code of my parcel locker"
LOCKER_PHRASINGS = [
    "parcel locker pin code",
    "I lost the code for the pickup locker",
    "which pin opens my parcel locker",
    "locker code not received",
]
LOCKER_ANSWER = "Your locker PIN is in the SMS we sent when the parcel arrived."


async def wait_until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.05)


async def seed_demo(db: Database) -> None:
    await commands.import_file(db, DEMO_KB, note="test")


async def edit(db: Database, key: str, author: int | None = None, **fields: Any) -> None:
    async def work(session: AsyncSession) -> None:
        article = await get_article_by_key(session, key)
        assert article is not None
        await do_update_article(session, article.id, fields, author_user_id=author)

    await db.run(work)


async def publish_new(db: Database, key: str, phrasings: Sequence[str], answer: str) -> None:
    data = {
        "key": key,
        "locale": "en",
        "question": phrasings[0],
        "phrasings": list(phrasings[1:]),
        "answer_markdown": answer,
    }
    await db.run(lambda s: do_create_article(s, data, author_user_id=None, publish=True))


def answer_for(loaded: LoadedBot, text: str) -> tuple[str, str | None]:
    """What a customer would get: the predicted topic and its English answer."""
    model = loaded.model
    assert isinstance(model, TrainedModel)
    label = model.predict(text).label
    variants = loaded.articles.get(label)
    return label, variants["en"].answer if variants and "en" in variants else None


async def run_cli(settings: Settings, tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": settings.database_url,
        "SWITCHBOARD_SECRET_KEY": settings.secret_key,
        "SWITCHBOARD_VAR_DIR": str(tmp_path / "cli-var"),
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("switchboard")),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


@pytest.fixture
async def runtime(db: Database) -> AsyncIterator[BotRuntime]:
    """The production set-up: builtin engine, training in the worker process. Polling
    is off in effect (an hour), so only the bus can tell it about changes."""
    await seed_demo(db)
    bot = BotRuntime(db, BuiltinEngine(), executor_factory=training_pool, poll_interval=3600)
    await bot.start()
    yield bot
    await bot.close()


# --- engines the tests control, picklable into the worker process -----------------------


class Gate:
    """Two cross-process switches: `started` is set by a training run, `release` lets
    runs finish (set from the start, so only a test that clears it holds training)."""

    def __init__(self, manager: Any) -> None:
        self.started = manager.Event()
        self.release = manager.Event()
        self.release.set()
        self.pids = manager.list()  # of the processes that ran a training


class PidModel:
    """A builtin model that remembers which process trained it."""

    def __init__(self, model: BuiltinModel, pid: int) -> None:
        self.model = model
        self.pid = pid

    def predict(self, text: str) -> Prediction:
        return self.model.predict(text)


class GatedEngine:
    """The builtin engine, holding each run until the gate is open."""

    name = "builtin"

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def train(self, examples: Sequence[TrainingExample]) -> PidModel:
        self.gate.pids.append(os.getpid())
        self.gate.started.set()
        if not self.gate.release.wait(DEADLINE):
            raise TimeoutError("the test never released training")
        return PidModel(BuiltinEngine().train(examples), os.getpid())


class PickyEngine:
    """The builtin engine, failing on any phrasing that contains "explode"."""

    name = "builtin"

    def train(self, examples: Sequence[TrainingExample]) -> BuiltinModel:
        bad = [e.text for e in examples if "explode" in e.text]
        if bad:
            raise ValueError(f"cannot learn {bad[0]!r}")
        return BuiltinEngine().train(examples)


class DiesOnceEngine:
    """The builtin engine, whose first run kills its worker process outright."""

    name = "builtin"

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def train(self, examples: Sequence[TrainingExample]) -> BuiltinModel:
        if not self.marker.exists():
            self.marker.touch()
            os._exit(1)  # as the kernel's OOM killer would: no exception, no cleanup
        return BuiltinEngine().train(examples)


class UnusableModel:
    def predict(self, text: str) -> Prediction:
        raise RuntimeError("this model cannot predict")


class UnusableAfterFirstEngine:
    """Trains good builtin models until the knowledge base mentions "unusable"."""

    name = "builtin"

    def train(self, examples: Sequence[TrainingExample]) -> BuiltinModel | UnusableModel:
        if any("unusable" in e.text for e in examples):
            return UnusableModel()
        return BuiltinEngine().train(examples)


@pytest.fixture(scope="module")
def manager() -> Any:
    with multiprocessing.get_context("forkserver").Manager() as shared:
        yield shared


# --- an edit changes the answer ---------------------------------------------------------


async def test_an_edit_to_phrasings_and_answer_changes_the_next_answer(
    runtime: BotRuntime, db: Database
) -> None:
    before = await runtime.current()
    label, _ = answer_for(before, LOCKER)
    assert label != "order_tracking"
    assert answer_for(before, "where is my order")[0] == "order_tracking"

    await edit(db, "order_tracking_en", phrasings=LOCKER_PHRASINGS, answer_markdown=LOCKER_ANSWER)

    async def serving_the_edit() -> bool:
        return answer_for(await runtime.current(), LOCKER) == ("order_tracking", LOCKER_ANSWER)

    await wait_until(serving_the_edit, "the edited article answers the locker question")
    after = await runtime.current()
    assert after.fingerprint != before.fingerprint
    # The old bundle is untouched: whoever still holds it answers from the old version.
    assert answer_for(before, LOCKER)[0] == label


async def test_a_draft_edit_does_not_retrain(runtime: BotRuntime, db: Database) -> None:
    serving = await runtime.current()
    trainings = runtime.status().trainings
    data = {"key": "draft_only", "locale": "en", "question": "q", "answer_markdown": "a"}
    await db.run(lambda s: do_create_article(s, data, author_user_id=None))
    await runtime.refresh()
    assert (await runtime.current()) is serving
    assert runtime.status().trainings == trainings


# --- never blocking ---------------------------------------------------------------------


async def test_bot_turns_proceed_on_the_old_model_while_training_runs(
    db: Database, manager: Any
) -> None:
    await seed_demo(db)
    gate = Gate(manager)
    bot = BotRuntime(db, GatedEngine(gate), executor_factory=training_pool, poll_interval=3600)
    await bot.start()
    try:
        old = await bot.current()
        assert isinstance(old.model, PidModel) and old.model.pid != os.getpid()

        gate.release.clear()
        gate.started.clear()
        await edit(
            db, "order_tracking_en", phrasings=LOCKER_PHRASINGS, answer_markdown=LOCKER_ANSWER
        )
        assert await asyncio.to_thread(gate.started.wait, DEADLINE), "training never started"

        # Training is now stuck in the worker until released; turns go on meanwhile.
        assert bot.status().training
        for _ in range(3):
            during = await bot.current()
            assert during is old
            assert answer_for(during, "where is my order")[0] == "order_tracking"

        gate.release.set()

        async def swapped() -> bool:
            return (await bot.current()) is not old

        await wait_until(swapped, "the new model is swapped in")
        assert answer_for(await bot.current(), LOCKER) == ("order_tracking", LOCKER_ANSWER)
    finally:
        gate.release.set()
        await bot.close()


async def test_closing_stops_a_training_in_flight(db: Database, manager: Any) -> None:
    gate = Gate(manager)
    gate.release.clear()
    bot = BotRuntime(db, GatedEngine(gate), executor_factory=training_pool, poll_interval=3600)
    await bot.start()
    assert await asyncio.to_thread(gate.started.wait, DEADLINE), "training never started"
    worker = gate.pids[0]
    await bot.close()

    # Otherwise the worker would run to the end of its training, and the interpreter's
    # exit would wait for it.
    async def worker_gone() -> bool:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return True
        return False

    await wait_until(worker_gone, "the training worker is stopped")


# --- failure ----------------------------------------------------------------------------


async def test_a_failed_training_keeps_the_old_model_and_says_why(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_demo(db)
    bot = BotRuntime(db, PickyEngine(), executor_factory=training_pool, poll_interval=3600)
    await bot.start()
    try:
        good = await bot.current()
        await edit(db, "order_tracking_en", phrasings=["please explode"])

        async def failed() -> bool:
            return bot.status().failures == 1

        await wait_until(failed, "the training fails")
        assert (await bot.current()) is good
        assert answer_for(good, "where is my order")[0] == "order_tracking"
        assert "cannot learn 'please explode'" in (bot.status().last_error or "")
        assert "bot training failed" in caplog.text

        # Fixing the article brings training back (the bus asks again).
        await edit(db, "order_tracking_en", phrasings=LOCKER_PHRASINGS)

        async def recovered() -> bool:
            return (await bot.current()) is not good

        await wait_until(recovered, "a good edit trains again")
        assert bot.status().last_error is None
        assert answer_for(await bot.current(), LOCKER)[0] == "order_tracking"
    finally:
        await bot.close()


async def test_a_model_that_cannot_predict_is_never_swapped_in(db: Database) -> None:
    await seed_demo(db)
    bot = BotRuntime(
        db, UnusableAfterFirstEngine(), executor_factory=training_pool, poll_interval=3600
    )
    await bot.start()
    try:
        good = await bot.current()
        await edit(db, "order_tracking_en", phrasings=["an unusable phrasing"])

        async def failed() -> bool:
            return bot.status().failures == 1

        await wait_until(failed, "the unusable model is refused")
        assert (await bot.current()) is good
        assert "this model cannot predict" in (bot.status().last_error or "")
    finally:
        await bot.close()


async def test_without_any_model_every_message_is_handed_off_with_the_reason(
    db: Database,
) -> None:
    await publish_new(db, "boom", ["explode now", "explode later"], "never")
    bot = BotRuntime(db, PickyEngine(), executor_factory=training_pool, poll_interval=3600)
    await bot.start()
    try:
        loaded = await bot.current()
        assert isinstance(loaded.model, NoModel)
        prediction = loaded.model.predict("where is my order")
        assert prediction.is_oos and prediction.fallback
        assert "cannot learn 'explode now'" in prediction.reason
    finally:
        await bot.close()


async def test_a_dead_training_worker_is_replaced_and_training_retried(
    db: Database, tmp_path: Path
) -> None:
    await seed_demo(db)
    bot = BotRuntime(
        db,
        DiesOnceEngine(tmp_path / "died"),
        executor_factory=training_pool,
        poll_interval=3600,
        retry_first=0.1,
    )
    await bot.start()
    try:
        # Nothing changes in the knowledge base: only the retry can bring a model.
        async def trained() -> bool:
            return isinstance((await bot.current()).model, BuiltinModel)

        await wait_until(trained, "a new worker trains after the first one died")
        assert (tmp_path / "died").exists()
        assert bot.status().failures == 1 and bot.status().last_error is None
        assert answer_for(await bot.current(), "where is my order")[0] == "order_tracking"
    finally:
        await bot.close()


# --- bursts -----------------------------------------------------------------------------


async def test_a_burst_of_edits_during_training_costs_one_more_training(
    db: Database, manager: Any
) -> None:
    await seed_demo(db)
    gate = Gate(manager)
    bot = BotRuntime(db, GatedEngine(gate), executor_factory=training_pool, poll_interval=3600)
    await bot.start()
    try:
        await bot.current()
        first = bot.status().trainings
        gate.release.clear()
        gate.started.clear()
        await edit(db, "order_tracking_en", phrasings=["edit 0"])
        assert await asyncio.to_thread(gate.started.wait, DEADLINE)
        for n in range(1, 21):  # 20 quick edits, each its own transaction and event
            await edit(db, "order_tracking_en", phrasings=[f"edit {n}", *LOCKER_PHRASINGS])
        gate.release.set()

        async def settled() -> bool:
            loaded = await bot.current()
            variants = loaded.articles["order_tracking"]
            return variants["en"].phrasings[0] == "edit 20" and not bot.status().training

        await wait_until(settled, "the last edit is serving")
        # The run in flight, then one for everything queued behind it.
        assert bot.status().trainings == first + 2
    finally:
        gate.release.set()
        await bot.close()


class CountingEngine:
    """Trains nothing: counts runs and serves a model that knows the labels it saw."""

    name = "counting"

    def __init__(self) -> None:
        self.runs = 0

    def train(self, examples: Sequence[TrainingExample]) -> TrainedModel:
        self.runs += 1
        labels = sorted({e.label for e in examples})
        return NoModel(f"{len(labels)} labels")


async def test_an_import_of_300_articles_trains_once(db: Database, tmp_path: Path) -> None:
    engine = CountingEngine()
    bot = BotRuntime(db, engine, poll_interval=3600)
    await bot.start()
    try:
        await bot.current()
        assert engine.runs == 1
        rows = [
            {
                "key": f"article_{n}",
                "locale": "en",
                "status": "published",
                "question": f"question number {n}",
                "phrasings": [f"phrasing {n}"],
                "answer_markdown": f"answer {n}",
            }
            for n in range(300)
        ]
        path = tmp_path / "many.json"
        path.write_text(json.dumps(rows))
        await commands.import_file(db, path)

        async def all_serving() -> bool:
            return len((await bot.current()).articles) == 300

        await wait_until(all_serving, "the 300 articles are serving")
        assert engine.runs == 2
    finally:
        await bot.close()


# --- every process ----------------------------------------------------------------------


async def test_a_change_written_by_the_cli_is_picked_up_by_polling(
    settings: Settings, tmp_path: Path
) -> None:
    # The hub's own handle: its bus never hears the CLI's in-process bus.
    engine = create_engine(settings.database_url)
    hub_db = Database(engine, create_sessionmaker(engine), InProcessBus())
    bot = BotRuntime(hub_db, BuiltinEngine(), executor_factory=training_pool, poll_interval=0.2)
    await bot.start()
    try:
        before = await bot.current()
        assert before.articles == {}
        path = tmp_path / "kb.json"
        rows = json.loads(DEMO_KB.read_text())
        for row in rows:
            if row["key"] == "order_tracking_en":
                row["phrasings"] = LOCKER_PHRASINGS
                row["answer_markdown"] = LOCKER_ANSWER
        path.write_text(json.dumps(rows))

        # `switchboard kb import FILE` in a process of its own, as an operator runs it.
        await run_cli(settings, tmp_path, "kb", "import", str(path))

        async def imported() -> bool:
            return answer_for(await bot.current(), LOCKER) == ("order_tracking", LOCKER_ANSWER)

        await wait_until(imported, "the polled runtime serves the imported articles")
    finally:
        await bot.close()
        await engine.dispose()


# Without Redis a CLI import is found by polling (the test above).
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_with_redis_a_cli_import_is_heard_at_once(settings: Settings, tmp_path: Path) -> None:
    assert settings.redis_url is not None
    hub_bus = create_bus(settings.redis_url, settings.redis_prefix)
    await hub_bus.start()
    engine = create_engine(settings.database_url)
    # Polling off in effect: only the event the CLI published through Redis can tell it.
    hub_db = Database(engine, create_sessionmaker(engine), hub_bus)
    bot = BotRuntime(hub_db, BuiltinEngine(), executor_factory=training_pool, poll_interval=3600)
    await bot.start()
    try:
        assert (await bot.current()).articles == {}
        # The code `switchboard kb import` runs, with its own engine and bus.
        await commands.run(settings, "import", str(DEMO_KB))

        async def imported() -> bool:
            return "order_tracking" in (await bot.current()).articles

        await wait_until(imported, "the runtime hears the CLI's import over Redis")
    finally:
        await bot.close()
        await engine.dispose()
        await hub_bus.close()


async def test_rasa_retrain_reloads_the_answers_and_an_outage_hands_off(
    settings: Settings, db: Database
) -> None:
    bot = create_runtime(
        settings.with_overrides(bot_engine="rasa", rasa_url="http://127.0.0.1:9"), db
    )
    assert bot.engine.name == "rasa"
    await bot.start()
    try:
        await bot.current()
        await seed_demo(db)

        async def reloaded() -> bool:
            return "order_tracking" in (await bot.current()).articles

        await wait_until(reloaded, "the rasa runtime reloads the published articles")
        await edit(db, "order_tracking_en", answer_markdown=LOCKER_ANSWER)

        async def edited() -> bool:
            return (await bot.current()).articles["order_tracking"]["en"].answer == LOCKER_ANSWER

        await wait_until(edited, "the rasa runtime serves the edited answer")
        loaded = await bot.current()
        prediction = await loaded.model.predict("where is my order")  # type: ignore[misc]
        assert prediction.is_oos and prediction.fallback and "rasa" in prediction.reason
    finally:
        await bot.close()


def test_a_bad_poll_interval_is_one_clear_line(tmp_path: Path) -> None:
    env = {"SWITCHBOARD_VAR_DIR": str(tmp_path), "SWITCHBOARD_SECRET_KEY": "k" * 40}
    assert load_settings({**env, "SWITCHBOARD_BOT_POLL_INTERVAL": "2"}).bot_poll_interval == 2
    assert load_settings(env).bot_poll_interval == 5
    for bad in ("soon", "0", "-3", "1.5"):
        with pytest.raises(SettingsError, match="SWITCHBOARD_BOT_POLL_INTERVAL"):
            load_settings({**env, "SWITCHBOARD_BOT_POLL_INTERVAL": bad})


async def test_a_hub_without_the_bot_trains_nothing_until_an_inbox_turns_it_on(
    db: Database,
) -> None:
    from sqlalchemy import update

    from bot.runtime import start_for_hub
    from conversations.models import Inbox
    from tests.bot.dialogue_support import webchat_with_bot

    inbox_id = await webchat_with_bot(db)
    await db.run(
        lambda s: s.execute(update(Inbox).where(Inbox.id == inbox_id).values(bot_enabled=False))
    )
    await seed_demo(db)
    bot = BotRuntime(db, BuiltinEngine(), executor_factory=training_pool, poll_interval=0.1)
    await start_for_hub(bot, db)
    try:
        # Several polls pass; no inbox wants the bot, so no training process starts.
        await asyncio.sleep(0.5)
        assert bot.status().fingerprint is None and not bot.status().training
        await db.run(
            lambda s: s.execute(update(Inbox).where(Inbox.id == inbox_id).values(bot_enabled=True))
        )

        async def trained() -> bool:
            return bot.status().fingerprint is not None

        await wait_until(trained, "the runtime trains once an inbox has the bot on")
    finally:
        await bot.close()
