"""The rasa engine against a real Rasa 3.6 server, built, trained and started by
scripts/rasa_server.py: the same path an operator follows.

A module fixture builds Rasa's own Python 3.10 environment (or reuses it: CI builds
it in .ci/run, under ~/.cache/switchboard), imports the bilingual demo knowledge base
into a fresh SQLite database and exports it with what `switchboard kb import` and
`switchboard kb export-rasa` run, trains Rasa on that export (or reuses the model an
earlier run trained on the very same inputs, see `_trained`) and serves it on a free
loopback port. Without Python 3.10 or a network to install Rasa from, the tests are
skipped, unless SWITCHBOARD_TEST_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.engines import rasa_server
from bot.engines.base import OOS, REQUEST_HUMAN, predict_within
from bot.engines.rasa import RasaModel
from knowledge_base import commands
from switchboard.migrate import upgrade
from switchboard.settings import Settings

REQUIRE_SERVICES = os.environ.get("SWITCHBOARD_TEST_REQUIRE_SERVICES") == "1"
# Fixture set-up (build ~90 s if not cached, train ~20-100 s, start ~13-60 s on a busy
# machine) is billed to the first test that asks for the server.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}; required because SWITCHBOARD_TEST_REQUIRE_SERVICES=1")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _export_demo_kb(work: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{work / 'kb.db'}")
    await upgrade(settings.database_url)
    await commands.run(settings, "import", str(commands.DEMO_KB))
    await commands.run(settings, "export-rasa", str(work / "data"))


EPOCHS = 40
MODEL_CACHE = rasa_server.DEFAULT_VENV.parent / "test-models"


def _trained(data: Path, out: Path) -> Path:
    """Train on the export, or reuse the model an earlier run trained on exactly the same
    export, settings, Rasa version and training code (kept next to Rasa's environment in
    ~/.cache/switchboard): training is 20-100 s of the suite, and a change to any of its
    inputs trains afresh."""
    digest = hashlib.sha256(f"{rasa_server.RASA_VERSION} epochs={EPOCHS}".encode())
    for part in (data / "nlu.yml", data / "domain.yml", Path(rasa_server.__file__)):
        digest.update(part.read_bytes())
    cached = MODEL_CACHE / digest.hexdigest()[:24] / f"{rasa_server.MODEL_NAME}.tar.gz"
    model = out / cached.name
    if cached.is_file():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, model)
        return model
    model = rasa_server.train(data, out, epochs=EPOCHS, log=False)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(cached.name + ".partial")
    shutil.copyfile(model, partial)
    partial.replace(cached)
    return model


# Module scope: the server (~1 GB) is gone before the rest of the suite runs.
@pytest.fixture(scope="module")
def rasa_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        rasa_server.build(log=False)
    except rasa_server.RasaError as error:
        _skip_or_fail(f"cannot build Rasa {rasa_server.RASA_VERSION}: {error}")
    work = tmp_path_factory.mktemp("rasa")
    asyncio.run(_export_demo_kb(work))
    model = _trained(work / "data", work / "models")
    log_file = work / "rasa-run.log"
    try:
        process, url = rasa_server.start(model, _free_port(), log_file=log_file)
    except rasa_server.RasaError as error:
        pytest.fail(f"{error}\n{log_file.read_text(errors='replace')[-4000:]}")
    try:
        yield url
    finally:
        rasa_server.stop(process)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
async def rasa(rasa_url: str) -> AsyncIterator[RasaModel]:
    model = RasaModel(rasa_url, timeout=5.0)
    yield model
    await model.close()


# Topics, not article keys: the demo has one article per topic and locale
# (`cancel_order_zh_hans`), and an export by topic would name it `cancel_order`.
@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("what time do you open on saturday", "opening_hours"),
        ("how much do you charge for shipping", "shipping_cost"),
        ("我想取消订单", "cancel_order"),
        ("我忘了密码", "reset_password"),
        ("我想取消訂單", "cancel_order"),
    ],
)
async def test_paraphrases_in_english_and_chinese_find_their_article(
    rasa: RasaModel, text: str, topic: str
) -> None:
    prediction = await predict_within(rasa, text, timeout=5.0)
    assert prediction.label.startswith(topic), prediction
    assert not prediction.fallback
    assert prediction.ranking[0][0] == prediction.label


@pytest.mark.parametrize("text", ["I want a human", "转人工"])
async def test_asking_for_a_person_is_understood(rasa: RasaModel, text: str) -> None:
    prediction = await predict_within(rasa, text, timeout=5.0)
    assert prediction.label == REQUEST_HUMAN, prediction


@pytest.mark.parametrize("text", ["who painted the mona lisa", "zxqv blorp wibble"])
async def test_what_the_knowledge_base_does_not_cover_is_handed_off(
    rasa: RasaModel, text: str
) -> None:
    prediction = await predict_within(rasa, text, timeout=5.0)
    assert prediction.label == OOS, prediction
    assert not prediction.fallback  # Rasa answered; it said "not mine"


def test_the_sync_client_reads_the_same_server(rasa_url: str) -> None:
    prediction = RasaModel(rasa_url, timeout=5.0).predict_sync("when are you open")
    assert prediction.label.startswith("opening_hours"), prediction
