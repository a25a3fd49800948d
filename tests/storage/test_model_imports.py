"""A process that imports only `conversations` (a worker, a script) still gets every
table its foreign keys name; otherwise its first flush fails far from the cause."""

from __future__ import annotations

import subprocess
import sys


def test_conversations_models_bring_the_tables_they_reference() -> None:
    probe = (
        "import conversations.models\n"
        "from sqlalchemy.orm import configure_mappers\n"
        "from switchboard.db import Base\n"
        "configure_mappers()\n"
        "for table in Base.metadata.sorted_tables:\n"
        "    for fk in table.foreign_keys:\n"
        "        fk.column  # raises if the referenced table is missing\n"
        "print(sorted(Base.metadata.tables))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "'customers'" in result.stdout and "'users'" in result.stdout
