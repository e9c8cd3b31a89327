"""Fixtures of the toolkit interop tests: one real HTTPS server with default security
settings, a client registered for each toolkit, and a recording HTTPS relay in front of the
server through which every toolkit fetches the served WSDL and sends its calls. A test CA
issues the server's and the relay's certificates; every toolkit trusts that CA by its own
means and verifies both."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from lxml import etree

from kms_ws.security.settings import SecuritySettings

from ..support.pki import CA
from ..support.recorder import Recorder
from ..support.server import ServerProcess, kms

# One registered client per toolkit run (its own lock-out counter and audit trail): each
# toolkit in each SOAP version it is tested in.
TOOLKITS = (*(f"{t}-{v}" for t in ("jaxws", "php", "node", "zeep") for v in ("1.1", "1.2")),
            "gsoap-1.2", "suds-1.1")

DEFAULTS = SecuritySettings()
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    client_id: str


@dataclass(frozen=True)
class Port:
    service: str
    port: str
    binding: str
    version: str  # of its SOAP binding: "1.1" or "1.2"


@dataclass(frozen=True)
class Interop:
    server: ServerProcess
    recorder: Recorder
    pki: CA  # issued the server's and the relay's TLS certificates
    accounts: dict[str, Account]
    wsdl: bytes = field(repr=False)  # as served (through the relay: names the relay's address)
    all_ports: tuple[Port, ...]  # every SOAP port of the served WSDL

    @property
    def ca(self) -> Path:
        """The test CA's certificate (PEM): what every client trusts."""
        return self.pki.pem

    @property
    def wsdl_url(self) -> str:
        return self.recorder.url("/wsman?wsdl")

    @property
    def ports(self) -> dict[str, Port]:
        """The first port of each SOAP version."""
        first: dict[str, Port] = {}
        for port in self.all_ports:
            first.setdefault(port.version, port)
        return first

    def port(self, version: str) -> Port:
        if version not in self.ports:
            pytest.fail(f"the served WSDL has no SOAP {version} port (ports: {self.ports})")
        return self.ports[version]


def soap_ports(wsdl: bytes) -> tuple[Port, ...]:
    """The SOAP 1.1 and 1.2 ports of a WSDL 1.1 document."""
    root = etree.fromstring(wsdl)
    tns = root.get("targetNamespace")
    versions = {}
    for binding in root.iterfind(f"{{{WSDL_NS}}}binding"):
        if binding.find(f"{{{WSDL_SOAP12}}}binding") is not None:
            versions[binding.get("name")] = "1.2"
        elif binding.find(f"{{{WSDL_SOAP11}}}binding") is not None:
            versions[binding.get("name")] = "1.1"
    ports = []
    for service in root.iterfind(f"{{{WSDL_NS}}}service"):
        for port in service.iterfind(f"{{{WSDL_NS}}}port"):
            prefix, _, binding = port.get("binding", "").rpartition(":")
            assert root.nsmap.get(prefix or None) == tns, port.get("binding")
            if binding in versions:
                ports.append(Port(service.get("name"), port.get("name"), binding,
                                  versions[binding]))
    return tuple(ports)


@pytest.fixture(scope="session")
def interop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Interop]:
    root = tmp_path_factory.mktemp("interop")
    data = root / "data"
    pki = CA(root / "pki")
    # The server's security defaults: ServerProcess opts tests into HTTP Basic over plain
    # HTTP and turns the authentication backoff off; this server keeps the defaults (no
    # password over plain HTTP, the backoff on) and serves HTTPS, as an enterprise runs it.
    cert, key, _ = pki.issue("server", server=True)
    srv = ServerProcess(data, security={
        "allow_basic_over_http": False,
        "backoff_after_failed_authentications": DEFAULTS.backoff_after_failed_authentications,
        "source_backoff_after_failed_authentications":
            DEFAULTS.source_backoff_after_failed_authentications}, tls=(cert, key),
        tls_ca=pki.pem)
    srv.bootstrap()

    def register(toolkit: str) -> Account:
        name, password = f"interop-{toolkit}", f"pw-{secrets.token_hex(12)}"
        added = kms("client", "add", name, "--password-stdin", "--data-dir", str(data),
                    stdin=password + "\n")
        return Account(name, password, added.stdout.strip())

    with ThreadPoolExecutor(max_workers=4) as pool:
        accounts = dict(zip(TOOLKITS, pool.map(register, TOOLKITS), strict=True))
    srv.start()
    try:
        relay, relay_key, _ = pki.issue("relay", server=True)
        with Recorder(srv.url, cert=(relay, relay_key), ca=pki.pem) as recorder:
            wsdl = requests.get(recorder.url("/wsman?wsdl"), timeout=10, verify=str(pki.pem))
            assert wsdl.status_code == 200, wsdl.text
            yield Interop(srv, recorder, pki, accounts, wsdl.content,
                          soap_ports(wsdl.content))
    finally:
        status = srv.stop()
    assert status == 0, srv.stderr_text()


@pytest.fixture(scope="session")
def interop_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's directory for generated code and build products."""
    return tmp_path_factory.mktemp("interop-build")
