"""Schema 19: realm rights become a set (issue 15). A store of schema 18 kept each grant
as the rights named, read as a ladder (Reference < Read < Edit < Delete < Create, each
implying those below); after the upgrade every caller has exactly the accesses it had —
nobody widened, nobody narrowed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from kms_ws.domain.realms import Right, allows, realms_with
from kms_ws.store import migrations
from kms_ws.store import tables as t
from kms_ws.store.engine import Database, sqlite_url
from kms_ws.store.unit_of_work import SqlUnitOfWork

# What schema 18 stored (format_rights: labels, highest first), as `client add --right`,
# AdminCreate and RegisterEndpoint could leave it.
STORED = {
    "00000000-0000-0000-0000-0000000000c1": "Create",
    "00000000-0000-0000-0000-0000000000c2": "Create,Delete,Edit,Read,Reference",
    "00000000-0000-0000-0000-0000000000c3": "Delete",
    "00000000-0000-0000-0000-0000000000c4": "Edit,Reference",
    "00000000-0000-0000-0000-0000000000c5": "Read",
    "00000000-0000-0000-0000-0000000000c6": "Reference",
    "00000000-0000-0000-0000-0000000000c7": "Read,Reference",
}
REALM = "realm://example.com/a"


def _ladder_allows(stored: str, needed: Right) -> bool:
    """main's decision before schema 19 (domain.realms.allows as it was): the top right
    held, compared on the ladder."""
    held = [Right[x.upper()] for x in stored.split(",")]
    return max(held) >= needed


def test_schema_19_keeps_every_callers_rights(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path))
    db.migrate()
    with db.transaction(write=True) as conn:  # back to a schema 18 store
        conn.execute(t.meta.update().where(t.meta.c.name == "schema_version").values(value="18"))
        for n, (endpoint_id, rights) in enumerate(STORED.items()):
            conn.exec_driver_sql(
                "INSERT INTO endpoints (id, kind, name, state, credential_type, is_admin, "
                "failed_auth, version, created_at, edit_datetime, change_seq) VALUES "
                f"('{endpoint_id}', 'Client', 'c{n}', 'Active', 'UsernamePassword', 0, 0, 1, "
                "'2026-01-01', '2026-01-01', 0)")
            conn.execute(t.realm_grants.insert().values(endpoint_id=endpoint_id, realm=REALM,
                                                        rights=rights))
    assert db.migrate() == migrations.LATEST
    with db.transaction() as conn:
        uow = SqlUnitOfWork(conn)
        for endpoint_id, stored in STORED.items():
            ep = uow.endpoints.get_endpoint(endpoint_id)
            assert ep is not None
            for right in Right:
                before = _ladder_allows(stored, right)
                assert allows(ep.grants, [REALM], right) is before, (stored, right)
                assert (REALM in realms_with(ep.grants, right)) is before, (stored, right)
        texts = dict(conn.execute(select(t.realm_grants.c.endpoint_id,
                                         t.realm_grants.c.rights)).all())
    # written out as sets: a Create grant now names all five rights
    assert texts["00000000-0000-0000-0000-0000000000c1"] == "Create,Delete,Edit,Read,Reference"
    assert texts["00000000-0000-0000-0000-0000000000c5"] == "Read,Reference"
    db.dispose()
    # running again (a store brought back) changes nothing
    db = Database(sqlite_url(tmp_path))
    with db.transaction(write=True) as conn:
        conn.execute(t.meta.update().where(t.meta.c.name == "schema_version").values(value="18"))
    assert db.migrate() == migrations.LATEST
    with db.transaction() as conn:
        assert dict(conn.execute(select(t.realm_grants.c.endpoint_id,
                                        t.realm_grants.c.rights)).all()) == texts
    db.dispose()
