"""No plaintext key at rest: a key's bytes appear nowhere in the data directory."""

from __future__ import annotations

import base64
import os
import secrets

import pytest

from kms_ws.client import KmsClient, KmsFault

from ..support.server import ADMIN, ServerProcess

pytestmark = pytest.mark.e2e


def _forms(value: bytes) -> list[bytes]:
    return [value, value.hex().encode(), value.hex().upper().encode(),
            base64.b64encode(value), base64.b64encode(value)[:24]]


def test_key_bytes_appear_nowhere_in_the_data_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = ServerProcess(tmp_path / "data")
    srv.bootstrap()
    srv.start()
    try:
        with KmsClient(srv.url, *ADMIN) as c:
            stored = secrets.token_bytes(32)
            key_id = c.store_key(stored, friendly_name="at-rest")
            created = c.create_key(friendly_name="at-rest-2").value
            assert c.get_key(key_id).value == stored
            files = [p for p in srv.data_dir.rglob("*") if p.is_file()]
            names = {p.name for p in files}
            assert {"kms.db", "kms.db-wal", "kms-ws.log"} <= names  # WAL and log while live
            for value in (stored, created):
                assert value is not None
                for path in files:
                    data = path.read_bytes()
                    for form in _forms(value):
                        assert form not in data, f"key material in {path.name}"
    finally:
        assert srv.stop() == 0
    files = [p for p in srv.data_dir.rglob("*") if p.is_file()]
    for path in files:  # after the clean stop too (WAL checkpointed into the database)
        for form in _forms(stored):
            assert form not in path.read_bytes()


def test_logs_hold_no_password_token_or_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = ServerProcess(tmp_path / "data", workers=1)
    srv.bootstrap()
    srv.start()
    try:
        with KmsClient(srv.url, *ADMIN) as c:
            key = c.create_key(friendly_name="logged")
            with KmsClient(srv.url, ADMIN[0], "wrong-password-x") as bad, \
                    pytest.raises(KmsFault):
                bad.get_random_bytes(1)
            c.login()
            token = c._addressing.session_token
            assert c.get_key(key.key_id).value == key.value
            c.logout()
    finally:
        assert srv.stop() == 0
    log = (srv.data_dir / "kms-ws.log").read_bytes() + (srv.data_dir / "serve.stderr").read_bytes()
    assert b"GetKey" in log and b"CreateKey" in log  # one line per request is there
    assert log.count(b"kms_ws.access") >= 6
    for secret in (ADMIN[1].encode(), b"wrong-password-x", token.encode(), *_forms(key.value)):
        assert secret not in log


def _mode(path) -> int:  # type: ignore[no-untyped-def]
    return path.stat().st_mode & 0o777


def test_database_files_are_the_owners_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """kms.db, its -wal/-shm and the log are 0600 from their creation, whatever the umask."""
    srv = ServerProcess(tmp_path / "data")
    old = os.umask(0o022)  # a lax umask, as on most machines: the children inherit it
    try:
        srv.bootstrap()
        srv.start()
    finally:
        os.umask(old)
    try:
        with KmsClient(srv.url, *ADMIN) as c:
            c.create_key(friendly_name="perms")  # the WAL is written while the server runs
            files = {n: srv.data_dir / n for n in ("kms.db", "kms.db-wal", "kms.db-shm",
                                                   "kms-ws.log")}
            assert all(p.exists() for p in files.values())
            assert {n: _mode(p) for n, p in files.items()} == dict.fromkeys(files, 0o600)
    finally:
        assert srv.stop() == 0


def test_database_files_made_readable_are_narrowed_at_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = ServerProcess(tmp_path / "data")
    srv.bootstrap()
    db_file = srv.data_dir / "kms.db"
    wal, log = srv.data_dir / "kms.db-wal", srv.data_dir / "kms-ws.log"
    wal.write_bytes(b"")  # an empty WAL left by an older kms-ws
    log.write_bytes(b"")  # and its log
    for path in (db_file, wal, log):
        path.chmod(0o644)
    srv.start()
    try:
        assert _mode(db_file) == 0o600 and _mode(wal) == 0o600 and _mode(log) == 0o600
        with KmsClient(srv.url, *ADMIN) as c:
            assert c.create_key(friendly_name="still-works").value
    finally:
        assert srv.stop() == 0
