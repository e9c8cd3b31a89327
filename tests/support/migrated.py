"""A SQLite store as the release before a migration made it, for the tests that upgrade
one: migrated up to the schema before `migration` only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kms_ws.store import migrations
from kms_ws.store.engine import Database, sqlite_url


def schema_of(migration: Callable[..., Any]) -> int:
    """The schema number `migration` brings a store to."""
    return migrations.MIGRATIONS.index(migration) + 1


def store_before(migration: Callable[..., Any], tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Database:
    db = Database(sqlite_url(tmp_path))
    with monkeypatch.context() as m:
        m.setattr(migrations, "LATEST", schema_of(migration) - 1)
        assert db.migrate() == schema_of(migration) - 1
    return db
