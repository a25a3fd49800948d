"""Rasa trained on given examples and served on loopback: the ``rasa`` engine for
`switchboard bot eval --engine rasa`, where the training set is a file, not the
knowledge base.

``LocalRasaEngine().train(examples)`` writes them as Rasa 3.x training data (a label
becomes ``faq/<label>``, ``oos`` becomes ``out_of_scope``, the built-in intents stay
intents), builds or reuses Rasa's environment, trains the pipeline of
:mod:`bot.engines.rasa_server`, starts ``rasa run --enable-api`` on a free loopback port
and returns a :class:`ServedRasaModel`: the usual HTTP client, whose ``close`` also stops
the server and deletes its files. Training blocks (minutes on a real data set), so
call it through :func:`bot.engines.base.train_model`, which runs it in a thread.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bot.engines import rasa_server
from bot.engines.base import BUILTIN_INTENTS, OOS, TrainingExample
from bot.engines.rasa import DEFAULT_TIMEOUT, RETRIEVAL_INTENT, RasaModel

RASA_FORMAT = "3.1"
# Rasa reads "[Paris](city)" and "{...}" in an example as entity annotations.
_ENTITY_SYNTAX = str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")"})


def _intent(label: str) -> str:
    if label == OOS:
        return "out_of_scope"
    if label in BUILTIN_INTENTS:
        return label
    return f"{RETRIEVAL_INTENT}/{label}"


def training_data(examples: Sequence[TrainingExample]) -> dict[str, dict[str, Any]]:
    """nlu.yml and domain.yml (as data) for these examples, one intent per label."""
    texts: dict[str, dict[str, None]] = defaultdict(dict)
    for example in examples:
        line = " ".join(example.text.translate(_ENTITY_SYNTAX).split())
        if line:
            texts[_intent(example.label)][line] = None
    nlu = [
        {"intent": intent, "examples": "".join(f"- {line}\n" for line in lines)}
        for intent, lines in texts.items()
    ]
    plain = sorted({i for i in texts if "/" not in i} | {RETRIEVAL_INTENT, "nlu_fallback"})
    domain = {
        "version": RASA_FORMAT,
        "intents": plain,
        # The selector learns from the responses: each article's is its own label.
        "responses": {
            f"utter_{intent}": [{"text": intent.split("/", 1)[1]}]
            for intent in texts
            if intent.startswith(f"{RETRIEVAL_INTENT}/")
        },
    }
    return {"nlu.yml": {"version": RASA_FORMAT, "nlu": nlu}, "domain.yml": domain}


def write_training_data(examples: Sequence[TrainingExample], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in training_data(examples).items():
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10**6)
        (directory / name).write_text(text, encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServedRasaModel(RasaModel):
    """A client of a Rasa server this process started; ``close`` stops it."""

    def __init__(
        self, url: str, timeout: float, process: subprocess.Popen[bytes], work: Path
    ) -> None:
        super().__init__(url, timeout)
        self._process = process
        self._work = work

    def stop_server(self) -> None:
        rasa_server.stop(self._process)
        shutil.rmtree(self._work, ignore_errors=True)

    async def close(self) -> None:
        await super().close()
        self.stop_server()


class LocalRasaEngine:
    name = "rasa"

    def __init__(
        self,
        epochs: int = rasa_server.DEFAULT_EPOCHS,
        venv: Path = rasa_server.DEFAULT_VENV,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.epochs = epochs
        self.venv = venv
        self.timeout = timeout

    def train(self, examples: Sequence[TrainingExample]) -> ServedRasaModel:
        rasa_server.build(self.venv, log=False)
        work = Path(tempfile.mkdtemp(prefix="switchboard-rasa-"))
        try:
            write_training_data(examples, work / "data")
            model = rasa_server.train(
                work / "data", work / "models", self.epochs, self.venv, log=False
            )
            process, url = rasa_server.start(
                model, _free_port(), self.venv, log_file=work / "rasa-run.log"
            )
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return ServedRasaModel(url, self.timeout, process, work)
