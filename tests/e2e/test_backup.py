"""`kms-ws backup`, `kms-ws backup verify` and `kms-ws restore` (issue 16, point 2), on
real server processes and real SQLite stores: an online backup under write load, with
values sealed under two master keys (a rotation paused half-way), restored into another
directory and served from there; refusals of a live or non-empty directory, of damaged
backups, a wrong passphrase or escrow key and missing key material, each one line and
changing nothing. The commands are run as docs/operations.md shows them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import sqlite3
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kms_ws.client import KmsClient

from ..support import softhsm
from ..support.server import ADMIN, ServerProcess, kms

pytestmark = pytest.mark.e2e

PASSPHRASE = "correct horse battery staple 16"
SQLITE = {"database_url": None}  # these stores are SQLite even when the suite runs on PostgreSQL


def check_one_line_refusal(res: subprocess.CompletedProcess[str], *words: str) -> str:
    """A refusal: exit status 1, one line on stderr naming the cause, no traceback."""
    assert res.returncode == 1, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kms-ws: "), res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _listing(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())
            if p.is_file() and not p.name.startswith("kms.db")}


def _escrow(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kms-ws backup escrow")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "escrow.pem", directory / "escrow-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _read_backup(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]


def _write_backup(path: Path, members: dict[str, bytes], fix_digests: bool = True) -> None:
    """A backup with the members given; the manifest's digests made to match (an attacker
    who edits a member can recompute them: only the checks behind them stop him)."""
    manifest = json.loads(members["manifest.json"])
    if fix_digests:
        for name, data in members.items():
            if name != "manifest.json":
                manifest["members"][name] = {"sha256": hashlib.sha256(data).hexdigest(),
                                             "size": len(data)}
    members = {**members, "manifest.json": json.dumps(manifest).encode()}
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _edited_db(members: dict[str, bytes], tmp: Path, sql: str) -> bytes:
    db = tmp / "edit.db"
    db.write_bytes(members["kms.db"])
    with sqlite3.connect(db) as conn:
        conn.execute(sql)
    data = db.read_bytes()
    db.unlink()
    return data


# ---- the backup under load --------------------------------------------------------------

def test_backup_under_write_load_restores_every_acknowledged_key(tmp_path: Path) -> None:
    source = ServerProcess(tmp_path / "source", config=SQLITE)
    source.bootstrap()
    source.start()
    acked: dict[str, bytes] = {}
    lock, errors = threading.Lock(), []
    stop = threading.Event()
    try:
        with KmsClient(source.url, *ADMIN) as c:
            for i in range(20):
                k = c.create_key(friendly_name=f"early-{i}")
                acked[k.key_id] = k.value or b""
        # a rotation paused half-way: values sealed under two master keys, two key files
        paused = kms("master-key", "rotate", "--data-dir", str(source.data_dir),
                     "--batch-size", "5", "--max-batches", "1", check=False)
        assert paused.returncode == 3, paused.stdout + paused.stderr
        assert len(list(source.data_dir.glob("master*.key"))) == 2

        started = threading.Barrier(4)

        def load(n: int) -> None:  # bounded: at most 60 CreateKey/StoreKey per thread
            try:
                with KmsClient(source.url, *ADMIN) as c:
                    for i in range(60):
                        if i % 2:
                            value = secrets.token_bytes(32)
                            key_id = c.store_key(value, friendly_name=f"stored-{n}-{i}")
                        else:
                            k = c.create_key(friendly_name=f"load-{n}-{i}")
                            key_id, value = k.key_id, k.value or b""
                        with lock:
                            acked[key_id] = value
                        if i == 0:
                            started.wait(timeout=60)
                        if stop.is_set():
                            return
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=load, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        started.wait(timeout=60)  # every thread has written; they go on writing
        with lock:
            before = dict(acked)
        out = tmp_path / "kms-backup.tar"
        made = kms("backup", "--data-dir", str(source.data_dir), "--include-master-key",
                   "--passphrase-stdin", str(out), stdin=PASSPHRASE + "\n")
        stop.set()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        with lock:
            assert len(acked) > len(before)  # writes went on around the backup
        source_cert = (source.data_dir / "server-signing.pem").read_bytes()
    finally:
        assert source.stop() == 0, source.stderr_text()

    assert "master key material included, wrapped (passphrase-scrypt-aes256gcm)" in made.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert PASSPHRASE not in made.stdout + made.stderr

    verified = kms("backup", "verify", "--passphrase-stdin", str(out), stdin=PASSPHRASE + "\n")
    assert "verified" in verified.stdout and "audit chain intact" in verified.stdout

    restored_dir = tmp_path / "restored"
    res = kms("restore", "--data-dir", str(restored_dir), "--passphrase-stdin", str(out),
              stdin=PASSPHRASE + "\n")
    assert f"restored {out} into {restored_dir}" in res.stdout
    assert "audit chain intact" in res.stdout
    assert PASSPHRASE not in res.stdout + res.stderr
    # both master keys travelled: the one of the paused rotation's old values too
    assert len(list(restored_dir.glob("master*.key"))) == 2
    assert stat.S_IMODE(restored_dir.stat().st_mode) == 0o700
    for p in restored_dir.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert (restored_dir / "server-signing.pem").read_bytes() == source_cert

    assert kms("audit", "verify", "--data-dir", str(restored_dir)).stdout.startswith(
        "audit chain intact")
    restored = ServerProcess(restored_dir, config=SQLITE)
    restored.start()
    try:
        with KmsClient(restored.url, *ADMIN) as c:
            for key_id, value in before.items():
                assert c.get_key(key_id).value == value, key_id
    finally:
        assert restored.stop() == 0, restored.stderr_text()
    assert kms("audit", "verify", "--data-dir", str(restored_dir)).returncode == 0


# ---- refusals ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict]]:
    """A running server with a few keys, and backups of it: with key material under a
    passphrase, for an escrow certificate, and without key material."""
    tmp = tmp_path_factory.mktemp("backups")
    srv = ServerProcess(tmp / "data", config=SQLITE)
    srv.bootstrap()
    srv.start()
    try:
        with KmsClient(srv.url, *ADMIN) as c:
            keys = {k.key_id: k.value for k in (c.create_key(friendly_name=f"k{i}")
                                               for i in range(3))}
        cert, key = _escrow(tmp)
        files = {"dir": tmp, "keys": keys, "escrow_key": key,
                 "passphrase": tmp / "with-keys.tar", "escrow": tmp / "escrow.tar",
                 "plain": tmp / "plain.tar"}
        kms("backup", "--data-dir", str(srv.data_dir), "--include-master-key",
            "--passphrase-stdin", str(files["passphrase"]), stdin=PASSPHRASE + "\n")
        kms("backup", "--data-dir", str(srv.data_dir), "--include-master-key",
            "--escrow-cert", str(cert), str(files["escrow"]))
        plain = kms("backup", "--data-dir", str(srv.data_dir), str(files["plain"]))
        assert "master key material NOT included" in plain.stdout
        yield srv, files
    finally:
        assert srv.stop() == 0, srv.stderr_text()


def test_restore_refuses_a_live_data_directory_and_changes_nothing(served) -> None:  # type: ignore[no-untyped-def]
    srv, files = served
    before = _listing(srv.data_dir)
    res = kms("restore", "--data-dir", str(srv.data_dir), "--passphrase-stdin",
              str(files["passphrase"]), stdin=PASSPHRASE + "\n", check=False)
    check_one_line_refusal(res, "is not empty")
    assert _listing(srv.data_dir) == before
    with KmsClient(srv.url, *ADMIN) as c:  # still serving its keys
        for key_id, value in files["keys"].items():
            assert c.get_key(key_id).value == value
    assert not [p for p in srv.data_dir.parent.iterdir() if ".restore-" in p.name]


def test_restore_refuses_a_non_empty_directory(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, files = served
    target = tmp_path / "target"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    res = kms("restore", "--data-dir", str(target), "--passphrase-stdin",
              str(files["passphrase"]), stdin=PASSPHRASE + "\n", check=False)
    check_one_line_refusal(res, "is not empty")
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]


def test_wrong_passphrase_is_refused(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, files = served
    for args in (["backup", "verify"], ["restore", "--data-dir", str(tmp_path / "r")]):
        res = kms(*args, "--passphrase-stdin", str(files["passphrase"]),
                  stdin="not the passphrase at all\n", check=False)
        check_one_line_refusal(res, "wrong passphrase")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["database", "manifest", "key material"])
def test_a_flipped_byte_is_refused(served, tmp_path: Path, where: str) -> None:  # type: ignore[no-untyped-def]
    _, files = served
    data = bytearray(files["passphrase"].read_bytes())
    members = _read_backup(files["passphrase"])
    needle = {"database": members["kms.db"][4096:4160],
              "manifest": b'"backup_id"',
              "key material": members["keys.sealed"][20:60]}[where]
    at = bytes(data).index(needle) + 5
    data[at] ^= 0x01
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(data))
    for args in (["backup", "verify"], ["restore", "--data-dir", str(tmp_path / "r")]):
        res = kms(*args, "--passphrase-stdin", str(damaged), stdin=PASSPHRASE + "\n",
                  check=False)
        check_one_line_refusal(res)
    assert not (tmp_path / "r").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.tar"]


def test_truncated_backup_is_refused(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, files = served
    cut = tmp_path / "cut.tar"
    cut.write_bytes(files["plain"].read_bytes()[:50000])
    check_one_line_refusal(kms("backup", "verify", str(cut), check=False))
    check_one_line_refusal(kms("restore", "--data-dir", str(tmp_path / "r"), str(cut),
                          check=False))
    assert not (tmp_path / "r").exists()


def test_missing_key_material_is_refused(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, files = served
    # a backup made without key material, restored without the key files kept apart
    res = kms("restore", "--data-dir", str(tmp_path / "r"), str(files["plain"]), check=False)
    check_one_line_refusal(res, "needs master key", "--master-key-dir")
    assert not (tmp_path / "r").exists()
    # a backup whose key material member was removed (the manifest made to agree)
    members = _read_backup(files["passphrase"])
    del members["keys.sealed"]
    manifest = json.loads(members["manifest.json"])
    del manifest["members"]["keys.sealed"]
    members["manifest.json"] = json.dumps(manifest).encode()
    stripped = tmp_path / "stripped.tar"
    _write_backup(stripped, members, fix_digests=False)
    res = kms("backup", "verify", "--passphrase-stdin", str(stripped),
              stdin=PASSPHRASE + "\n", check=False)
    check_one_line_refusal(res, "key material", "missing")


def test_backup_without_key_material_restores_with_the_key_files_kept_apart(
        served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, files = served
    form = kms("backup", "verify", str(files["plain"]))
    assert "form and database intact" in form.stdout
    full = kms("backup", "verify", "--master-key-dir", str(srv.data_dir), str(files["plain"]))
    assert "audit chain intact" in full.stdout
    target = tmp_path / "restored"
    res = kms("restore", "--data-dir", str(target), "--master-key-dir", str(srv.data_dir),
              str(files["plain"]))
    assert "audit chain intact" in res.stdout
    assert kms("audit", "verify", "--data-dir", str(target)).returncode == 0


def test_escrow_certificate_backup(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, files = served
    ok = kms("backup", "verify", "--escrow-key", str(files["escrow_key"]), str(files["escrow"]))
    assert "verified" in ok.stdout
    res = kms("restore", "--data-dir", str(tmp_path / "r"), str(files["escrow"]), check=False)
    check_one_line_refusal(res, "--escrow-key")
    _, other_key = _escrow(tmp_path)
    res = kms("restore", "--data-dir", str(tmp_path / "r"), "--escrow-key", str(other_key),
              str(files["escrow"]), check=False)
    check_one_line_refusal(res, "escrow key does not open")
    assert not (tmp_path / "r").exists()
    res = kms("restore", "--data-dir", str(tmp_path / "r"), "--escrow-key",
              str(files["escrow_key"]), str(files["escrow"]))
    assert "audit chain intact" in res.stdout


def test_a_swapped_database_does_not_open_the_key_material(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Another database put in a backup with key material, the digests recomputed: the key
    material is bound to the members it was made with."""
    _, files = served
    members = _read_backup(files["passphrase"])
    members["kms.db"] = _edited_db(members, tmp_path,
                                   "UPDATE keys SET friendly_name = 'renamed'")
    swapped = tmp_path / "swapped.tar"
    _write_backup(swapped, members)
    res = kms("backup", "verify", "--passphrase-stdin", str(swapped), stdin=PASSPHRASE + "\n",
              check=False)
    check_one_line_refusal(res, "key material does not open")


@pytest.mark.parametrize(("sql", "cause"), [
    ("UPDATE keys SET sealed_value = randomblob(length(sealed_value))", "sealed value"),
    ("UPDATE audit SET message = 'rewritten' WHERE chain_seq = 1", "audit chain"),
])
def test_a_store_that_does_not_check_out_is_refused(served, tmp_path: Path, sql: str,
                                                   cause: str) -> None:  # type: ignore[no-untyped-def]
    """A backup whose digests agree but whose store does not: a sealed value the master key
    does not open, an audit record edited. Restore checks before it reports success."""
    srv, files = served
    members = _read_backup(files["plain"])
    members["kms.db"] = _edited_db(members, tmp_path, sql)
    edited = tmp_path / "edited.tar"
    _write_backup(edited, members)
    for args in (["backup", "verify"], ["restore", "--data-dir", str(tmp_path / "r")]):
        res = kms(*args, "--master-key-dir", str(srv.data_dir), str(edited), check=False)
        check_one_line_refusal(res, cause)
    assert not (tmp_path / "r").exists()


def test_backup_refusals(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv, files = served
    # never over an existing file
    res = kms("backup", "--data-dir", str(srv.data_dir), str(files["plain"]), check=False)
    check_one_line_refusal(res, "exists")
    # the passphrase is never read from the command line; without a terminal, stdin it is
    res = subprocess.run([sys.executable, "-m", "kms_ws.cli", "backup", "--data-dir",
                          str(srv.data_dir), "--include-master-key", str(tmp_path / "b.tar")],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                         start_new_session=True)  # no controlling terminal either
    assert res.returncode == 1 and "--passphrase-stdin" in res.stderr
    res = kms("backup", "--data-dir", str(srv.data_dir), "--include-master-key",
              "--passphrase-stdin", str(tmp_path / "b.tar"), stdin="short\n", check=False)
    assert res.returncode == 1 and "at least 12 characters" in res.stderr
    assert not (tmp_path / "b.tar").exists()
    # a PostgreSQL store is backed up with pg_dump (nothing is connected to)
    pg = tmp_path / "pg"
    pg.mkdir()
    (pg / "kms-ws.json").write_text(json.dumps(
        {"database_url": "postgresql+psycopg://kms:secret-pw@127.0.0.1:1/kms"}))
    res = kms("backup", "--data-dir", str(pg), str(tmp_path / "pg.tar"), check=False)
    line = check_one_line_refusal(res, "pg_dump")
    assert "secret-pw" not in line
    assert os.listdir(tmp_path) == ["pg"]


def _pg_tool(postgres, name: str) -> str:  # type: ignore[no-untyped-def]
    """pg_dump/pg_restore beside the test cluster's server, else on the PATH (Debian's
    postgresql-client, which .ci/run installs with the server); missing: the test fails."""
    beside = postgres.bindir / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    assert found, f"{name} is not installed (Debian: postgresql-client)"
    return found


def test_postgresql_store_backed_up_with_pg_dump_as_documented(postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """docs/operations.md's PostgreSQL procedure: pg_dump while the server serves, the
    files kept from the data directory, pg_restore into an empty database, the checks,
    and a server on the restored store serving every key."""
    url = postgres.create_database()
    source = ServerProcess(tmp_path / "source", config={"database_url": url})
    source.bootstrap()
    source.start()
    try:
        with KmsClient(source.url, *ADMIN) as c:
            keys = {k.key_id: k.value for k in (c.create_key(friendly_name=f"pg{i}")
                                               for i in range(5))}
        refused = kms("backup", "--data-dir", str(source.data_dir), str(tmp_path / "b.tar"),
                      check=False)
        check_one_line_refusal(refused, "pg_dump")
        dump = tmp_path / "kms.pgdump"
        subprocess.run([_pg_tool(postgres, "pg_dump"), "--format=custom",
                        f"--file={dump}", url.replace("+psycopg", "", 1)],
                       check=True, capture_output=True, timeout=120)
    finally:
        assert source.stop() == 0, source.stderr_text()
    restored_url = postgres.create_database()
    subprocess.run([_pg_tool(postgres, "pg_restore"),
                    f"--dbname={restored_url.replace('+psycopg', '', 1)}", str(dump)],
                   check=True, capture_output=True, timeout=120)
    kept = tmp_path / "restored"
    kept.mkdir(mode=0o700)
    for p in [*source.data_dir.glob("master*.key"), source.data_dir / "server-signing.key",
              source.data_dir / "server-signing.pem"]:
        (kept / p.name).write_bytes(p.read_bytes())
        (kept / p.name).chmod(0o600)
    config = json.loads((source.data_dir / "kms-ws.json").read_text())
    (kept / "kms-ws.json").write_text(json.dumps({**config, "database_url": restored_url}))
    assert kms("audit", "verify", "--data-dir", str(kept)).stdout.startswith(
        "audit chain intact")
    assert "current master key" in kms("master-key", "status", "--data-dir", str(kept)).stdout
    restored = ServerProcess(kept)
    restored.start()
    try:
        with KmsClient(restored.url, *ADMIN) as c:
            for key_id, value in keys.items():
                assert c.get_key(key_id).value == value
    finally:
        assert restored.stop() == 0, restored.stderr_text()


@pytest.mark.needs("softhsm2")
def test_pkcs11_master_key_backup_restores_with_the_token(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With the master key in a PKCS#11 token (SoftHSM2) the key never leaves it: a backup
    with key material is refused; one without it restores, checked through the token the
    restored kms-ws.json names (every sealed value opens in the token)."""
    module = softhsm.module_path()
    monkeypatch.setenv("SOFTHSM2_CONF", "")  # restored after the test
    softhsm.configure(tmp_path / "hsm")
    label = softhsm.new_token()
    monkeypatch.setenv("KMS_WS_PKCS11_PIN", softhsm.PIN)
    data = tmp_path / "data"
    data.mkdir()
    (data / "kms-ws.json").write_text(json.dumps({**SQLITE, "master_key": {
        "provider": "pkcs11", "module": module, "token_label": label}}))
    srv = ServerProcess(data)
    srv.bootstrap()
    srv.start()
    try:
        with KmsClient(srv.url, *ADMIN) as c:
            keys = {k.key_id: k.value for k in (c.create_key() for _ in range(5))}
        refused = kms("backup", "--data-dir", str(data), "--include-master-key",
                      "--passphrase-stdin", str(tmp_path / "k.tar"), stdin=PASSPHRASE + "\n",
                      check=False)
        check_one_line_refusal(refused, "pkcs11", "never leave")
        out = tmp_path / "kms-backup-nokeys.tar"
        kms("backup", "--data-dir", str(data), str(out))
    finally:
        assert srv.stop() == 0, srv.stderr_text()
    assert "verified" in kms("backup", "verify", str(out)).stdout
    target = tmp_path / "restored"
    res = kms("restore", "--data-dir", str(target), str(out))
    assert "6 sealed value(s) open" in res.stdout  # 5 keys and the audit chain's key
    assert not list(target.glob("master*.key"))
    monkeypatch.setenv("KMS_WS_PKCS11_PIN", "wrong-pin")
    res = kms("restore", "--data-dir", str(tmp_path / "again"), str(out), check=False)
    check_one_line_refusal(res, label)
    assert not (tmp_path / "again").exists()
    monkeypatch.setenv("KMS_WS_PKCS11_PIN", softhsm.PIN)
    restored = ServerProcess(target)
    restored.start()
    try:
        with KmsClient(restored.url, *ADMIN) as c:
            for key_id, value in keys.items():
                assert c.get_key(key_id).value == value
    finally:
        assert restored.stop() == 0, restored.stderr_text()
