"""Import and export: JSON and CSV round-trip, and a bad file is refused whole with the
line of every bad row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_base.io import ImportRejected, apply_rows, dumps, export_records, parse
from knowledge_base.service import history, list_articles
from switchboard.tx import Database

RECORDS = [
    {
        "key": "opening_hours",
        "locale": "en",
        "category": "store",
        "tags": ["hours", "store"],
        "status": "published",
        "question": "When are you open?",
        "phrasings": ["opening hours", "what time do you open, exactly?", 'say "when"'],
        "answer_markdown": "We are open **9:00-18:00**.\n\nSee [hours](https://x.example).",
    },
    {
        "key": "shipping_cost",
        "locale": "zh-Hant",
        "category": "配送",
        "tags": [],
        "status": "draft",
        "question": "運費多少？",
        "phrasings": ["送貨要錢嗎", "運費怎麼算"],
        "answer_markdown": "滿 100 元免運費。",
    },
]


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_a_file_parses_back_to_what_was_written(kind: str) -> None:
    rows = parse(dumps(RECORDS, kind), kind)
    assert [{**row.fields, "status": row.status} for row in rows] == [
        {k: r[k] for k in r} for r in RECORDS
    ]


def test_bad_json_rows_are_named_by_line_and_nothing_passes() -> None:
    bad = [RECORDS[0], {**RECORDS[1], "question": ""}, {**RECORDS[0]}, "text", {"key": "x"}]
    text = json.dumps(bad, ensure_ascii=False, indent=2)
    with pytest.raises(ImportRejected) as caught:
        parse(text, "json")
    lines = text.splitlines()
    problems = caught.value.problems
    assert len(problems) == 4
    for problem, expected in zip(
        problems,
        ["question", "repeats line 2", "not an object", "question is required"],
        strict=True,
    ):
        line = int(problem.split(":")[0].removeprefix("line "))
        assert lines[line - 1].strip() in ("{", '"text",', '"text"'), problem
        assert expected in problem
    assert problems[0].startswith(f"line {lines.index('  {', 2) + 1}:")


def test_bad_csv_rows_are_named_by_their_first_line() -> None:
    good = dumps(RECORDS, "csv")
    # Row 1 spans lines 2-6 (multi-line cells); a bad status on the next row.
    text = good + "broken,en,,,someday,Q,,A\nBad Key,en,,,draft,Q,,A\n"
    with pytest.raises(ImportRejected) as caught:
        parse(text, "csv")
    first_bad = good.count("\n") + 1
    assert caught.value.problems == [
        f"line {first_bad}: status must be draft or published",
        f"line {first_bad + 1}: key must be lowercase letters, digits and _ (at most 100)",
    ]


def test_broken_files_are_refused() -> None:
    with pytest.raises(ImportRejected, match="line 3: not valid JSON"):
        parse('[\n{"key": "a",\n oops}]', "json")
    with pytest.raises(ImportRejected, match="missing columns"):
        parse("key,question\na,b\n", "csv")


async def test_import_then_export_round_trips_and_reimport_changes_nothing(
    db: Database, tmp_path: Path
) -> None:
    rows = parse(dumps(RECORDS, "json"), "json")
    result = await db.run(lambda s: apply_rows(s, rows, author_user_id=None, note="test"))
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    async with db.reading() as session:
        exported = await export_records(session)
    assert exported == RECORDS
    again = await db.run(lambda s: apply_rows(s, rows, author_user_id=None, note="test"))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)

    edited = [
        {**RECORDS[0], "answer_markdown": "Open all day."},
        {**RECORDS[1], "status": "published"},
    ]
    changed = parse(dumps(edited, "csv"), "csv")
    third = await db.run(lambda s: apply_rows(s, changed, author_user_id=None, note="csv"))
    assert (third.created, third.updated, third.unchanged) == (0, 2, 0)
    async with db.reading() as session:
        articles = {a.key: a for a in await list_articles(session)}
        hours = await history(session, articles["opening_hours"].id)
    assert articles["opening_hours"].answer_markdown == "Open all day."
    assert articles["shipping_cost"].status == "published"
    assert [v.change_note for v in hours] == ["test", "csv"]
