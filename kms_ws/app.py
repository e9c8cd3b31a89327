"""Composition root: build the whole application from a Config. Nothing at import time."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from lxml import etree

from .audit.chain import HeadToSyslog
from .audit.syslog import SyslogSink
from .config import Config
from .crypto import master_key
from .crypto.pkcs11_provider import Pkcs11Provider
from .resources import schema_dir, wsdl_dir
from .security import certificates
from .security.forwarded import ProxyTrust
from .service import monitoring
from .service.dispatch import KmsService
from .soap.metrics import PrometheusMonitor
from .soap.wsdl import PLACEHOLDER_URL
from .soap.wsgi import SoapApplication
from .store.engine import Database, sqlite_path
from .store.space import SpaceGuard
from .wsman import delivery
from .wsman.delivery import ClientServiceCaller


def make_provider(config: Config) -> master_key.MasterKeyProvider:
    opts = dict(config.master_key)
    kind = opts.pop("provider", "file")
    if kind == "file":
        env = opts.pop("passphrase_env", "KMS_WS_MASTER_PASSPHRASE")
        if opts:
            raise master_key.MasterKeyError(f"unknown master_key options: {sorted(opts)}")
        return master_key.FileProvider(config.data_dir, os.environ.get(env) or None)
    if kind == "pkcs11":
        return Pkcs11Provider.from_options(opts)
    raise master_key.MasterKeyError(f"unknown master key provider {kind!r}")


def open_keyring(config: Config, db: Database) -> master_key.Keyring:
    """The keyring, its current key as recorded in the database."""
    provider = make_provider(config)
    with db.unit_of_work() as uow:
        current = uow.sealed.current_master_key_id()
    if current is None:
        raise master_key.MasterKeyError("the database records no master key; run 'kms-ws init'")
    return master_key.Keyring(provider, current)


def prepare_store(config: Config) -> Database:
    """The data directory, the server's response-signing key and the migrated database,
    without touching the master-key provider (the server's parent process: PKCS#11 must not
    be used before a fork)."""
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    certificates.create_server_key(config.data_dir)  # the response-signing key
    db = Database(config.db_url)
    db.migrate()
    return db


def init_data_dir(config: Config) -> tuple[Database, master_key.Keyring]:
    """Create the data directory, the master key and the schema if missing."""
    db = prepare_store(config)
    provider = make_provider(config)
    with db.unit_of_work(write=True) as uow:
        current = uow.sealed.current_master_key_id()
        if current is None:
            ids = provider.key_ids()
            if len(ids) > 1:
                raise master_key.MasterKeyError(
                    f"several master keys ({', '.join(ids)}) and none recorded as current")
            current = ids[0] if ids else provider.create()
            uow.sealed.set_meta("master_key_current", current)
    keyring = master_key.Keyring(provider, current)
    keyring.aead_for(current)  # opens it now: a wrong passphrase or missing key fails here
    return db, keyring


def message_validator() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(schema_dir() / "kms-messages.xsd"), parser))


def ws_validator() -> etree.XMLSchema:
    """The WS-* subsets (schemas/ws/all.xsd, which imports the kms messages too)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(schema_dir() / "ws" / "all.xsd"), parser))


def space_guard(config: Config) -> SpaceGuard:
    """The free-space watermark over every file system the server writes to."""
    paths = [config.data_dir, config.log_path.parent]
    sqlite = sqlite_path(config.db_url)
    if sqlite is not None:
        paths.append(Path(sqlite).parent)
    return SpaceGuard(paths, int(config.min_free_disk_mb * 1024 * 1024))


def create_app(config: Config) -> SoapApplication:
    db = Database(config.db_url, max_bytes=int(config.database_max_mb * 1024 * 1024)
                  if config.database_max_mb else None)
    syslog = SyslogSink(config.audit_syslog) if config.audit_syslog else None
    validator = message_validator()
    signing_key = certificates.load_server_key(config.data_dir)
    monitor = PrometheusMonitor(lambda: monitoring.status(db), config.metrics_allow) \
        if config.metrics else None
    service = KmsService(db, open_keyring(config, db), config.security, syslog=syslog,
                         outbound=ClientServiceCaller(config, validator, signing_key),
                         space=space_guard(config), observer=monitor)
    wsdl = Path(wsdl_dir() / "kms.wsdl").read_bytes()
    return SoapApplication(service, config.security, validator, wsdl,
                           PLACEHOLDER_URL.encode(), signing_key, ws_validator(),
                           ProxyTrust(config.trusted_proxies), monitor)


def run_deliverer(config: Config, stop: threading.Event | None = None) -> None:
    """The deliverer process (`kms-ws deliver`): the UpdatePending delivery loop, with the
    validator, the response-signing key and the keyring (for the audit chain) it needs."""
    db = Database(config.db_url)
    caller = ClientServiceCaller(config, message_validator(),
                                 certificates.load_server_key(config.data_dir))
    syslog = SyslogSink(config.audit_syslog) if config.audit_syslog else None
    heads = HeadToSyslog(db, syslog, config.audit_head_seconds) if syslog else None
    try:
        delivery.run(config, db, caller, lambda: open_keyring(config, db), stop, syslog,
                     heads.tick if heads is not None else None)
    finally:
        if syslog is not None:
            syslog.close()
        db.dispose()
