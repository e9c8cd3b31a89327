"""Schema 10: each key's realms on its own row (keys.realms), which a page of GetUpdateList
reads and filters by. A store made before gets the column filled in from key_realms; a
page looks past any number of keys in other realms and finds exactly the readable ones,
in change order, as the count (by key_realms) says."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect, select

from kms_ws.domain.model import DataSet, Extensions, Key, KeyState, NameValue
from kms_ws.domain.records import KeyScope
from kms_ws.store import migrations
from kms_ws.store import tables as t
from kms_ws.store.engine import Database, sqlite_url
from kms_ws.store.unit_of_work import SqlUnitOfWork

from ..support.db import key_row_mismatches

R, S, U = "realm://example.com/r", "realm://example.com/s", "realm://example.com/u"
NOW = datetime.now(UTC).replace(tzinfo=None)


def _key(*realms: str, **facets: Any) -> Key:
    return Key(key_id=str(uuid.uuid4()), state=KeyState.ACTIVE,
               cipher_type="2.16.840.1.101.3.4.1.46", length_bits=256, version=1,
               edit_datetime=NOW, created_at=NOW, t_cached=0, realms=realms, **facets)


def test_a_schema_9_store_gets_each_keys_realms_and_facets_on_its_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(sqlite_url(tmp_path))
    db.migrate()
    made = [_key(R, attributes=(NameValue("a", "1"),)), _key(S, R, datasets=(DataSet("v", "1"),)),
            _key(extensions=Extensions(vendor=(NameValue("x", "y"),))), _key(S)]
    keys = {k.key_id: sorted(k.realms) for k in made}
    with db.transaction(write=True) as conn:
        for k in made:
            SqlUnitOfWork(conn).keys.insert_key(k, b"x", "mk", None, NOW)
        for column in ("realms", "facets"):  # as schema 9 left it
            conn.exec_driver_sql(f"ALTER TABLE keys DROP COLUMN {column}")
        conn.execute(t.meta.update().where(t.meta.c.name == "schema_version").values(value="9"))
    assert db.migrate() == migrations.LATEST
    with db.transaction() as conn:
        assert {"realms", "facets"} <= {c["name"] for c in inspect(conn).get_columns("keys")}
        column = dict(conn.execute(select(t.keys.c.id, t.keys.c.realms)).all())
        facets = dict(conn.execute(select(t.keys.c.id, t.keys.c.facets)).all())
        uow = SqlUnitOfWork(conn)
        page = uow.changes.key_page(KeyScope(realms=(S,)), 0, uow.changes.high_water(), 10)
    assert column == {kid: "\n".join(realms) for kid, realms in keys.items()}
    # attributes, data sets, extensions, none
    assert facets == dict(zip(keys, [1, 2, 4, 0], strict=True))
    assert key_row_mismatches(tmp_path) == []
    assert [k.key_id for _, k in page] == [kid for kid, rs in keys.items() if S in rs]
    assert page[0][1].realms == (R, S) and page[0][1].datasets == (DataSet("v", "1"),)
    db.dispose()


def test_a_page_looks_past_keys_of_other_realms(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(sqlite_url(tmp_path))
    db.migrate()
    made = [_key(R, U) if i % 97 == 5 else _key(S) for i in range(600)]  # 7 of 600 in R
    with db.unit_of_work(write=True) as uow:
        for k in made:
            uow.keys.insert_key(k, b"x", "mk", None, NOW)
    with db.unit_of_work() as uow:
        updates = uow.changes
        high = updates.high_water()
        for scope in (KeyScope(realms=(R,)), KeyScope(realms=(S, U)), KeyScope(realms=())):
            want = [k.key_id for k in made if set(k.realms) & set(scope.realms)]
            got, pos = [], 0
            for _ in range(len(made)):  # bounded: every page moves on
                page = updates.key_page(scope, pos, high, 2)
                if not page:
                    break
                got += [k.key_id for _, k in page]
                pos = page[-1][0]
            assert got == want
            assert updates.count_keys(scope, 0, high) == len(want)
    db.dispose()
