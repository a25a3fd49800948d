"""Build, train and run a real Rasa 3.6 server for Switchboard's `rasa` bot engine.

Rasa 3.6 needs Python 3.8-3.10 and pins TensorFlow 2.12, SQLAlchemy < 2 and aiohttp < 3.10,
so it cannot live in the hub's environment. This script keeps it in its own virtual
environment outside the repository and drives it from the outside:

    scripts/rasa_server.py build                       # ~/.cache/switchboard/rasa-3.6.21
    switchboard kb export-rasa var/rasa/data           # nlu.yml, domain.yml, rules.yml
    scripts/rasa_server.py train var/rasa/data var/rasa/models
    scripts/rasa_server.py serve var/rasa/models/nlu.tar.gz --port 5005
    SWITCHBOARD_BOT_ENGINE=rasa SWITCHBOARD_RASA_URL=http://127.0.0.1:5005 switchboard serve

For `switchboard bot eval --engine rasa`, `.venv/bin/python scripts/rasa_server.py
export-examples TRAIN_FILE DIR [--holdout F --seed S]` writes the same training set.

`build` reuses the environment when `rasa` imports from it. scripts/rasa_server.py runs
this module before the hub's own environment exists (.ci/run), so it uses the standard
library only.

The pipeline handles English and Chinese in one model without a segmenter: Chinese has no
spaces, so the whitespace tokenizer sees a Chinese sentence as one token, and the char_wb
1-4 n-gram counts of that token carry the characters and short words a segmenter would
find. That avoids `rasa[jieba]` (and its dictionary) and a model per language.
"""

# ruff: noqa: S603 (it runs the commands it builds itself, from its own venv)
from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

RASA_VERSION = "3.6.21"
DEFAULT_VENV = Path.home() / ".cache" / "switchboard" / f"rasa-{RASA_VERSION}"
DEFAULT_EPOCHS = 40
COMPLETE_MARKER = ".switchboard-complete"
MODEL_NAME = "nlu"  # train writes OUT_DIR/nlu.tar.gz
START_TIMEOUT = 180.0  # seconds; a cold start is ~13 s, a loaded CI machine is slower

CONFIG_TEMPLATE = """\
# Written by scripts/rasa_server.py: one bilingual (English + Chinese) NLU pipeline.
recipe: default.v1
language: en
assistant_id: switchboard
pipeline:
- name: WhitespaceTokenizer
- name: RegexFeaturizer
- name: CountVectorsFeaturizer
- name: CountVectorsFeaturizer
  analyzer: char_wb
  min_ngram: 1
  max_ngram: 4
- name: DIETClassifier
  epochs: {epochs}
  constrain_similarities: true
  random_seed: 1
- name: ResponseSelector
  retrieval_intent: faq
  epochs: {epochs}
  constrain_similarities: true
  random_seed: 1
- name: FallbackClassifier
  threshold: 0.3
  ambiguity_threshold: 0.1
policies: []
"""


class RasaError(RuntimeError):
    """A step of building, training or serving Rasa failed; the message says which."""


def rasa_env() -> dict[str, str]:
    """The environment Rasa runs in: no telemetry (tests forbid the internet), quiet TF."""
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        PYTHONWARNINGS="ignore",
    )
    # The hub's own venv must not leak into Rasa's interpreter.
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def find_python310() -> Path:
    """A Python 3.10 to build the environment with: $RASA_PYTHON, pyenv's, or PATH's."""
    explicit = os.environ.get("RASA_PYTHON")
    if explicit:
        return Path(explicit)
    candidates = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.10.*/bin/python")))
    if candidates:
        return Path(candidates[-1])
    found = shutil.which("python3.10")
    if found:
        return Path(found)
    raise RasaError("no Python 3.10 found: install one with pyenv or set RASA_PYTHON")


def is_built(venv: Path) -> bool:
    """Whether `venv` has an importable Rasa of the pinned version."""
    python = venv / "bin" / "python"
    if not (venv / COMPLETE_MARKER).exists() or not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import rasa.version as v; print(v.__version__)"],
        capture_output=True,
        text=True,
        env=rasa_env(),
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.strip() == RASA_VERSION


@contextlib.contextmanager
def _build_lock(venv: Path) -> Iterator[None]:
    # A test session and a person may build at once: the second waits, then reuses.
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(venv: Path = DEFAULT_VENV, log: bool = True) -> Path:
    """Create (or reuse) the Rasa environment; return the path of its `rasa` command."""
    with _build_lock(venv):
        if is_built(venv):
            if log:
                print(f"rasa {RASA_VERSION} is ready in {venv}", file=sys.stderr)
            return venv / "bin" / "rasa"
        python = find_python310()
        # Built in place, marked complete at the end, so a half-built environment (killed
        # pip, full disk) is never taken for a good one: the next build starts over.
        complete = venv / COMPLETE_MARKER
        shutil.rmtree(venv, ignore_errors=True)
        pip = str(venv / "bin" / "pip")
        steps: list[tuple[str, list[str]]] = [
            (f"creating {venv} with {python}", [str(python), "-m", "venv", str(venv)]),
            ("upgrading pip", [pip, "install", "-q", "--upgrade", "pip"]),
            (
                f"installing rasa=={RASA_VERSION} (about 90 s and 2.7 GB)",
                [pip, "install", "-q", f"rasa=={RASA_VERSION}"],
            ),
        ]
        for message, command in steps:
            if log:
                print(message, file=sys.stderr, flush=True)
            try:
                returncode = subprocess.run(command, env=rasa_env(), check=False).returncode
            except OSError as error:  # e.g. RASA_PYTHON names no program
                raise RasaError(f"cannot run {command[0]}: {error}") from error
            if returncode != 0:
                raise RasaError(f"failed: {' '.join(command)}")
        complete.touch()
        if not is_built(venv):
            raise RasaError(f"rasa does not import from {venv} after the install")
        if log:
            print(f"rasa {RASA_VERSION} is ready in {venv}", file=sys.stderr)
        return venv / "bin" / "rasa"


def write_config(out_dir: Path, epochs: int = DEFAULT_EPOCHS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    config = out_dir / "config.yml"
    config.write_text(CONFIG_TEMPLATE.format(epochs=epochs), encoding="utf-8")
    return config


def train(
    data_dir: Path,
    out_dir: Path,
    epochs: int = DEFAULT_EPOCHS,
    venv: Path = DEFAULT_VENV,
    log: bool = True,
) -> Path:
    """Train an NLU model from `kb export-rasa` output; return the model's path.

    Only the NLU part is trained: Switchboard asks Rasa `/model/parse` and runs its own
    dialogue policy, so Rasa's stories, rules and policies would be dead weight.
    """
    data_dir = data_dir.resolve()
    out_dir = out_dir.resolve()
    for name in ("nlu.yml", "domain.yml"):
        if not (data_dir / name).is_file():
            raise RasaError(
                f"{data_dir / name} is missing (write it with `switchboard kb export-rasa`)"
            )
    config = write_config(out_dir, epochs)
    command = [
        str(venv / "bin" / "rasa"),
        "train",
        "nlu",
        "--config",
        str(config),
        "--nlu",
        str(data_dir / "nlu.yml"),
        "--domain",
        str(data_dir / "domain.yml"),
        "--out",
        str(out_dir),
        "--fixed-model-name",
        MODEL_NAME,
    ]
    if log:
        print(f"training on {data_dir} ({epochs} epochs)", file=sys.stderr, flush=True)
    # Rasa keeps a training cache in the working directory: keep it out of the repository.
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=out_dir,
        env=rasa_env(),
        check=False,
        stdout=None if log else subprocess.PIPE,
        stderr=None if log else subprocess.STDOUT,
        text=True,
    )
    model = out_dir / f"{MODEL_NAME}.tar.gz"
    if result.returncode != 0 or not model.is_file():
        tail = "" if log else "\n" + (result.stdout or "")[-4000:]
        raise RasaError(f"rasa train nlu failed with exit code {result.returncode}{tail}")
    if log:
        print(f"trained {model} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return model


def status_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/status", timeout=2) as response:  # noqa: S310
            body = json.loads(response.read())
    except (OSError, ValueError):
        return False
    # Rasa answers /status before the model is loaded; a model_file means it can parse.
    return bool(isinstance(body, dict) and body.get("model_file"))


def start(
    model: Path,
    port: int,
    venv: Path = DEFAULT_VENV,
    log_file: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `rasa run --enable-api` on loopback and wait until it parses; return it and
    its URL. It runs in its own process group: `stop()` ends Rasa and its children."""
    url = f"http://127.0.0.1:{port}"
    command = [
        str(venv / "bin" / "rasa"),
        "run",
        "--enable-api",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-m",
        str(model.resolve()),
    ]
    output = open(log_file, "wb") if log_file else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            command,
            cwd=model.resolve().parent,
            env=rasa_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log_file:
            output.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RasaError(f"rasa run exited with code {process.returncode} before it was ready")
        if status_ok(url):
            return process, url
        time.sleep(0.5)
    stop(process)
    raise RasaError(f"rasa run did not answer {url}/status within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """End Rasa's whole process group: SIGTERM, then SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def export_examples(spec: str, data_dir: Path, holdout: float = 0.0, seed: int = 0) -> str:
    """Write the training part of a `bot eval` data set as Rasa training data, so the
    server `bot eval --engine rasa` scores was trained on exactly what the builtin is."""
    # The hub's modules need its environment (PyYAML): imported here, not at the top.
    from bot.engines.rasa_local import write_training_data
    from bot.eval import load_examples, stratified_holdout

    examples = load_examples(spec)
    if holdout:
        examples, _ = stratified_holdout(examples, holdout, seed)
    write_training_data(examples, data_dir)
    return f"{len(examples)} examples written to {data_dir} (nlu.yml, domain.yml)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/rasa_server.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--venv", type=Path, default=DEFAULT_VENV, help=f"Rasa's environment ({DEFAULT_VENV})"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help=f"create the environment with rasa=={RASA_VERSION}, or reuse it")
    train_p = sub.add_parser("train", help="train an NLU model from `switchboard kb export-rasa`")
    train_p.add_argument("data_dir", type=Path, help="holds nlu.yml and domain.yml")
    train_p.add_argument("out_dir", type=Path, help=f"gets config.yml and {MODEL_NAME}.tar.gz")
    train_p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    examples_p = sub.add_parser(
        "export-examples",
        help="write a `bot eval` training set (CSV text,label or CLINC150 JSON) as Rasa data "
        "(runs in the hub's environment)",
    )
    examples_p.add_argument("spec", help="as `switchboard bot eval --train`")
    examples_p.add_argument("data_dir", type=Path, help="gets nlu.yml and domain.yml")
    examples_p.add_argument("--holdout", type=float, default=0.0, help="as `bot eval`")
    examples_p.add_argument("--seed", type=int, default=0, help="as `bot eval`")
    serve_p = sub.add_parser("serve", help="run `rasa run --enable-api` on 127.0.0.1")
    serve_p.add_argument("model", type=Path, help="a model from `train`")
    serve_p.add_argument("--port", type=int, default=5005)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            build(args.venv)
        elif args.command == "export-examples":
            print(export_examples(args.spec, args.data_dir, args.holdout, args.seed))
        elif args.command == "train":
            if not is_built(args.venv):
                raise RasaError(f"no Rasa in {args.venv}: run `{sys.argv[0]} build` first")
            train(args.data_dir, args.out_dir, args.epochs, args.venv)
        else:
            # SIGTERM (systemd, `timeout`, CI) ends Rasa too instead of orphaning it.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            process, url = start(args.model, args.port, args.venv)
            print(url, flush=True)
            print("SWITCHBOARD_BOT_ENGINE=rasa SWITCHBOARD_RASA_URL=" + url, file=sys.stderr)
            try:
                process.wait()
            except (KeyboardInterrupt, SystemExit):
                pass
            finally:
                stop(process)
    except RasaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
