"""`switchboard kb import|export|export-rasa` on a real (SQLite) database, and the demo
knowledge base it ships."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import yaml

from knowledge_base.commands import DEMO_KB
from switchboard.cli import main


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("SWITCHBOARD_") and key != "SWITCHBOARD_TEST_REQUIRE_SERVICES":
            monkeypatch.delenv(key)
    monkeypatch.setenv("SWITCHBOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["migrate"]) == 0
    return tmp_path


def test_import_export_and_rasa_export(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "import", str(DEMO_KB)]) == 0
    assert "36 created, 0 updated, 0 unchanged" in capsys.readouterr().out
    assert main(["kb", "export", str(env / "kb.csv")]) == 0
    assert main(["kb", "export", str(env / "kb.json")]) == 0
    assert json.loads((env / "kb.json").read_text(encoding="utf-8")) == json.loads(
        DEMO_KB.read_text(encoding="utf-8")
    )
    # The CSV round-trips too: importing it back changes nothing.
    capsys.readouterr()
    assert main(["kb", "import", str(env / "kb.csv")]) == 0
    assert "0 created, 0 updated, 36 unchanged" in capsys.readouterr().out

    assert main(["kb", "export-rasa", str(env / "rasa")]) == 0
    nlu = yaml.safe_load((env / "rasa" / "nlu.yml").read_text(encoding="utf-8"))
    domain = yaml.safe_load((env / "rasa" / "domain.yml").read_text(encoding="utf-8"))
    faq = [i["intent"] for i in nlu["nlu"] if i["intent"].startswith("faq/")]
    assert len(faq) == 36 and "faq/opening_hours_zh_hant" in faq
    assert set(domain["responses"]) == {f"utter_faq/{i.removeprefix('faq/')}" for i in faq}


def test_a_bad_file_imports_nothing_and_names_the_lines(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = json.loads(DEMO_KB.read_text(encoding="utf-8"))
    rows[5]["question"] = ""
    rows[7]["locale"] = "klingon language"
    bad = env / "bad.json"
    bad.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    assert main(["kb", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "nothing imported" in err
    lines = bad.read_text(encoding="utf-8").splitlines()
    named = [int(part.split(":")[0]) for part in err.split("line ")[1:]]
    assert len(named) == 2
    assert all(lines[n - 1].strip() == "{" for n in named)
    assert main(["kb", "export", str(env / "after.json")]) == 0
    assert json.loads((env / "after.json").read_text(encoding="utf-8")) == []


def test_an_unknown_format_is_refused(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "export", str(env / "kb.xlsx")]) == 1
    assert ".json or .csv" in capsys.readouterr().err


def test_the_demo_knowledge_base_is_bilingual_and_rich() -> None:
    articles = json.loads(DEMO_KB.read_text(encoding="utf-8"))
    published = [a for a in articles if a["status"] == "published"]
    assert len(published) >= 30
    assert {a["locale"] for a in published} == {"en", "zh-Hans", "zh-Hant"}
    assert all(len(a["phrasings"]) >= 4 for a in published)


def test_demo_seeds_the_knowledge_base_once(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from switchboard.cli import _seed_demo
    from switchboard.settings import load_settings

    asyncio.run(_seed_demo(load_settings()))
    asyncio.run(_seed_demo(load_settings()))  # a second `switchboard demo` adds nothing
    assert main(["kb", "export", str(env / "seeded.json")]) == 0
    seeded = json.loads((env / "seeded.json").read_text(encoding="utf-8"))
    assert seeded == json.loads(DEMO_KB.read_text(encoding="utf-8"))
