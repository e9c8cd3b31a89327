"""The in-memory store the handler tests run on keeps the promises of the SQL one:
a unit of work commits on success and discards on an exception, a read-only one refuses
writes, audit records are written in write units only, and the change sequence orders
keys, edits and removals as store/ does (checked side by side with SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest

from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind, Key, KeyState
from kms_ws.domain.records import KeyScope, WriteNeeded
from kms_ws.service.ports import UnitOfWork
from kms_ws.store.audit_log import AuditChainMissing
from kms_ws.store.engine import Database

from ..fakes.memory_store import MemoryStore
from .conftest import DEFAULT, OTHER

NOW = datetime(2026, 3, 1, 8, 0)
AUDIT = {"at": NOW, "actor_id": None, "actor_name": None, "operation": "Test",
         "event": "E", "result": "Success"}


class Units(Protocol):
    def unit_of_work(self, write: bool = False, durable: bool = True,
                     read_only: bool = False) -> AbstractContextManager[UnitOfWork]: ...


def endpoint(name: str) -> Endpoint:
    return Endpoint(str(uuid.uuid4()), EndpointKind.CLIENT, name, ClientState.ACTIVE,
                    CredentialType.USERNAME_PASSWORD, 1, realms=(DEFAULT,))


def test_a_unit_of_work_commits_on_success_and_discards_on_an_exception() -> None:
    store = MemoryStore("mk")
    with store.unit_of_work(write=True) as uow:
        uow.endpoints.insert_endpoint(endpoint("kept"), NOW)
    with pytest.raises(RuntimeError), store.unit_of_work(write=True) as uow:
        uow.endpoints.insert_endpoint(endpoint("dropped"), NOW)
        raise RuntimeError("the handler failed")
    with store.unit_of_work() as uow:
        assert uow.endpoints.find_client("kept") is not None
        assert uow.endpoints.find_client("dropped") is None
        assert uow.changes.high_water() == 1


def test_a_read_only_unit_refuses_writes_and_audit_needs_a_write_unit() -> None:
    store = MemoryStore("mk")
    store.audit = object()  # a signer (the fake does not chain)
    with pytest.raises(WriteNeeded), store.unit_of_work(read_only=True) as uow:
        uow.endpoints.insert_endpoint(endpoint("x"), NOW)
    with pytest.raises(AuditChainMissing), store.unit_of_work() as uow:
        uow.audit.append_audit([AUDIT])
    with store.unit_of_work(write=True) as uow:
        uow.audit.append_audit([AUDIT])
    assert [r["operation"] for r in store.tables.audit] == ["Test"]
    bare = MemoryStore("mk")  # no signer: nothing can be audited
    with pytest.raises(AuditChainMissing), bare.unit_of_work(write=True) as uow:
        uow.audit.append_audit([AUDIT])


def test_two_writers_at_once_fail_loudly() -> None:
    store = MemoryStore("mk")
    with pytest.raises(AssertionError, match="at once"), \
            store.unit_of_work(write=True) as outer:
        with store.unit_of_work(write=True) as inner:
            inner.endpoints.insert_endpoint(endpoint("a"), NOW)
        outer.endpoints.insert_endpoint(endpoint("b"), NOW)


@pytest.fixture()
def sqlite(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'kms.db'}")
    db.migrate()
    with db.unit_of_work(write=True) as uow:
        uow.sealed.set_meta("master_key_current", "mk")
    yield db
    db.dispose()


def key(realms: tuple[str, ...], name: str) -> Key:
    return Key(str(uuid.uuid4()), KeyState.ACTIVE, "2.16.840.1.101.3.4.1.46", 256, 1, NOW, NOW,
               3600, friendly_name=name, realms=realms)


def story(units: Units) -> dict[str, Any]:
    """The same changes on either store; what the change sequence then reads."""
    keys = [key((DEFAULT,), "a"), key((OTHER,), "b"), key((DEFAULT, OTHER), "c")]
    with units.unit_of_work(write=True) as uow:
        seqs = [uow.keys.insert_key(k, b"sealed", "mk", None, NOW) for k in keys]
    with units.unit_of_work(write=True) as uow:
        edited = keys[0]
        edited.version, edited.edit_datetime = 2, NOW + timedelta(minutes=1)
        edited.state = KeyState.DISABLED
        seqs.append(uow.keys.update_key(edited, b"resealed", master_key_id="mk"))
        seqs.append(uow.changes.record_removal("RetentionPolicy", "gone", 1, (DEFAULT,), NOW))
    with units.unit_of_work() as uow:
        high = uow.changes.high_water()
        scope = KeyScope((DEFAULT,))
        return {
            "seqs": seqs, "high": high,
            "page": [(s, k.friendly_name, k.state, k.version, k.realms)
                     for s, k in uow.changes.key_page(scope, 0, high, 10)],
            "page_after": [k.friendly_name for _, k in uow.changes.key_page(scope, 3, high, 10)],
            "first": [k.friendly_name for _, k in uow.changes.key_page(scope, 0, high, 1)],
            "count": uow.changes.count_keys(scope, 0, high),
            "disabled": [k.friendly_name for _, k in uow.changes.key_page(
                KeyScope((DEFAULT, OTHER), equals=(("State", "Disabled"),)), 0, high, 10)],
            "removals": [(s, r.kind, r.object_id) for s, r in uow.changes.removal_page(
                ("RetentionPolicy",), (DEFAULT,), 0, high, 10)],
            "removals_elsewhere": uow.changes.count_removals(("RetentionPolicy",), (OTHER,),
                                                             0, high),
            "listed": [uow.keys.get_key(i)[0].friendly_name  # type: ignore[index]
                       for i in uow.keys.list_key_ids((OTHER,), limit=10)],
            "sealed": uow.keys.get_key(keys[0].key_id)[1],  # type: ignore[index]
        }


def test_the_change_sequence_reads_as_on_sqlite(sqlite: Database) -> None:
    fake = story(MemoryStore("mk"))
    assert fake == story(sqlite)
    assert fake["seqs"] == [1, 2, 3, 4, 5] and fake["page_after"] == ["a"]
