"""Backup and restore of a data directory (`kms-ws backup`, `kms-ws backup verify`,
`kms-ws restore`); docs/operations.md, "Backup and restore", is the operator's side.

A backup is one uncompressed tar file (0600) of these members:
- `manifest.json`: {"format": "kms-ws-backup", "format_version": 1, "kms_ws_version",
  "schema_version", "created" (UTC), "backup_id", "members": {name: {"sha256", "size"}},
  "master_keys": the ids of every master key the store needs, "master_key": {"included":
  false} or {"included": true, "wrapping": {...}, "nonce"}};
- `kms.db`: the SQLite database, copied online (store/backup.py: one consistent snapshot
  while the server serves);
- `kms-ws.json`: the configuration, when the data directory has one;
- `keys.sealed` (only with --include-master-key): every master-key file of the data
  directory (master.key and the master-<id>.key a rotation made: every key something in
  the store is sealed under) and the server's response-signing key and certificate, as
  JSON, AES-256-GCM under a random content key, with the backup id and the other
  members' digests as associated data; the content key wrapped under a passphrase
  (scrypt, AES-256-GCM) or an escrow certificate's RSA key (RSA-OAEP, SHA-256).

Restore and `backup verify` unpack into a private directory and check everything there
before anything is reported good: every member's sha256, SQLite's integrity_check, the
schema version, every master key the store needs opens, every sealed value opens under
it, and the audit chain verifies. Restore then renames that directory into place, so a
refused restore leaves nothing behind, and never writes into a non-empty directory.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from . import __version__, durable
from .app import make_provider
from .audit.chain import verify_store
from .config import CONFIG_FILE, Config, ConfigError, load
from .crypto.master_key import FileProvider, Keyring, MasterKeyError
from .crypto.random import random_bytes
from .crypto.sealing import SealError
from .security.certificates import SERVER_CERT_FILE, SERVER_KEY_FILE
from .service.rotation import unseal_row
from .store import backup as store_backup
from .store import migrations
from .store.engine import Database, sqlite_path

FORMAT, FORMAT_VERSION = "kms-ws-backup", 1
MANIFEST, DATABASE, KEYS = "manifest.json", "kms.db", "keys.sealed"
ROTATION_LOCK = ".master-key-rotation.lock"  # the lock `kms-ws master-key rotate` holds
SCRYPT = {"n": 2**17, "r": 8, "p": 1}  # 128 MiB, a fraction of a second per try
MIN_PASSPHRASE = 12
_MAX_SMALL = 16 * 1024 * 1024  # manifest, configuration, key material
_KEY_FILE = re.compile(r"^master(-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?"
                       r"\.key$")


class BackupError(Exception):
    """A refusal: one line saying what and why (no key bytes, passphrase or token)."""


@dataclass(frozen=True)
class Wrap:
    """How key material goes into a backup: under a passphrase or an escrow certificate."""
    passphrase: str | None = field(default=None, repr=False)
    escrow_cert: x509.Certificate | None = None


@dataclass(frozen=True)
class Unwrap:
    """What opens a backup's key material."""
    passphrase: str | None = field(default=None, repr=False)
    escrow_key: rsa.RSAPrivateKey | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Checked:
    """What a restore or verify found good."""
    schema_version: int
    master_keys: list[str]
    sealed_values: int
    audit_records: int
    notes: list[str]


# ---- backup ---------------------------------------------------------------------------

def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _aad(manifest: dict[str, Any]) -> bytes:
    """What the key material is bound to: this backup and its other members."""
    members = {n: m["sha256"] for n, m in sorted(manifest["members"].items()) if n != KEYS}
    return json.dumps({"backup_id": manifest["backup_id"], "members": members},
                      sort_keys=True, separators=(",", ":")).encode("ascii")


def _wrap_aad(manifest: dict[str, Any]) -> bytes:
    """What the wrapped content key is bound to: this backup (so that a wrong passphrase
    is told apart from altered members, which the content key's own AAD catches)."""
    return b"kms-ws-backup/1|" + str(manifest["backup_id"]).encode("ascii")


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _wrap_content_key(cek: bytes, wrap: Wrap, aad: bytes) -> dict[str, Any]:
    if wrap.escrow_cert is not None:
        public = wrap.escrow_cert.public_key()
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size < 2048:
            raise BackupError("the escrow certificate must carry an RSA key of 2048 bits "
                              "or more")
        return {"method": "escrow-rsa-oaep-sha256",
                "certificate_sha256": wrap.escrow_cert.fingerprint(hashes.SHA256()).hex(),
                "subject": wrap.escrow_cert.subject.rfc4514_string(),
                "wrapped_key": _b64(public.encrypt(cek, _oaep()))}
    assert wrap.passphrase is not None
    salt, nonce = random_bytes(16), random_bytes(12)
    kek = _scrypt(wrap.passphrase, salt, **SCRYPT)
    return {"method": "passphrase-scrypt-aes256gcm", **SCRYPT, "salt": _b64(salt),
            "nonce": _b64(nonce), "wrapped_key": _b64(AESGCM(kek).encrypt(nonce, cek, aad))}


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                        label=None)


def _key_material(cfg: Config, needed: list[str]) -> dict[str, bytes]:
    """Every master-key file of the data directory and the response-signing key pair;
    refused if a master key the store needs has no file."""
    files = FileProvider(cfg.data_dir).files()
    missing = [k for k in needed if k not in files]
    if missing:
        raise BackupError(f"the store needs master key(s) {', '.join(missing)}, which have "
                          f"no file in {cfg.data_dir}")
    out = {p.name: p.read_bytes() for p in files.values()}
    for name in (SERVER_KEY_FILE, SERVER_CERT_FILE):
        if (cfg.data_dir / name).is_file():
            out[name] = (cfg.data_dir / name).read_bytes()
    return out


def _rotation_lock(cfg: Config) -> IO[str]:
    """Hold the master-key rotation lock: no master key is made or destroyed while the key
    material is read."""
    lock = open(cfg.data_dir / ROTATION_LOCK, "w")  # noqa: SIM115 - the caller closes it
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise BackupError("a master-key rotation is running on this data directory: back "
                          "up after it ends") from None
    return lock


@dataclass(frozen=True)
class Made:
    path: Path
    schema_version: int
    master_keys: list[str]
    sealed_values: int
    key_material: str | None  # how it is wrapped, None when not included


def create(cfg: Config, out: Path, wrap: Wrap | None) -> Made:
    """Write the backup `out` (a new file, 0600) of the data directory in `cfg`, while
    the server may be serving."""
    db_file = sqlite_path(cfg.db_url)
    if db_file is None:
        raise BackupError("the store is not SQLite: back a PostgreSQL store up with pg_dump "
                          "(docs/operations.md, Backup and restore)")
    if not Path(db_file).is_file():
        raise BackupError(f"no store at {db_file}")
    if out.exists():
        raise BackupError(f"{out} exists: a backup never overwrites a file")
    if not out.parent.is_dir():
        raise BackupError(f"no directory {out.parent} to write {out.name} into")
    provider = cfg.master_key.get("provider", "file")
    if wrap is not None and provider != "file":
        raise BackupError(f"the master keys are in the {provider} provider and never leave "
                          "it: back the token up as its vendor says, and omit "
                          "--include-master-key")
    lock = _rotation_lock(cfg) if wrap is not None else None
    work = Path(tempfile.mkdtemp(prefix=".kms-ws-backup-", dir=out.parent))
    try:
        snap = work / DATABASE
        store_backup.snapshot(db_file, snap)
        problems = store_backup.integrity_problems(snap)
        if problems:
            raise BackupError(f"the live database fails SQLite's integrity check: "
                              f"{problems[0]}")
        found = store_backup.facts(snap)
        members: dict[str, Path | bytes] = {DATABASE: snap}
        config_file = cfg.data_dir / CONFIG_FILE
        if config_file.is_file():
            members[CONFIG_FILE] = config_file.read_bytes()
        manifest: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "kms_ws_version": __version__,
            "schema_version": found.schema_version,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "backup_id": str(uuid.uuid4()), "master_key_provider": provider,
            "master_keys": found.master_keys,
            "current_master_key": found.current_master_key,
            "members": {n: {"sha256": _sha256_file(v) if isinstance(v, Path)
                            else hashlib.sha256(v).hexdigest(),
                            "size": v.stat().st_size if isinstance(v, Path) else len(v)}
                        for n, v in members.items()},
            "master_key": {"included": False}}
        how = None
        if wrap is not None:
            material = json.dumps({n: _b64(b) for n, b in
                                   _key_material(cfg, found.master_keys).items()}).encode()
            cek, nonce = random_bytes(32), random_bytes(12)
            aad = _aad(manifest)
            sealed = AESGCM(cek).encrypt(nonce, material, aad)
            wrapping = _wrap_content_key(cek, wrap, _wrap_aad(manifest))
            how = wrapping["method"]
            manifest["master_key"] = {"included": True, "nonce": _b64(nonce),
                                      "wrapping": wrapping}
            manifest["members"][KEYS] = {"sha256": hashlib.sha256(sealed).hexdigest(),
                                         "size": len(sealed)}
            members[KEYS] = sealed
        partial = work / "backup.tar"
        _write_tar(partial, manifest, members)
        try:
            os.link(partial, out)  # never over an existing file
        except FileExistsError:
            raise BackupError(f"{out} exists: a backup never overwrites a file") from None
        durable.sync_directory(out.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if lock is not None:
            lock.close()
    return Made(out, found.schema_version, found.master_keys,
                sum(found.sealed_counts.values()), how)


def _write_tar(path: Path, manifest: dict[str, Any], members: dict[str, Path | bytes]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w",
                                                format=tarfile.PAX_FORMAT) as tar:
        now = int(time.time())
        items: list[tuple[str, Path | bytes]] = [
            (MANIFEST, json.dumps(manifest, indent=2).encode("utf-8")), *members.items()]
        for name, value in items:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = 0o600, now
            if isinstance(value, Path):
                info.size = value.stat().st_size
                with open(value, "rb") as src:
                    tar.addfile(info, src)
            else:
                info.size = len(value)
                tar.addfile(info, _Bytes(value))
        tar.close()
        f.flush()
        os.fsync(f.fileno())


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.at + n
        out, self.at = self.data[self.at:end], min(end, len(self.data))
        return out


# ---- reading a backup -----------------------------------------------------------------

def read_manifest(path: Path) -> dict[str, Any]:
    """The backup's manifest, checked for form (not yet the members)."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile() \
                    or first.size > _MAX_SMALL:
                raise BackupError(f"{path} is not a kms-ws backup (no manifest first)")
            data = _read_member(tar, first)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{path} is not a readable kms-ws backup ({_reason(exc)})") from None
    try:
        manifest = json.loads(data)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError("not a kms-ws backup manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"backup format {manifest.get('format_version')!r}; this kms-ws "
                             f"reads {FORMAT_VERSION}")
        for key in ("schema_version", "backup_id", "members", "master_keys", "master_key"):
            if key not in manifest:
                raise ValueError(f"the manifest has no {key}")
        members = manifest["members"]
        if not isinstance(members, dict) or DATABASE not in members:
            raise ValueError("the manifest names no database")
        if not all(isinstance(m, dict) and isinstance(m.get("sha256"), str)
                   for m in members.values()):
            raise ValueError("the manifest's members have no sha256")
        mk = manifest["master_key"]
        if not isinstance(mk, dict) or (mk.get("included")
                                        and not isinstance(mk.get("wrapping"), dict)):
            raise ValueError("the manifest's master_key entry is malformed")
        if mk.get("included") and KEYS not in members:
            raise ValueError("the manifest says key material is included, but it is missing")
    except ValueError as exc:
        raise BackupError(f"{path}: {exc}") from None
    return manifest


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(info)
    if f is None:
        raise BackupError(f"member {info.name} is not a file")
    return f.read()


def needs(manifest: dict[str, Any]) -> str | None:
    """How the backup's key material is wrapped ("passphrase", "escrow"), None if absent."""
    mk = manifest["master_key"]
    if not mk.get("included"):
        return None
    method = str(mk["wrapping"].get("method", ""))
    return "escrow" if method.startswith("escrow") else "passphrase"


def _unpack(path: Path, manifest: dict[str, Any], dest: Path) -> bytes | None:
    """Write the database and configuration into `dest`, each member checked against the
    manifest's sha256; the sealed key material (bytes) if the backup holds it."""
    expected = dict(manifest["members"])
    seen: set[str] = set()
    sealed: bytes | None = None
    try:
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:
                if info.name == MANIFEST and not seen:
                    seen.add(MANIFEST)
                    continue
                if info.name not in expected or info.name in seen or not info.isfile():
                    raise BackupError(f"{path}: unexpected member {info.name!r}")
                seen.add(info.name)
                src = tar.extractfile(info)
                assert src is not None
                h = hashlib.sha256()
                if info.name == DATABASE:
                    fd = os.open(dest / DATABASE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        while block := src.read(1 << 20):
                            h.update(block)
                            out.write(block)
                        out.flush()
                        os.fsync(out.fileno())
                    data = b""
                else:
                    if info.size > _MAX_SMALL:
                        raise BackupError(f"{path}: member {info.name} is too large")
                    data = src.read()
                    h.update(data)
                if h.hexdigest() != expected[info.name].get("sha256"):
                    raise BackupError(f"{path}: member {info.name} is damaged (its sha256 "
                                      "differs from the manifest's)")
                if info.name == CONFIG_FILE:
                    _write_config(dest, data)
                elif info.name == KEYS:
                    sealed = data
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{path} is not a readable kms-ws backup ({_reason(exc)})") from None
    missing = set(expected) - seen
    if missing:
        raise BackupError(f"{path}: member(s) {', '.join(sorted(missing))} missing")
    return sealed


def _write_config(dest: Path, data: bytes) -> None:
    """The backed-up configuration, without database_url: the restored store is the
    kms.db in the restored directory."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise BackupError("the backed-up kms-ws.json is not JSON") from None
    if isinstance(doc, dict):
        doc.pop("database_url", None)
    durable.create(dest / CONFIG_FILE, json.dumps(doc, indent=2).encode("utf-8"), 0o600)


def _open_material(manifest: dict[str, Any], sealed: bytes, unwrap: Unwrap) -> dict[str, bytes]:
    mk = manifest["master_key"]
    wrapping = mk["wrapping"]
    aad = _aad(manifest)
    try:
        if needs(manifest) == "escrow":
            if unwrap.escrow_key is None:
                raise BackupError("the key material is wrapped for an escrow certificate: "
                                  "give --escrow-key")
            try:
                cek = unwrap.escrow_key.decrypt(base64.b64decode(wrapping["wrapped_key"]),
                                                _oaep())
            except ValueError:
                raise BackupError("the escrow key does not open this backup's key material "
                                  "(another key, or the backup is damaged)") from None
        else:
            if not unwrap.passphrase:
                raise BackupError("the key material is wrapped under a passphrase: give "
                                  "--passphrase-stdin or run on a terminal")
            n, r, p = int(wrapping["n"]), int(wrapping["r"]), int(wrapping["p"])
            if not (2**14 <= n <= 2**20 and 1 <= r <= 16 and 1 <= p <= 4):
                raise BackupError("the backup's scrypt parameters are out of range")
            kek = _scrypt(unwrap.passphrase, base64.b64decode(wrapping["salt"]), n, r, p)
            try:
                cek = AESGCM(kek).decrypt(base64.b64decode(wrapping["nonce"]),
                                          base64.b64decode(wrapping["wrapped_key"]),
                                          _wrap_aad(manifest))
            except InvalidTag:
                raise BackupError("wrong passphrase, or the backup's key material is "
                                  "damaged") from None
        try:
            material = AESGCM(cek).decrypt(base64.b64decode(mk["nonce"]), sealed, aad)
        except (InvalidTag, ValueError):
            raise BackupError("the backup's key material does not open: it or the manifest "
                              "was altered") from None
        files = {str(n): base64.b64decode(v) for n, v in json.loads(material).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"the backup's key material is unreadable ({_reason(exc)})") from None
    for name in files:
        if not (_KEY_FILE.match(name) or name in (SERVER_KEY_FILE, SERVER_CERT_FILE)):
            raise BackupError(f"the backup's key material names an unexpected file {name!r}")
    return files


def _place_keys(dest: Path, files: dict[str, bytes]) -> None:
    for name, data in sorted(files.items()):
        durable.create(dest / name, data, 0o600)


def _keys_from_dir(dest: Path, source: Path) -> None:
    """Master-key files (and the response-signing key pair, if both are there) kept apart
    from the backup, copied in."""
    if not source.is_dir():
        raise BackupError(f"--master-key-dir {source} is not a directory")
    files = {p.name: p.read_bytes() for p in sorted(source.glob("master*.key"))
             if _KEY_FILE.match(p.name)}
    pair = [source / SERVER_KEY_FILE, source / SERVER_CERT_FILE]
    if all(p.is_file() for p in pair):
        files.update({p.name: p.read_bytes() for p in pair})
    _place_keys(dest, files)


def _check(dest: Path, manifest: dict[str, Any]) -> Checked:
    """Everything about the data directory `dest` a restore must be sure of."""
    notes: list[str] = []
    db_file = dest / DATABASE
    problems = store_backup.integrity_problems(db_file)
    if problems:
        raise BackupError(f"the database fails SQLite's integrity check: {problems[0]}")
    found = store_backup.facts(db_file)
    if found.schema_version != manifest["schema_version"]:
        raise BackupError(f"the database is at schema {found.schema_version}, the manifest "
                          f"says {manifest['schema_version']}")
    if found.schema_version > migrations.LATEST:
        raise BackupError(f"the backup's store schema {found.schema_version} is newer than "
                          f"this kms-ws ({migrations.LATEST}): restore with a newer kms-ws")
    if found.schema_version == 0:
        raise BackupError("the backup's database holds no kms-ws store")
    try:
        cfg = load(dest)
    except ConfigError as exc:
        raise BackupError(f"the backed-up configuration is refused: {exc}") from None
    db = Database(cfg.db_url)
    try:
        if found.schema_version < migrations.LATEST:
            db.migrate()
            notes.append(f"store migrated from schema {found.schema_version} to "
                         f"{migrations.LATEST}")
        if found.current_master_key is None:
            raise BackupError("the backup's store records no master key")
        if cfg.master_key.get("provider", "file") == "file":
            missing = [k for k in found.master_keys if k not in FileProvider(dest).files()]
            if missing:
                raise BackupError(
                    f"the store needs master key(s) {', '.join(missing)}, in neither the "
                    "backup nor --master-key-dir (the master-key files kept apart from a "
                    "backup made without --include-master-key)")
        keyring = Keyring(make_provider(cfg), found.current_master_key)
        for key_id in found.master_keys:
            try:
                keyring.aead_for(key_id)
            except MasterKeyError as exc:
                raise BackupError(f"master key {key_id}, which the store needs, does not "
                                  f"open: {exc}") from None
        count = 0
        try:
            for kind, a, b, mk, sealed in store_backup.sealed_rows(db_file):
                unseal_row(keyring, kind, a, b, mk, sealed)
                count += 1
            verdict = verify_store(db, keyring)
        except (SealError, MasterKeyError) as exc:
            raise BackupError(f"a sealed value does not open: {exc}") from None
        if not verdict.intact:
            raise BackupError(f"the audit chain does not verify: {verdict.line()}")
    finally:
        db.dispose()
    if not (dest / SERVER_KEY_FILE).is_file():
        notes.append("the response-signing key was not restored: a new one is made at the "
                     "first start, and clients that pin server-signing.pem must take the "
                     "new one")
    return Checked(found.schema_version, found.master_keys, count, verdict.records, notes)


def _material(path: Path, manifest: dict[str, Any], dest: Path, unwrap: Unwrap,
              master_key_dir: Path | None) -> Checked:
    sealed = _unpack(path, manifest, dest)
    if sealed is not None:
        _place_keys(dest, _open_material(manifest, sealed, unwrap))
    elif master_key_dir is not None:
        _keys_from_dir(dest, master_key_dir)
    return _check(dest, manifest)


def verify(path: Path, unwrap: Unwrap, master_key_dir: Path | None) -> Checked | None:
    """Check the backup as a restore would, in a private directory removed after; None
    when only its form could be checked (no key material and no --master-key-dir, on the
    file provider: the sealed values and audit chain need a master key)."""
    manifest = read_manifest(path)
    work = Path(tempfile.mkdtemp(prefix=".kms-ws-verify-"))
    try:
        if needs(manifest) is None and master_key_dir is None and \
                manifest.get("master_key_provider", "file") == "file":
            _unpack(path, manifest, work)
            problems = store_backup.integrity_problems(work / DATABASE)
            if problems:
                raise BackupError(f"the database fails SQLite's integrity check: "
                                  f"{problems[0]}")
            if store_backup.facts(work / DATABASE).schema_version != manifest["schema_version"]:
                raise BackupError("the database's schema version differs from the manifest's")
            return None
        return _material(path, manifest, work, unwrap, master_key_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def refuse_target(target: Path) -> None:
    """A restore writes only into a new or empty directory (never over a data directory
    in use or holding data)."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} is not empty: restore never writes into a data "
                          "directory in use or holding data; restore into a new or empty "
                          "directory")


def restore(path: Path, target: Path, unwrap: Unwrap, master_key_dir: Path | None) -> Checked:
    """Restore the backup into `target` (new or empty), checked in a private directory
    beside it, then renamed into place: nothing is left behind when it is refused."""
    refuse_target(target)
    manifest = read_manifest(path)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=target.parent))
    try:
        checked = _material(path, manifest, work, unwrap, master_key_dir)
        try:
            os.rename(work, target)  # replaces only a missing or empty directory
        except OSError:
            raise BackupError(f"{target} is no longer empty: restore never writes into a "
                              "data directory in use or holding data") from None
        durable.sync_directory(target.parent)
        return checked
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
