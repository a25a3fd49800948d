"""`switchboard kb import|export`: the knowledge base as JSON or CSV (by file extension).

An import is checked whole before anything is written: every bad row is reported with
its line number and nothing is imported, so a file is never half applied. Articles are
matched by key: a new key creates an article, a changed one saves a new version, an
unchanged one is left alone (no empty versions from re-importing the same file).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from knowledge_base.models import STATUSES, Article
from knowledge_base.service import (
    EDITABLE,
    clean_fields,
    do_create_article,
    do_publish,
    do_unpublish,
    do_update_article,
    get_article_by_key,
    list_articles,
)
from switchboard.errors import InvalidInput

FIELDS = ("key", "locale", "category", "tags", "status", "question", "phrasings", "answer_markdown")
# In CSV, list cells hold one item per line: a spreadsheet shows them as they read.
_LIST_FIELDS = ("tags", "phrasings")
MAX_FILE_BYTES = 50 * 1024 * 1024


class ImportRejected(InvalidInput):
    """The file has bad rows; `problems` names each with its line."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:50] + ([f"… and {len(problems) - 50} more"] if len(problems) > 50 else [])
        super().__init__("nothing imported:\n" + "\n".join(shown))
        self.problems = problems


@dataclass(frozen=True)
class ImportRow:
    line: int
    fields: dict[str, Any]
    status: str


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise InvalidInput(f"{path.name}: use a .json or .csv file")
    return suffix[1:]


def article_record(article: Article) -> dict[str, Any]:
    return {
        "key": article.key,
        "locale": article.locale,
        "category": article.category,
        "tags": list(article.tags),
        "status": article.status,
        "question": article.question,
        "phrasings": list(article.phrasings),
        "answer_markdown": article.answer_markdown,
    }


def dumps(records: list[dict[str, Any]], kind: str) -> str:
    if kind == "json":
        return json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {k: "\n".join(v) if k in _LIST_FIELDS else v for k, v in record.items() if k in FIELDS}
        )
    return out.getvalue()


async def export_records(session: AsyncSession) -> list[dict[str, Any]]:
    return [article_record(a) for a in await list_articles(session)]


def write_file(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text(dumps(records, _format(path)), encoding="utf-8")


class _Bad(str):
    """A row the reader could not even split into fields, and why."""


def _json_rows(text: str) -> Iterator[tuple[int, object]]:
    """Each element of the top-level array with the line it starts on."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportRejected([f"line {exc.lineno}: not valid JSON ({exc.msg})"]) from exc
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        # {"articles": [...]}: positions are not worth re-scanning for; count items.
        for number, item in enumerate(data["articles"], 1):
            yield -number, item
        return
    if not isinstance(data, list):
        raise ImportRejected(["line 1: expected a JSON array of articles"])
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    for _item in data:
        while text[position] in " \t\r\n,":
            position += 1
        item, end = decoder.raw_decode(text, position)
        yield text.count("\n", 0, position) + 1, item
        position = end


def _csv_rows(text: str) -> Iterator[tuple[int, object]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"key", "question", "answer_markdown", "locale"} - set(reader.fieldnames or ())
    if missing:
        raise ImportRejected([f"line 1: missing columns {', '.join(sorted(missing))}"])
    start = reader.line_num + 1
    for row in reader:
        if None in row:
            yield start, _Bad("more cells than columns")
        else:
            yield (
                start,
                {
                    k: [i for i in (v or "").splitlines() if i.strip()] if k in _LIST_FIELDS else v
                    for k, v in row.items()
                },
            )
        start = reader.line_num + 1


def parse(text: str, kind: str) -> list[ImportRow]:
    """Valid rows, or ImportRejected naming every bad one."""
    rows: list[ImportRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    source = _json_rows(text) if kind == "json" else _csv_rows(text)
    for line, item in source:
        where = f"line {line}" if line > 0 else f"article {-line}"
        if not isinstance(item, dict):
            problems.append(f"{where}: {item if isinstance(item, _Bad) else 'not an object'}")
            continue
        status = item.get("status") or "draft"
        try:
            if status not in STATUSES:
                raise InvalidInput("status must be draft or published")
            fields = clean_fields({k: item[k] for k in EDITABLE if k in item}, creating=True)
        except InvalidInput as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        if fields["key"] in seen:
            problems.append(f"{where}: key {fields['key']} repeats line {seen[fields['key']]}")
            continue
        seen[fields["key"]] = line
        rows.append(ImportRow(line, fields, status))
    if problems:
        raise ImportRejected(problems)
    return rows


def read_file(path: Path) -> list[ImportRow]:
    kind = _format(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(f"{path.name} is larger than {MAX_FILE_BYTES // 2**20} MB")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not UTF-8") from exc
    return parse(text, kind)


async def apply_rows(
    session: AsyncSession, rows: list[ImportRow], *, author_user_id: int | None, note: str
) -> ImportResult:
    """Write already-validated rows (call inside one transaction)."""
    created = updated = unchanged = 0
    for row in rows:
        existing = await get_article_by_key(session, row.fields["key"])
        if existing is None:
            await do_create_article(
                session,
                row.fields,
                author_user_id=author_user_id,
                change_note=note,
                publish=row.status == "published",
            )
            created += 1
            continue
        current = article_record(existing)
        changed = {k: v for k, v in row.fields.items() if current.get(k) != v}
        if changed:
            await do_update_article(
                session, existing.id, changed, author_user_id=author_user_id, change_note=note
            )
        if row.status != existing.status:
            flip = do_publish if row.status == "published" else do_unpublish
            await flip(session, existing.id, author_user_id=author_user_id)
        if changed or row.status != current["status"]:
            updated += 1
        else:
            unchanged += 1
    return ImportResult(created, updated, unchanged)
