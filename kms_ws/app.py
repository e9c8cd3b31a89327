"""Composition root: build the whole application from a Config. Nothing at import time."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from .audit.syslog import SyslogSink
from .config import Config
from .crypto import master_key
from .resources import schema_dir, wsdl_dir
from .security import certificates
from .service.dispatch import KmsService
from .soap.wsdl import PLACEHOLDER_URL
from .soap.wsgi import SoapApplication
from .store.engine import Database
from .wsman.delivery import ClientServiceCaller


def init_data_dir(config: Config) -> tuple[Database, master_key.MasterKey]:
    """Create the data directory, the master key, the server's response-signing key and
    the schema if missing."""
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mk = master_key.load_or_create(config.data_dir / master_key.FILE_NAME)
    certificates.create_server_key(config.data_dir)
    db = Database(config.db_url)
    db.migrate()
    return db, mk


def message_validator() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(schema_dir() / "kms-messages.xsd"), parser))


def ws_validator() -> etree.XMLSchema:
    """The WS-* subsets (schemas/ws/all.xsd, which imports the kms messages too)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(schema_dir() / "ws" / "all.xsd"), parser))


def create_app(config: Config) -> SoapApplication:
    db = Database(config.db_url)
    mk = master_key.load(config.data_dir / master_key.FILE_NAME)
    syslog = SyslogSink(config.audit_syslog) if config.audit_syslog else None
    validator = message_validator()
    service = KmsService(db, mk, config.security, syslog=syslog,
                         outbound=ClientServiceCaller(config, validator))
    wsdl = Path(wsdl_dir() / "kms.wsdl").read_bytes()
    return SoapApplication(service, config.security, validator, wsdl,
                           PLACEHOLDER_URL.encode(),
                           certificates.load_server_key(config.data_dir), ws_validator())
