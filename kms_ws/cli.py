"""The `kms-ws` command."""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from .config import (
    DEFAULT_DATA_DIR,
    DEFAULT_HOST,
    DEFAULT_PORT,
    LOG_FORMATS,
    LOG_LEVELS,
    Config,
    ConfigError,
    load,
)
from .lifetime import die_with_parent

DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/wsman"

# Each command imports what it runs inside its function, so `kms-ws --help` and the client
# commands start without loading the server; none of these imports hides an import cycle
# (tests/unit/test_import_layers.py walks them too).


def _config(args: argparse.Namespace) -> Config:
    path = Path(args.data_dir)
    if path.exists() and not path.is_dir():
        raise SystemExit(f"kms-ws: the data directory {path} is not a directory")
    return load(path)


def _existing(args: argparse.Namespace) -> Config:
    """The configuration of a data directory that must exist: commands that read or
    maintain one (init, serve and the bootstrap adds make it)."""
    path = Path(args.data_dir)
    if not path.exists():
        raise SystemExit(f"kms-ws: no data directory {path}: run 'kms-ws init --data-dir "
                         f"{path}' first, or name it with --data-dir")
    return _config(args)


def cmd_init(args: argparse.Namespace) -> int:
    from .app import init_data_dir
    db, mk = init_data_dir(_config(args))
    db.dispose()
    print(f"data directory {args.data_dir} ready (master key {mk.key_id})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve
    if bool(args.tls_cert) != bool(args.tls_key):
        print("kms-ws: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    cfg = _config(args).with_overrides(
        host=args.host, port=args.port, workers=args.workers,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        tls_client_ca=Path(args.tls_client_ca) if args.tls_client_ca else None,
        log_level=args.log_level, log_format=args.log_format)
    if args.allow_basic_over_http:
        from dataclasses import replace
        cfg = replace(cfg, security=replace(cfg.security, allow_basic_over_http=True))
    serve(cfg)
    return 0


def cmd_deliver(args: argparse.Namespace) -> int:
    """The UpdatePending delivery loop (`serve` starts one per server, naming itself as
    --parent: this process ends with it)."""
    if args.parent is not None:
        die_with_parent(args.parent)  # first: the parent may already be gone
    import signal
    import threading

    from .app import run_deliverer
    from .logs import configure_logging
    cfg = _existing(args).with_overrides(log_level=args.log_level, log_format=args.log_format)
    configure_logging(cfg.log_path, cfg.log_level, cfg.log_format)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_deliverer(cfg, stop)
    return 0


def _terminal() -> bool:
    """Is there a terminal to ask on? getpass asks on the controlling terminal
    (/dev/tty), not on standard input, which may be redirected meanwhile (a key value
    piped in, the password typed)."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not _terminal():
        raise SystemExit("kms-ws: no terminal to ask for the password on: give it on "
                         "standard input with --password-stdin")
    else:
        password = getpass.getpass("password: ")
    if len(password) < 8:
        raise SystemExit("kms-ws: a password has at least 8 characters")
    return password


@contextmanager
def _offline_service(cfg: Config) -> Iterator[Any]:
    """The service on the data directory, for offline commands run by the local operator
    (service.operator): their audit records are chained like every other."""
    from .app import init_data_dir
    from .service.dispatch import KmsService
    db, keyring = init_data_dir(cfg)
    try:
        yield KmsService(db, keyring, cfg.security)
    finally:
        db.dispose()


def cmd_client_add(args: argparse.Namespace) -> int:
    """Offline: register a KMS client in the data directory (bootstrap): AdminCreate, run
    by the local operator; the realms it names are made when missing."""
    from .domain.errors import AlreadyExists, KmsError
    from .domain.model import CredentialType
    from .service.admin.messages import AdminRequest
    from .service.messages import Credential
    from .service.operator import LocalOperator

    cfg = _config(args)  # a bad data directory is told before the password is asked
    cred = Credential(CredentialType.ASYMMETRIC_KEY, values=(Path(args.cert).read_bytes(),)) \
        if args.cert else Credential(CredentialType.USERNAME_PASSWORD, username=args.name,
                                     password=_read_password(args))
    realms = tuple(args.realm or [cfg.security.default_realm])
    doc = {"Name": args.name, "Administrator": "true" if args.admin else "false",
           "RealmAssociations": {"RealmAssociation": [{"Realm": r, "Right": list(args.right)}
                                                      for r in realms]}}
    try:
        operator = LocalOperator(realms=realms)
        with _offline_service(cfg) as service:
            result = service.run_as_operator(
                "AdminCreate", AdminRequest("Create", "Client", document=doc, credential=cred),
                operator)
    except AlreadyExists:
        print(f"kms-ws: client {args.name!r} or its certificate exists", file=sys.stderr)
        return 1
    except KmsError as exc:
        raise SystemExit(f"kms-ws: {exc.reason}") from None
    print(result.documents[0]["ClientId"])
    return 0


def cmd_client_list(args: argparse.Namespace) -> int:
    from .app import init_data_dir
    from .domain.realms import format_rights
    db, _ = init_data_dir(_existing(args))
    with db.unit_of_work() as uow:
        for ep in uow.endpoints.list_clients():
            realms = " ".join(f"{r}({format_rights(g)})" for r, g in sorted(ep.grants.items()))
            print(f"{ep.endpoint_id}  {ep.kind.value:6} {ep.state.value:8} "
                  f"{'admin ' if ep.is_admin else ''}{ep.name}  {realms}")
    db.dispose()
    return 0


def cmd_report_spread_keys(args: argparse.Namespace) -> int:
    """Offline: keys in more than one realm (made before keys stopped going into every
    realm where their creator may create), with their creators, to review."""
    from datetime import datetime

    from .app import init_data_dir
    from .store.reports import spread_keys
    db, _ = init_data_dir(_existing(args))
    with db.transaction() as conn:
        keys = spread_keys(conn)
    db.dispose()
    print(json.dumps({"count": len(keys), "keys": keys}, indent=2,
                     default=lambda v: v.isoformat() + "Z" if isinstance(v, datetime) else str(v)))
    return 0


def cmd_client_unlock(args: argparse.Namespace) -> int:
    """Offline: unlock a client locked by failed authentications, on the data directory
    (the server may be running: every worker sees it at its next request): AdminGet and
    AdminEdit (State Active), run by the local operator."""
    from .domain.errors import KmsError, NotFound
    from .service.admin.messages import AdminRequest
    from .service.operator import LocalOperator
    operator = LocalOperator(client=args.name)
    try:
        with _offline_service(_existing(args)) as service:
            doc = service.run_as_operator("AdminGet", AdminRequest("Get", "Client", args.name),
                                          operator).documents[0]
            if doc["State"] != "Locked":
                print(f"client {args.name} is not locked")
                return 0
            service.run_as_operator("AdminEdit", AdminRequest(
                "Edit", "Client", document={**doc, "State": "Active"}), operator)
    except NotFound:
        print(f"kms-ws: no client named {args.name!r}", file=sys.stderr)
        return 1
    except KmsError as exc:
        print(f"kms-ws: {exc.reason}", file=sys.stderr)
        return 1
    print(f"client {args.name} unlocked")
    return 0


def cmd_client_edit(args: argparse.Namespace) -> int:
    """Offline: change a client on the data directory — the way back in for a locked-out
    sole administrator: a new password, administrator or not, Active or Disabled, rights
    in a realm. AdminGet, AdminEdit and AdminAssociate run by the local operator (its
    rules, its audit records), never a write of its own."""
    from .domain.errors import KmsError, NotFound
    from .service.admin.messages import AdminRequest, Ref
    from .service.operator import LocalOperator
    if args.right and not args.realm:
        raise SystemExit("kms-ws: --right goes with --realm")
    if args.password_stdin is False and args.admin is None and not args.state and \
            not args.realm:
        raise SystemExit("kms-ws: nothing to change: give --password-stdin, --admin or "
                         "--no-admin, --state, or --realm (with --right)")
    cfg = _existing(args)
    password = _read_password(args) if args.password_stdin else None
    try:
        operator = LocalOperator(realms=tuple(args.realm), client=args.name)
        with _offline_service(cfg) as service:
            doc = service.run_as_operator("AdminGet", AdminRequest("Get", "Client", args.name),
                                          operator).documents[0]
            if password is not None or args.admin is not None or args.state:
                edit = dict(doc)
                if password is not None:
                    value = password.encode("utf-8")
                    edit["Credentials"] = {"CredentialValue": [{
                        "Length": len(value), "Value": base64.b64encode(value).decode()}]}
                if args.admin is not None:
                    edit["Administrator"] = "true" if args.admin else "false"
                if args.state:
                    edit["State"] = args.state
                doc = service.run_as_operator("AdminEdit", AdminRequest(
                    "Edit", "Client", document=edit), operator).documents[0]
            for realm in args.realm:
                doc = service.run_as_operator("AdminAssociate", AdminRequest(
                    "Associate", "Client", doc["ClientId"], target=Ref("Realm", realm),
                    rights=tuple(args.right)), operator).documents[0]
    except NotFound:
        print(f"kms-ws: no client named {args.name!r}", file=sys.stderr)
        return 1
    except KmsError as exc:
        print(f"kms-ws: {exc.reason}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in doc.items() if k != "Credentials"}, indent=2,
                     default=str))
    return 0


def cmd_template_add(args: argparse.Namespace) -> int:
    """Offline: add a key template to the data directory: AdminCreate, run by the local
    operator (its rules and audit record); the realms it names (default: the default
    realm) are made when missing."""
    from .domain.errors import AlreadyExists, KmsError
    from .service.admin.messages import AdminRequest
    from .service.operator import LocalOperator

    cfg = _config(args)
    realms = tuple(args.realm or [cfg.security.default_realm])
    doc = {"FriendlyName": args.name, "CipherType": args.cipher,
           "KeyLength": str(args.length) if args.length else None,
           "TCached": str(args.t_cached), "Description": args.description,
           "AttributeAssociations": {"Attribute": [
               {"Name": n, "Value": v} for n, v in (_pair(a) for a in args.attribute)]},
           "RealmAssociations": {"RealmAssociation": [{"Realm": r} for r in realms]}}
    try:
        operator = LocalOperator(realms=realms)
        with _offline_service(cfg) as service:
            result = service.run_as_operator(
                "AdminCreate", AdminRequest("Create", "KeyTemplate",
                                            document={k: v for k, v in doc.items()
                                                      if v is not None}),
                operator)
    except AlreadyExists:
        print(f"kms-ws: template {args.name!r} exists", file=sys.stderr)
        return 1
    except KmsError as exc:
        print(f"kms-ws: {exc.reason}", file=sys.stderr)
        return 1
    print(result.documents[0]["TemplateId"])
    return 0


def cmd_master_key_status(args: argparse.Namespace) -> int:
    from .app import init_data_dir
    from .service import rotation
    db, keyring = init_data_dir(_existing(args))
    st = rotation.state(db)
    db.dispose()
    print(f"current master key {st.current} ({keyring.provider.name} provider)")
    for mk, n in sorted(st.counts.items()):
        print(f"  {mk}: seals {n} value(s){'  <- current' if mk == st.current else ''}")
    print(f"pending re-seal: {st.pending}")
    return 0


def cmd_master_key_rotate(args: argparse.Namespace) -> int:
    """Online: re-seal everything under a new master key; resumable; retires old keys."""
    import fcntl
    import time

    from .app import init_data_dir
    from .service import rotation
    cfg = _existing(args)
    db, keyring = init_data_dir(cfg)
    lock = open(cfg.data_dir / ".master-key-rotation.lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("kms-ws: another master-key rotation (or a backup with key material) is "
              "running on this data directory",
              file=sys.stderr)
        lock.close()
        db.dispose()
        return 1
    try:
        current, resumed = rotation.begin(db, keyring)
        total = rotation.state(db).pending
        print(f"{'resuming' if resumed else 'started'} rotation to master key {current}: "
              f"{total} value(s) to re-seal", flush=True)
        done = batches = 0
        after_key = ""
        while True:
            if args.max_batches is not None and batches >= args.max_batches:
                left = rotation.state(db).pending
                print(f"paused after {batches} batch(es): {left} left; run 'kms-ws master-key "
                      "rotate' again to resume", flush=True)
                return 3
            batch = rotation.reseal_batch(db, keyring, args.batch_size, after_key)
            if batch.looked_at == 0:
                break
            after_key = batch.after_key
            done, batches = done + batch.resealed, batches + 1
            print(f"re-sealed {done}/{max(total, done)}", flush=True)
            if args.throttle_ms:
                time.sleep(args.throttle_ms / 1000)
        retired = rotation.finish(db, keyring)
        if retired is None:  # values sealed under an old key appeared meanwhile
            print("values under an older key remain; run again to finish", flush=True)
            return 3
        print(f"done: {done} value(s) re-sealed under {current}; retired "
              f"{', '.join(retired) or 'no key'}", flush=True)
        return 0
    except KeyboardInterrupt:
        print("interrupted; every finished batch is kept: run 'kms-ws master-key rotate' "
              "again to resume", file=sys.stderr, flush=True)
        return 130
    finally:
        lock.close()
        db.dispose()


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Offline (and safe while the server runs: one read-only snapshot): verify the audit
    chain. Exit 0 intact, 1 broken (the line says where first), 2 cannot verify."""
    from .app import open_keyring
    from .audit.chain import verify_store
    from .crypto.master_key import MasterKeyError
    from .crypto.sealing import SealError
    from .store import migrations
    from .store.engine import Database, sqlite_path
    try:
        cfg = _existing(args)
    except (SystemExit, ConfigError) as exc:  # exit 1 would read "broken": it is 2
        print(exc.code if isinstance(exc, SystemExit) else f"kms-ws: {exc}", file=sys.stderr)
        return 2
    path = sqlite_path(cfg.db_url)
    if path is not None and not Path(path).is_file():
        print(f"kms-ws: no store at {path}", file=sys.stderr)
        return 2
    db = Database(cfg.db_url)
    try:
        with db.transaction(read_only=True) as conn:
            version = migrations.stored_version(conn)
        if version < migrations.LATEST:
            print(f"kms-ws: the store is at schema {version}, before the audit chain "
                  f"({migrations.LATEST}): start the server or run 'kms-ws init' to migrate "
                  "it", file=sys.stderr)
            return 2
        try:
            verdict = verify_store(db, open_keyring(cfg, db), dict(args.anchor))
        except MasterKeyError as exc:
            print(f"kms-ws: cannot verify: {exc}", file=sys.stderr)
            return 2
        except SealError:
            print("audit chain BROKEN: the chain's key does not open under the master key "
                  "its head row names: the head row was altered")
            return 1
    finally:
        db.dispose()
    print(verdict.line())
    if args.all:
        for finding in verdict.findings[1:]:
            print(f"  also: {finding}")
    return 0 if verdict.intact else 1


def _anchor(text: str) -> tuple[int, str]:
    seq, sep, mac = text.partition(":")
    if not sep or not seq.isdigit() or int(seq) < 1 or len(mac) != 64 or \
            any(c not in "0123456789abcdefABCDEF" for c in mac):
        raise argparse.ArgumentTypeError(f"expected SEQ:MAC (a place and 64 hex digits, as "
                                         f"syslog's 'head=' shows it), got {text!r}")
    return int(seq), mac.lower()


def cmd_wsdl(args: argparse.Namespace) -> int:
    from .resources import schema_dir
    from .soap.wsdl import build_client_wsdl, build_wsdl
    data = (build_client_wsdl if args.client_service else build_wsdl)(schema_dir())
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(args.output).write_bytes(data)
    return 0


# ---- online client commands ---------------------------------------------------------------

def _client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from cryptography import x509

    from .client import KmsClient, load_signing_key
    if not args.url.startswith(("http://", "https://")):
        raise SystemExit(f"kms-ws: --url {args.url} is no http:// or https:// URL")
    password = None
    if args.user:
        password = _read_password(args)
    signing = None
    if args.signing_key:
        try:
            signing = load_signing_key(Path(args.signing_key),
                                       Path(args.signing_cert) if args.signing_cert else None,
                                       key_name=args.key_name)
        except (ValueError, TypeError) as exc:  # not PEM, encrypted, or not EC/RSA
            raise SystemExit(f"kms-ws: --signing-key {args.signing_key}: {exc}") from None
    server_cert = None
    if args.server_cert:
        server_cert = Path(args.server_cert).read_bytes()
        try:
            x509.load_pem_x509_certificate(server_cert)
        except ValueError:
            raise SystemExit(f"kms-ws: --server-cert {args.server_cert} is not a PEM "
                             "certificate (the server's server-signing.pem)") from None
    return KmsClient(args.url, args.user, password,
                     verify=args.ca if args.ca else not args.insecure, signing_key=signing,
                     server_cert=server_cert)


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"kms-ws: expected NAME=VALUE, got {text!r}")
    return name, value


def _key_doc(key: Any, show_value: bool) -> dict[str, Any]:
    out = {"key_id": key.key_id, "friendly_name": key.friendly_name, "state": key.state,
           "version": key.version, "cipher_type": key.cipher_type, "t_cached": key.t_cached,
           "attributes": key.attributes, "datasets": key.datasets, "realms": key.realms}
    if show_value and key.value is not None:
        out["value_b64"] = base64.b64encode(key.value).decode()
    return out


def _print_key(key, show_value: bool) -> None:  # type: ignore[no-untyped-def]
    print(json.dumps(_key_doc(key, show_value), indent=2, default=str))


def cmd_create_key(args: argparse.Namespace) -> int:
    with _client(args) as c:
        key = c.create_key(friendly_name=args.name, template=args.template,
                           datasets=[_pair(d) for d in args.dataset] or None,
                           length=args.length, cipher_type=args.cipher,
                           attributes=dict(_pair(a) for a in args.attribute) or None,
                           realms=args.realm)
    _print_key(key, args.show_value)
    return 0


def cmd_get_key(args: argparse.Namespace) -> int:
    if not (args.key_id or args.name or args.dataset):
        raise SystemExit("kms-ws get-key: name the key: KEY_ID, --name NAME or "
                         "--dataset NAME=VALUE")
    if args.all_bound:
        if not args.dataset or args.usage != "Decrypt" or args.key_id or args.name:
            raise SystemExit("kms-ws: --all-bound goes with --dataset and --usage Decrypt")
        with _client(args) as c:
            keys, more = c.keys_for_decryption([_pair(d) for d in args.dataset])
        print(json.dumps({"keys": [_key_doc(k, args.show_value) for k in keys], "more": more},
                         indent=2, default=str))
        return 0
    with _client(args) as c:
        key = c.get_key(key_id=args.key_id, friendly_name=args.name,
                        datasets=[_pair(d) for d in args.dataset] or None, usage=args.usage)
    _print_key(key, args.show_value)
    return 0


def cmd_bindings(args: argparse.Namespace) -> int:
    """GetBindings: which keys protected a data set, which data sets a key protected."""
    if bool(args.key) == bool(args.dataset):
        raise SystemExit("kms-ws: give --key KEY_ID or --dataset NAME=VALUE")
    with _client(args) as c:
        found, more = c.get_bindings(_pair(args.dataset) if args.dataset else None,
                                     key_id=args.key, max_records=args.max)
    print(json.dumps({"bindings": found, "more": more}, indent=2, default=str))
    return 0


def _key_value(args: argparse.Namespace) -> bytes:
    """The key StoreKey sends: --hex, or base64 on standard input after the password line
    (read through the same text stream as the password, once that is read)."""
    try:
        if args.value_stdin:
            return base64.b64decode(sys.stdin.read().strip(), validate=True)
        return bytes.fromhex(args.hex)
    except ValueError:
        raise SystemExit("kms-ws: the key is not " + ("base64" if args.value_stdin
                                                        else "hex")) from None


def cmd_store_key(args: argparse.Namespace) -> int:
    with _client(args) as c:  # reads the password first
        value = _key_value(args)
        print(c.store_key(value, friendly_name=args.name,
                          datasets=[_pair(d) for d in args.dataset] or None, realms=args.realm,
                          attributes=dict(_pair(a) for a in args.attribute) or None,
                          description=args.description, cipher_type=args.cipher))
    return 0


def cmd_endpoint_status(args: argparse.Namespace) -> int:
    """§6.10 GetStatus: the server asks a subscribed endpoint for its status."""
    with _client(args) as c:
        status = c.get_endpoint_status(args.subscription, locale=args.locale,
                                       target_of_interest=args.target)
    print(json.dumps(status, indent=2))
    return 0


def cmd_random(args: argparse.Namespace) -> int:
    with _client(args) as c:
        data = c.get_random_bytes(args.n)
    print(data.hex() if args.hex else base64.b64encode(data).decode())
    return 0


# ---- parser ---------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kms-ws", description=(
        "kms-ws: an IEEE P1619.3 key management server (SOAP 1.2 / WS-Management)."))
    p.add_argument("--version", action="version", version=f"kms-ws {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_dir(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR),
                        help="data directory (database, master key, log); default ./kms-data")

    sp = sub.add_parser("init", help="create the data directory, master key and database")
    data_dir(sp)
    sp.set_defaults(func=cmd_init)

    sp = sub.add_parser("serve", help="run the server (gunicorn, multi-worker)")
    data_dir(sp)
    sp.add_argument("--host", help=f"listen address (default {DEFAULT_HOST})")
    sp.add_argument("--port", type=int, help=f"listen port (default {DEFAULT_PORT})")
    sp.add_argument("--workers", type=int, help="worker processes (default 2: one per core)")
    sp.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    sp.add_argument("--tls-key", help="PEM private key of --tls-cert")
    sp.add_argument("--tls-client-ca", help="PEM CA bundle: accept TLS client certificates "
                    "it issued (mapped to clients registered with that certificate)")
    sp.add_argument("--allow-basic-over-http", action="store_true",
                    help="accept passwords and HMAC secrets without TLS (local use only)")
    _log_options(sp)
    sp.set_defaults(func=cmd_serve)

    client = sub.add_parser("client", help="manage KMS clients in the data directory (offline)")
    csub = client.add_subparsers(dest="client_command", required=True, metavar="ACTION")
    sp = csub.add_parser("add", help="register a client with a password or an X.509 "
                         "certificate (bootstrap)")
    data_dir(sp)
    sp.add_argument("name")
    sp.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of standard input")
    sp.add_argument("--cert", help="PEM certificate instead of a password: the client signs "
                    "its requests (WS-Security) or presents it as a TLS client certificate")
    sp.add_argument("--realm", action="append", default=[],
                    help="realm URI (repeatable); default realm://localhost/default")
    sp.add_argument("--right", action="append", default=[],
                    choices=("Create", "Delete", "Edit", "Read", "Reference"),
                    help="its right in each --realm (repeatable; default: all of them)")
    sp.add_argument("--admin", action="store_true",
                    help="an administrator (registers clients, `kms-ws admin ...`)")
    sp.set_defaults(func=cmd_client_add)
    sp = csub.add_parser("list", help="list registered clients and PEPs")
    data_dir(sp)
    sp.set_defaults(func=cmd_client_list)
    sp = csub.add_parser("unlock", help="unlock a client locked by failed authentications "
                         "(on the data directory: works with the server stopped)")
    data_dir(sp)
    sp.add_argument("name", help="the client's name")
    sp.set_defaults(func=cmd_client_unlock)
    sp = csub.add_parser("edit", help="change a client in the data directory (e.g. a "
                         "locked-out sole administrator): password, administrator, state, "
                         "rights")
    data_dir(sp)
    sp.add_argument("name", help="the client's name")
    sp.add_argument("--password-stdin", action="store_true",
                    help="its new password: the first line of standard input (its sessions "
                    "end)")
    sp.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None,
                    help="make it an administrator, or not")
    sp.add_argument("--state", choices=("Active", "Disabled"),
                    help="Active also unlocks it")
    sp.add_argument("--realm", action="append", default=[],
                    help="grant it rights in this realm (made when missing; repeatable)")
    sp.add_argument("--right", action="append", default=[],
                    choices=("Create", "Delete", "Edit", "Read", "Reference"),
                    help="its rights in each --realm (repeatable; default: all of them)")
    sp.set_defaults(func=cmd_client_edit)

    tpl = sub.add_parser("template", help="manage key templates in the data directory (offline)")
    tsub = tpl.add_subparsers(dest="template_command", required=True, metavar="ACTION")
    sp = tsub.add_parser("add", help="add a key template")
    data_dir(sp)
    sp.add_argument("name")
    sp.add_argument("--cipher", help="cipher OID (default AES-256-GCM)")
    sp.add_argument("--length", type=int, help="key length in bits")
    sp.add_argument("--t-cached", type=int, default=3600, help="seconds a key may be cached")
    sp.add_argument("--description")
    sp.add_argument("--attribute", action="append", default=[], metavar="NAME=VALUE")
    sp.add_argument("--realm", action="append", default=[],
                    help="realm URI (repeatable); default realm://localhost/default")
    sp.set_defaults(func=cmd_template_add)

    report = sub.add_parser("report", help="reports to review, from the data directory "
                            "(offline)")
    rsub = report.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    sp = rsub.add_parser("spread-keys", help="keys in more than one realm: their realms, "
                         "when and by whom they were made (JSON)")
    data_dir(sp)
    sp.set_defaults(func=cmd_report_spread_keys)

    sp = sub.add_parser("deliver", help="run the UpdatePending delivery loop (serve starts it)")
    data_dir(sp)
    sp.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # serve's pid: end with it
    _log_options(sp)
    sp.set_defaults(func=cmd_deliver)

    _master_key_parser(sub, data_dir)
    _backup_parsers(sub, data_dir)

    audit = sub.add_parser("audit", help="the tamper-evident audit chain (offline)")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    sp = asub.add_parser("verify", help="verify the audit chain: exit 0 intact, 1 broken "
                         "(one line says where first), 2 cannot verify")
    data_dir(sp)
    sp.add_argument("--anchor", action="append", default=[], type=_anchor, metavar="SEQ:MAC",
                    help="a chain head sent to syslog (head=SEQ:MAC): the chain must still "
                    "hold that MAC at that place (repeatable)")
    sp.add_argument("--all", action="store_true", help="list every finding, not the first")
    sp.set_defaults(func=cmd_audit_verify)

    sp = sub.add_parser("wsdl", help="write the WSDL generated from the schemas")
    sp.add_argument("-o", "--output", default="-")
    sp.add_argument("--client-service", action="store_true",
                    help="the KMS Client Service WSDL (wsdl/kms-client.wsdl) instead")
    sp.set_defaults(func=cmd_wsdl)

    def online(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--url", default=DEFAULT_URL, help=f"server URL (default {DEFAULT_URL})")
        sp.add_argument("--user", help="client name (HTTP Basic)")
        sp.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input (else prompt)")
        sp.add_argument("--ca", help="CA bundle to verify the server's certificate")
        sp.add_argument("--insecure", action="store_true", help="do not verify TLS")
        sp.add_argument("--signing-key", help="PEM private key: sign requests (WS-Security)")
        sp.add_argument("--signing-cert", help="PEM certificate of --signing-key (sent with "
                        "each request)")
        sp.add_argument("--key-name", help="registered client name: name the key instead of "
                        "sending --signing-cert")
        sp.add_argument("--server-cert", help="the server's response-signing certificate "
                        "(server-signing.pem): pin it (else fetched once from the server)")

    sp = sub.add_parser("create-key", help="CreateKey: generate a key on the server")
    online(sp)
    sp.add_argument("--name", help="friendly name")
    sp.add_argument("--template", help="template id or friendly name")
    sp.add_argument("--dataset", action="append", default=[], metavar="NAME=VALUE")
    sp.add_argument("--attribute", action="append", default=[], metavar="NAME=VALUE")
    sp.add_argument("--length", type=int, default=256, help="bits (default 256)")
    sp.add_argument("--cipher", help="cipher OID")
    _key_realm_option(sp)
    sp.add_argument("--show-value", action="store_true", help="print the key (base64)")
    sp.set_defaults(func=cmd_create_key)

    sp = sub.add_parser("get-key", help="GetKey: by id, friendly name or data sets")
    online(sp)
    sp.add_argument("key_id", nargs="?")
    sp.add_argument("--name", help="friendly name")
    sp.add_argument("--dataset", action="append", default=[], metavar="NAME=VALUE")
    sp.add_argument("--usage", choices=("Encrypt", "Decrypt"))
    sp.add_argument("--all-bound", action="store_true", help="with --dataset and --usage "
                    "Decrypt: every key that protected the data, newest first (needs Read)")
    sp.add_argument("--show-value", action="store_true", help="print the key (base64)")
    sp.set_defaults(func=cmd_get_key)

    sp = sub.add_parser("bindings", help="GetBindings: which keys protected a data set, "
                        "which data sets a key protected (keys you may read; newest first)")
    online(sp)
    sp.add_argument("--dataset", metavar="NAME=VALUE", help="which keys protected it")
    sp.add_argument("--key", help="KeyId: which data sets it protected")
    sp.add_argument("--max", type=int, help="at most this many bindings (1..1000)")
    sp.set_defaults(func=cmd_bindings)

    sp = sub.add_parser("store-key", help="StoreKey: store a client-generated key")
    online(sp)
    _store_key_options(sp)
    sp.set_defaults(func=cmd_store_key)

    sp = sub.add_parser("endpoint-status",
                        help="GetStatus (§6.10) of a subscribed endpoint, through the server")
    online(sp)
    sp.add_argument("subscription", help="subscription identifier (uuid:...)")
    sp.add_argument("--locale", help="language for the name/value pairs, e.g. en-US")
    sp.add_argument("--target", help="target of interest (a filter expression)")
    sp.set_defaults(func=cmd_endpoint_status)

    from .cli_admin import add_admin_parser
    add_admin_parser(sub, online, _client, store_key=(_store_key_options, cmd_store_key))

    sp = sub.add_parser("random", help="GetRandomBytes")
    online(sp)
    sp.add_argument("n", type=int, help="number of bytes (1..65536)")
    sp.add_argument("--hex", action="store_true", help="print hex instead of base64")
    sp.set_defaults(func=cmd_random)
    return p


def _store_key_options(sp: argparse.ArgumentParser) -> None:
    """StoreKey's options (`store-key`, `admin key add`)."""
    g = sp.add_mutually_exclusive_group(required=True)
    g.add_argument("--hex", help="the key in hex")
    g.add_argument("--value-stdin", action="store_true",
                   help="read the key (base64) from standard input (after the password line)")
    sp.add_argument("--name", help="friendly name")
    sp.add_argument("--dataset", action="append", default=[], metavar="NAME=VALUE")
    sp.add_argument("--attribute", action="append", default=[], metavar="NAME=VALUE")
    sp.add_argument("--description")
    sp.add_argument("--cipher", help="cipher OID (default: AES-256-GCM for 32 bytes)")
    _key_realm_option(sp)


def _key_realm_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--realm", action="append", default=[], metavar="REALM",
                    help="realm URI the key goes into (repeatable; Create needed in each); "
                    "default: your one default realm")


def _log_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS,
                    help="log lines from this level up (default INFO, or log_level in the "
                    "config file)")
    sp.add_argument("--log-format", choices=LOG_FORMATS,
                    help="text (default, or log_format in the config file) or json (one "
                    "JSON object per line)")


def _master_key_parser(sub, data_dir) -> None:  # type: ignore[no-untyped-def]
    mk = sub.add_parser("master-key", help="master-key status and online rotation")
    msub = mk.add_subparsers(dest="master_key_command", required=True, metavar="ACTION")
    sp = msub.add_parser("status", help="the current master key and what each key seals")
    data_dir(sp)
    sp.set_defaults(func=cmd_master_key_status)
    sp = msub.add_parser("rotate", help="re-seal every stored key under a new master key "
                         "(online, resumable; old keys are destroyed once unused)")
    data_dir(sp)
    sp.add_argument("--batch-size", type=int, default=100, help="rows per transaction")
    sp.add_argument("--throttle-ms", type=int, default=0,
                    help="pause between batches, to spare a busy server")
    sp.add_argument("--max-batches", type=int,
                    help="stop after N batches (resume later by running rotate again)")
    sp.set_defaults(func=cmd_master_key_rotate)


def _backup_passphrase(args: argparse.Namespace, confirm: bool) -> str:
    """The backup's passphrase: the first line of standard input (--passphrase-stdin) or
    typed on the terminal (twice when making a backup), never from the command line."""
    if args.passphrase_stdin:
        passphrase = sys.stdin.readline().rstrip("\r\n")
    elif _terminal():
        passphrase = getpass.getpass("backup passphrase: ")
        if confirm and getpass.getpass("again: ") != passphrase:
            raise SystemExit("kms-ws: the passphrases differ")
    else:
        raise SystemExit("kms-ws: give the backup passphrase on standard input with "
                         "--passphrase-stdin, or run on a terminal")
    return passphrase


def _escrow_key(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    try:
        data = Path(args.escrow_key).read_bytes()
    except OSError as exc:
        raise SystemExit(f"kms-ws: cannot read {args.escrow_key}: {exc.strerror}") from None
    try:
        try:
            key = load_pem_private_key(data, None)
        except TypeError:  # encrypted: its password on standard input or the terminal
            key = load_pem_private_key(data, _backup_passphrase(args, False).encode())
    except ValueError:
        raise SystemExit(f"kms-ws: {args.escrow_key} is not a PEM private key, or its "
                         "password is wrong") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SystemExit(f"kms-ws: {args.escrow_key} is not an RSA private key")
    return key


def _unwrap(args: argparse.Namespace, manifest: dict[str, Any]):  # type: ignore[no-untyped-def]
    from .backup import Unwrap, needs
    how = needs(manifest)
    if how == "escrow":
        if not args.escrow_key:
            raise SystemExit("kms-ws: the backup's key material is wrapped for an escrow "
                             "certificate: give --escrow-key")
        return Unwrap(escrow_key=_escrow_key(args))
    if how == "passphrase":
        return Unwrap(passphrase=_backup_passphrase(args, False))
    return Unwrap()


def _checked_lines(checked) -> None:  # type: ignore[no-untyped-def]
    print(f"store schema {checked.schema_version}: integrity ok; {checked.sealed_values} "
          f"sealed value(s) open under master key(s) {', '.join(checked.master_keys)}; "
          f"audit chain intact ({checked.audit_records} record(s))")
    for note in checked.notes:
        print(f"note: {note}")


def cmd_backup_verify(args: argparse.Namespace) -> int:
    """`kms-ws backup verify FILE`: every check of a restore, without restoring."""
    from .backup import BackupError, read_manifest, verify
    path = Path(args.file)
    try:
        checked = verify(path, _unwrap(args, read_manifest(path)),
                         Path(args.master_key_dir) if args.master_key_dir else None)
    except BackupError as exc:
        print(f"kms-ws: {exc}", file=sys.stderr)
        return 1
    if checked is None:
        print(f"backup {path}: form and database intact; no master key material in it: its "
              "sealed values and audit chain are checked at restore (or now with "
              "--master-key-dir)")
    else:
        print(f"backup {path} verified")
        _checked_lines(checked)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Online: `kms-ws backup [--data-dir D] OUT`."""
    from .backup import MIN_PASSPHRASE, BackupError, Wrap, create
    wrap = None
    if args.include_master_key:
        if args.escrow_cert:
            from cryptography import x509
            try:
                wrap = Wrap(escrow_cert=x509.load_pem_x509_certificate(
                    Path(args.escrow_cert).read_bytes()))
            except ValueError:
                raise SystemExit(f"kms-ws: {args.escrow_cert} is not a PEM "
                                 "certificate") from None
            except OSError as exc:
                raise SystemExit(f"kms-ws: cannot read {args.escrow_cert}: "
                                 f"{exc.strerror}") from None
        else:
            passphrase = _backup_passphrase(args, True)
            if len(passphrase) < MIN_PASSPHRASE:
                raise SystemExit(f"kms-ws: a backup passphrase has at least "
                                 f"{MIN_PASSPHRASE} characters")
            wrap = Wrap(passphrase=passphrase)
    elif args.escrow_cert or args.passphrase_stdin:
        raise SystemExit("kms-ws: --escrow-cert and --passphrase-stdin wrap master key "
                         "material: add --include-master-key")
    try:
        made = create(_config(args), Path(args.out), wrap)
    except BackupError as exc:
        print(f"kms-ws: {exc}", file=sys.stderr)
        return 1
    print(f"backup {made.path}: store schema {made.schema_version}, {made.sealed_values} "
          f"sealed value(s) under master key(s) {', '.join(made.master_keys)}")
    if made.key_material:
        print(f"master key material included, wrapped ({made.key_material})")
    else:
        print("master key material NOT included: keep every master-key file of "
              f"{args.data_dir} (master.key, master-<id>.key) and server-signing.key/.pem "
              "apart; restore needs them (--master-key-dir)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Offline: restore a backup into a new or empty data directory, checked first."""
    from .backup import BackupError, read_manifest, refuse_target, restore
    target, path = Path(args.data_dir), Path(args.file)
    try:
        refuse_target(target)  # before asking for anything
        unwrap = _unwrap(args, read_manifest(path))
        checked = restore(path, target, unwrap,
                          Path(args.master_key_dir) if args.master_key_dir else None)
    except BackupError as exc:
        print(f"kms-ws: {exc}", file=sys.stderr)
        return 1
    print(f"restored {path} into {target}")
    _checked_lines(checked)
    return 0


def _backup_parsers(sub, data_dir) -> None:  # type: ignore[no-untyped-def]
    sp = sub.add_parser(
        "backup", help="online snapshot of the data directory into one file; "
        "'backup verify FILE' checks one",
        usage="kms-ws backup [--data-dir D] [--include-master-key [--passphrase-stdin | "
        "--escrow-cert PEM]] OUT\n       kms-ws backup verify [--passphrase-stdin | "
        "--escrow-key PEM] [--master-key-dir DIR] FILE")
    data_dir(sp)
    sp.add_argument("out", metavar="OUT", help="the backup file to write (never overwritten)")
    sp.add_argument("--include-master-key", action="store_true",
                    help="carry every master-key file (and the response-signing key), "
                    "wrapped under a passphrase (asked on the terminal) or --escrow-cert")
    sp.add_argument("--passphrase-stdin", action="store_true",
                    help="read the backup passphrase from the first line of standard input")
    sp.add_argument("--escrow-cert", help="PEM certificate with an RSA key: wrap the key "
                    "material for its private key (RSA-OAEP) instead of a passphrase")
    sp.set_defaults(func=cmd_backup)

    def unwrapping(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("file", metavar="FILE", help="the backup")
        sp.add_argument("--passphrase-stdin", action="store_true", help="read the backup "
                        "passphrase from the first line of standard input")
        sp.add_argument("--escrow-key", help="the escrow certificate's PEM private key")
        sp.add_argument("--master-key-dir", help="master-key files kept apart from a backup "
                        "made without --include-master-key")

    # `kms-ws backup verify FILE` (main() gives it this parser: `backup OUT` takes any name)
    sp = sub.add_parser(BACKUP_VERIFY, prog="kms-ws backup verify",
                        description="check a backup as a restore would, without restoring")
    unwrapping(sp)
    sp.set_defaults(func=cmd_backup_verify)

    sp = sub.add_parser("restore", help="restore a backup into a new or empty data "
                        "directory, checked before it reports success")
    data_dir(sp)
    unwrapping(sp)
    sp.set_defaults(func=cmd_restore)


BACKUP_VERIFY = "backup-verify"


def main(argv: list[str] | None = None) -> int:
    """Run one command. An ordinary mistake (a bad config file, a missing file, a server
    that cannot be reached, a refused request) is one line on standard error and exit 1,
    never a traceback (tests/e2e/test_cli_bad_input.py tries every command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["backup", "verify"]:
        argv[:2] = [BACKUP_VERIFY]
    args = build_parser().parse_args(argv)
    import requests
    from zeep.exceptions import ValidationError

    from .client import KeyUnwrapError, KmsFault, unreachable
    from .crypto.master_key import MasterKeyError
    from .domain.errors import KmsError
    from .server import CannotListen
    try:
        return int(args.func(args) or 0)
    except (MasterKeyError, KeyUnwrapError, ConfigError, CannotListen) as exc:
        print(f"kms-ws: {exc}", file=sys.stderr)
    except KmsError as exc:  # an offline command refused by the rules it runs
        print(f"kms-ws: {exc.reason}", file=sys.stderr)
    except KmsFault as fault:
        print(f"kms-ws: {fault.subcode + ': ' if fault.subcode else ''}{fault.reason}"
              + (f" ({fault.error_code})" if fault.error_code else ""), file=sys.stderr)
    except requests.RequestException as exc:
        print(f"kms-ws: {unreachable(getattr(args, 'url', '?'), exc)}", file=sys.stderr)
    except ValidationError as exc:  # zeep: the request would not be schema-valid
        print(f"kms-ws: the request is incomplete or invalid: {exc.message}"
              + (f" (at {exc.path[-1]})" if exc.path else ""), file=sys.stderr)
    except OSError as exc:  # a file named on the command line
        print(f"kms-ws: {exc.filename or ''}{': ' if exc.filename else ''}"
              f"{exc.strerror or exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
