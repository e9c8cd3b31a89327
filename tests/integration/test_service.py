"""The store a service starts on: its schema migrations, on real SQLite. (The service's
handler decisions are tested on the in-memory store: tests/handlers.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kms_ws.app import init_data_dir
from kms_ws.config import Config
from kms_ws.store import migrations
from kms_ws.store.engine import Database


@pytest.fixture()
def db(tmp_path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    store, _ = init_data_dir(Config(data_dir=tmp_path / "d"))
    yield store
    store.dispose()


def test_migrations_are_recorded_and_idempotent(db: Database) -> None:
    assert db.migrate() == migrations.LATEST
    with db.transaction() as conn:
        assert migrations.current_version(conn) == migrations.LATEST
