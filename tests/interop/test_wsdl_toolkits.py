"""Clients generated from the served WSDL by other SOAP toolkits, against a real HTTPS server
with default security settings: JAX-WS RI (wsimport, javac), gSOAP (wsdl2h, soapcpp2, g++),
PHP SoapClient and node-soap in SOAP 1.1 and 1.2, suds-community (SOAP 1.1) and zeep.

Each client trusts the test CA by its toolkit's own means (certificate and host name
verified; a client given another CA is refused), logs in with Authenticate (the password
in the Body), then sends the session credential in the kms:Credential header with
GetServerCapabilities, NegotiateCapabilities, CreateKey, StoreKey, GetKey by id and by
friendly name, PushAuditMessage and GetRandomBytes, and reads the typed fault of a missing
key (kms:KmsFault/ErrorCode) through its own fault API. Generator warnings fail. Every
message on the wire (recorded in plaintext by the TLS relay in front of the server) is
validated against schemas/, and the store shows what each call did and who did it."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from kms_ws.config import load
from kms_ws.domain.capabilities import SERVER_CAPABILITIES
from kms_ws.security.settings import SecuritySettings
from kms_ws.xmlns import KMS, SOAP, SOAP11

from ..support import db
from ..support.pki import CA
from ..support.recorder import Exchange, Recorder
from ..support.validating import CT
from ..support.wire_check import soap_version, validate_soap
from .conftest import Interop
from .python_clients import run_suds, run_zeep

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
K = f"{{{KMS}}}"
OPERATIONS = {"Authenticate", "GetServerCapabilities", "NegotiateCapabilities", "CreateKey",
              "StoreKey", "GetKey", "PushAuditMessage", "GetRandomBytes"}
# Debian's locations of the JAX-WS RI runtime and of gSOAP's typemap and imports.
JAVA_LIBS = Path("/usr/share/java")
GSOAP_SHARE = Path("/usr/share/gsoap")
# Debian's SAAJ finds its factory through a deprecated service file and logs a warning on
# every start unless the factory is named (nothing to do with our WSDL).
SAAJ = "-Djavax.xml.soap.SAAJMetaFactory=com.sun.xml.messaging.saaj.soap.SAAJMetaFactoryImpl"
WARNING = re.compile(r"warn", re.IGNORECASE)
TIMEOUT = 180


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: .ci/run installs it ({package})")
    return path


def _run(args: Sequence[str | Path], cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT, env={**os.environ, **(env or {})})


def _generate(args: Sequence[str | Path], cwd: Path,
              env: dict[str, str] | None = None) -> str:
    """Run a code generator or compiler; its whole output (stdout and stderr)."""
    done = _run(args, cwd, env)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} failed ({done.returncode}):\n{output[-4000:]}")
    return output


def _warnings(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if WARNING.search(line)]


# ---- what every toolkit run must show ------------------------------------------------------


@dataclass(frozen=True)
class Run:
    toolkit: str
    version: str  # the SOAP version the client speaks
    tag: str  # friendly names and the audit message of this run start with it
    stored: bytes  # the key value StoreKey sends
    missing: str  # a key id nobody has
    mark: int  # the recorder's position before the run


def _start(interop: Interop, toolkit: str, version: str) -> Run:
    return Run(toolkit, version, f"{toolkit}-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32),
               str(uuid.uuid4()), interop.recorder.mark())


def _output(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1])  # type: ignore[no-any-return]
    except (IndexError, ValueError):
        pytest.fail(f"the client printed no result ({done.returncode}):\n{done.stdout[-3000:]}"
                    f"\n{done.stderr[-3000:]}")


def check_run(interop: Interop, run: Run, seen: dict[str, Any]) -> None:
    if "error" in seen:
        pytest.fail(f"{run.toolkit}: {seen.get('step')} failed: {seen['error'][:1500]}")
    assert seen["step"] == "done", seen
    assert not seen.get("warnings"), f"{run.toolkit} warned: {seen['warnings']}"
    token = _check_wire(interop.recorder.since(run.mark), run.version)
    assert seen["session_token"] == token

    account = interop.accounts[run.toolkit]
    assert seen["client_id"] == account.client_id
    assert seen["capabilities"] == list(SERVER_CAPABILITIES)
    assert seen["negotiated"] == ["operation:CreateKey", "operation:GetKey"]
    created = seen["created"]
    value = base64.b64decode(created["data_b64"])
    assert (created["name"], created["wrapping"], created["length"], len(value)) == \
        (f"{run.tag}-created", "none", 32, 32)
    assert seen["by_id"] == [created]
    assert seen["by_name"] == [{"id": seen["stored_id"], "name": f"{run.tag}-stored",
                                "wrapping": "none", "length": 32,
                                "data_b64": base64.b64encode(run.stored).decode()}]
    assert seen["audit"] == {"success": True, "accepted": 1}
    assert len(base64.b64decode(seen["random_b64"])) == 48
    assert isinstance(seen["fault"], dict) and seen["fault"].get("error_code") == \
        "E_KEY_NOT_FOUND", f"{run.toolkit} did not read the typed fault: {seen['fault']}"

    # The store: both keys are in the caller's default realm, and the audit trail has each
    # call under the toolkit's own client (the session credential named it).
    data = interop.server.data_dir
    keys = db.rows(data, "SELECT id, friendly_name, realms FROM keys WHERE id IN (?, ?)",
                   (created["id"], seen["stored_id"]))
    assert sorted(keys) == sorted([
        (created["id"], f"{run.tag}-created", "realm://localhost/default"),
        (seen["stored_id"], f"{run.tag}-stored", "realm://localhost/default")])
    trail = set(db.rows(data, "SELECT operation, actor_name, result, message FROM audit "
                              "WHERE key_id = ?", (created["id"],)))
    assert {("CreateKey", account.name, "Success", None),
            ("PushAuditMessage", account.name, "Reported", f"{run.tag} used the key")} <= trail
    assert ("GetKey", account.name, "Success") in {t[:3] for t in trail}


def _check_wire(exchanges: list[Exchange], version: str) -> str:
    """Every POST the toolkit made and every answer is valid against schemas/; all are of
    its SOAP version; no HTTP credential was sent; Authenticate carried the password in the
    Body and every later request the session credential the server issued. Returns it."""
    posts = [e for e in exchanges if e.method == "POST"]
    token = None
    operations = []
    for ex in posts:
        request = validate_soap(ex.request)
        assert soap_version(ex.request) == version, ex.request[:300]
        content_type = ex.request_header("Content-Type") or ""
        if version == "1.2":
            assert content_type.startswith("application/soap+xml"), content_type
        else:
            assert content_type.startswith("text/xml"), content_type
            assert ex.request_header("SOAPAction") is not None
        assert ex.request_header("Authorization") is None
        answer = validate_soap(ex.response)
        ns = SOAP if version == "1.2" else SOAP11
        payload = next(c for c in request.find(f"{{{ns}}}Body") if isinstance(c.tag, str))
        operation = etree.QName(payload).localname
        operations.append(operation)
        header = request.find(f"{{{ns}}}Header")
        credential = header.find(K + "Credential") if header is not None else None
        if operation == "Authenticate":
            assert payload.findtext(f"{K}Credential/{K}CredentialType") == "UsernamePassword"
            token = answer.findtext(f".//{K}AuthenticateResponse/{K}Credential/{K}SessionToken")
            continue
        assert token is not None, "a call before Authenticate"
        assert credential is not None, f"{operation} without the kms:Credential header"
        assert (credential.findtext(K + "CredentialType"),
                credential.findtext(K + "SessionToken")) == ("Session", token)
    assert set(operations) == OPERATIONS, operations
    assert token is not None
    return token


# ---- the server these clients meet ---------------------------------------------------------


def test_the_server_keeps_its_security_defaults(interop: Interop) -> None:
    """The clients meet a server with the default security settings (none relaxed for
    local use) that serves HTTPS only, with a certificate of the test CA. Over HTTPS, HTTP
    Basic works too."""
    assert load(interop.server.data_dir).security == SecuritySettings()
    assert interop.server.url.startswith("https://")
    with pytest.raises(requests.ConnectionError):  # no plain HTTP on its port
        requests.get(interop.server.url.replace("https://", "http://", 1) + "?wsdl", timeout=10)
    account = interop.accounts["zeep-1.2"]
    body = (f'<s:Envelope xmlns:s="{SOAP}" xmlns:kms="{KMS}"><s:Body><kms:GetRandomBytes>'
            "<kms:NumberOfBytes>8</kms:NumberOfBytes></kms:GetRandomBytes></s:Body></s:Envelope>")
    r = requests.post(interop.server.url, data=body, auth=(account.name, account.password),
                      headers={"Content-Type": CT}, timeout=30, verify=str(interop.ca))
    env = validate_soap(r.content)
    assert r.status_code == 200, r.text
    assert len(base64.b64decode(env.findtext(f".//{K}RandomBytes") or "")) == 8


def test_a_run_the_relay_did_not_see_fails() -> None:
    """The wire check fails a toolkit run of which the relay recorded nothing (a client
    that bypassed it, or a relay that kept nothing, cannot pass)."""
    with pytest.raises(AssertionError):
        _check_wire([], "1.2")


# ---- JAX-WS RI -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JavaBuild:
    classpath: str
    generator_output: str
    trust: tuple[str, ...]  # the JVM options that make it trust the test CA


def _java_trust(ca: Path, store: Path) -> tuple[str, ...]:
    """A PKCS12 trust store holding the CA (keytool), and the JVM options naming it: the
    JDK's HTTPS then verifies the server's certificate and host name against it alone. (It
    holds no secret: its password, the JDK's customary one, only guards its integrity.)"""
    password = "changeit"
    _generate(["keytool", "-importcert", "-noprompt", "-alias", "kms-ca", "-file", ca,
               "-keystore", store, "-storetype", "PKCS12", "-storepass", password],
              store.parent)
    return (f"-Djavax.net.ssl.trustStore={store}", "-Djavax.net.ssl.trustStoreType=PKCS12",
            f"-Djavax.net.ssl.trustStorePassword={password}")


@pytest.fixture(scope="session")
def jaxws(interop: Interop, interop_build: Path) -> JavaBuild:
    """wsimport -extension (SOAP 1.2 ports too) and javac, once; wsimport reads the WSDL
    over HTTPS, trusting the test CA (the wsimport script passes WSIMPORT_OPTS to its JVM)."""
    for tool in ("wsimport", "javac", "java", "keytool"):
        _tool(tool, "Debian jaxws, libjaxws-java and a JDK")
    root = interop_build / "jaxws"
    src, classes = root / "src", root / "classes"
    src.mkdir(parents=True)
    classes.mkdir()
    trust = _java_trust(interop.ca, root / "truststore.p12")
    # Wrapper style off: each operation takes and returns its request/response element, so
    # the client does not depend on the order of every optional parameter.
    bindings = root / "bindings.xml"
    bindings.write_text('<jaxws:bindings xmlns:jaxws="http://java.sun.com/xml/ns/jaxws">'
                        "<jaxws:enableWrapperStyle>false</jaxws:enableWrapperStyle>"
                        "</jaxws:bindings>\n")
    output = _generate(["wsimport", "-extension", "-Xnocompile", "-b", bindings, "-s", src,
                        "-d", classes, "-p", "kmsclient", interop.wsdl_url], root,
                       env={"WSIMPORT_OPTS": " ".join(trust)})
    classpath = str(JAVA_LIBS / "jaxws-rt.jar")
    sources = sorted((src / "kmsclient").glob("*.java"))
    output += _generate(["javac", "-cp", classpath, "-d", classes, *sources,
                         HERE / "jaxws" / "KmsInterop.java"], root)
    return JavaBuild(f"{classes}{os.pathsep}{classpath}", output, trust)


@pytest.mark.needs("jaxws")
def test_jaxws_generators_print_no_warning(interop: Interop, jaxws: JavaBuild) -> None:
    """Nothing but the note JAX-WS RI 2.3 prints for any SOAP 1.2 port in -extension mode
    (its WSDLModeler does so for every WSDL 1.1 SOAP 1.2 binding; without -extension it
    ignores the port with a warning instead)."""
    notes = [f'[WARNING] SOAP port "{port.port}": uses a non-standard SOAP 1.2 binding.'
             for port in interop.all_ports if port.version == "1.2"]
    assert _warnings(jaxws.generator_output) == notes


@pytest.mark.needs("jaxws")
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_jaxws_client(interop: Interop, jaxws: JavaBuild, version: str) -> None:
    port = interop.port(version)
    run = _start(interop, f"jaxws-{version}", version)
    account = interop.accounts[run.toolkit]
    done = _run(["java", SAAJ, *jaxws.trust, "-cp", jaxws.classpath, "KmsInterop",
                 interop.wsdl_url, port.service, port.port, account.name, account.password,
                 run.tag, run.stored.hex(), run.missing])
    seen = _output(done)
    if "error" not in seen:
        assert _warnings(done.stderr) == [], done.stderr
    check_run(interop, run, seen)


# ---- gSOAP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GsoapBuild:
    program: Path
    generator_output: str


@pytest.fixture(scope="session")
def gsoap(interop: Interop, interop_build: Path) -> GsoapBuild:
    """wsdl2h (a service per binding; the kms prefix from the typemap), soapcpp2 -j and g++
    with OpenSSL, once: a client on the SOAP 1.2 binding's proxy. (wsdl2h writes one code
    base, SOAP 1.2 as soon as the WSDL has a SOAP 1.2 binding: its SOAP 1.1 proxy speaks
    SOAP 1.2 too, and soapcpp2 -1 warns that it overrides the SOAP 1.2 namespaces.)

    wsdl2h reads the served WSDL as the fixture fetched it through the relay, verifying the
    certificate: wsdl2h fetches an https URL without verifying the server's certificate
    (it has no option to name a CA), and nothing here connects unverified."""
    for tool in ("wsdl2h", "soapcpp2", "g++"):
        _tool(tool, "Debian gsoap, libgsoap-dev, g++")
    binding = interop.port("1.2").binding
    root = interop_build / "gsoap"
    root.mkdir()
    typemap = root / "typemap.dat"
    typemap.write_text((GSOAP_SHARE / "WS" / "typemap.dat").read_text()
                       + f'\nkms = "{KMS}"\n')
    wsdl = root / "kms.wsdl"
    wsdl.write_bytes(interop.wsdl)
    output = _generate(["wsdl2h", "-t", typemap, "-N", "kms", "-o", "kms.h", wsdl], root)
    output += _generate(["soapcpp2", "-j", "-C", "-x", "-I", GSOAP_SHARE / "import", "kms.h"],
                        root)
    proxy = f"{binding}Proxy"
    output += _generate(["g++", "-O0", "-DWITH_OPENSSL", "-I", root, f"-DKMS_PROXY={proxy}",
                         f'-DKMS_PROXY_H="soap{proxy}.h"', f'-DKMS_NSMAP="{binding}.nsmap"',
                         "soapC.cpp", f"soap{proxy}.cpp", HERE / "gsoap" / "kms_interop.cpp",
                         "-lgsoapssl++", "-lssl", "-lcrypto", "-o", "kms_interop"], root)
    return GsoapBuild(root / "kms_interop", output)


@pytest.mark.needs("gsoap")
def test_gsoap_generators_print_no_warning(gsoap: GsoapBuild) -> None:
    assert _warnings(gsoap.generator_output) == []


@pytest.mark.needs("gsoap")
def test_gsoap_client(interop: Interop, gsoap: GsoapBuild) -> None:
    run = _start(interop, "gsoap-1.2", "1.2")
    account = interop.accounts[run.toolkit]
    done = _run([gsoap.program, interop.recorder.url(), interop.ca, account.name,
                 account.password, run.tag, run.stored.hex(), run.missing])
    check_run(interop, run, _output(done))


# ---- PHP SoapClient, node-soap -------------------------------------------------------------


@pytest.mark.needs("php-soap")
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_php_soapclient(interop: Interop, version: str) -> None:
    _tool("php", "Debian php-cli, php-soap")
    interop.port(version)
    run = _start(interop, f"php-{version}", version)
    account = interop.accounts[run.toolkit]
    done = _run(["php", HERE / "php" / "kms_interop.php", interop.wsdl_url, interop.ca,
                 version, account.name, account.password, run.tag, run.stored.hex(),
                 run.missing])
    check_run(interop, run, _output(done))


@pytest.mark.needs("node-soap")
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_node_soap(interop: Interop, version: str) -> None:
    _tool("node", "nodejs")
    if not (HERE / "node" / "node_modules" / "soap").is_dir():
        pytest.fail("node-soap is not installed: .ci/run runs npm ci in tests/interop/node")
    port = interop.port(version)
    run = _start(interop, f"node-{version}", version)
    account = interop.accounts[run.toolkit]
    done = _run(["node", HERE / "node" / "kms_interop.js", interop.wsdl_url, interop.ca,
                 version, port.service, port.port, account.name, account.password, run.tag,
                 run.stored.hex(), run.missing])
    check_run(interop, run, _output(done))


# ---- suds-community, zeep ------------------------------------------------------------------


def test_suds(interop: Interop) -> None:
    port = interop.port("1.1")
    run = _start(interop, "suds-1.1", "1.1")
    account = interop.accounts[run.toolkit]
    check_run(interop, run, run_suds(interop.wsdl_url, str(interop.ca), port.port, account.name,
                                  account.password, run.tag, run.stored, run.missing))


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_zeep(interop: Interop, version: str) -> None:
    port = interop.port(version)
    run = _start(interop, f"zeep-{version}", version)
    account = interop.accounts[run.toolkit]
    check_run(interop, run, run_zeep(interop.wsdl_url, str(interop.ca), port.service, port.port,
                                  account.name, account.password, run.tag, run.stored,
                                  run.missing))


# ---- every toolkit verifies the certificate and the name ----------------------------------

NEEDS = {"jaxws": "jaxws", "gsoap": "gsoap", "php": "php-soap", "node": "node-soap"}
TOOLKIT_NAMES = [pytest.param(name, marks=[pytest.mark.needs(NEEDS[name])] if name in NEEDS
                              else []) for name in ("jaxws", "gsoap", "php", "node", "suds",
                                                    "zeep")]


@pytest.fixture(scope="session")
def stranger(interop_build: Path) -> CA:
    """A CA that issued neither the relay's certificate nor the server's."""
    return CA(interop_build / "stranger-ca")


def _first_connection(toolkit: str, interop: Interop, relay: Recorder, ca: Path,
                      java_trust: tuple[str, ...],
                      request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The toolkit's client, pointed at `relay` and trusting `ca` (the JVM: `java_trust`):
    (the step its first connection happens in, what the client printed)."""
    account = interop.accounts["zeep-1.2"]  # never reaches the server
    port = interop.port("1.2")
    wsdl = relay.url("/wsman?wsdl")
    args = [account.name, account.password, "refused", secrets.token_hex(32),
            str(uuid.uuid4())]
    if toolkit == "jaxws":
        build: JavaBuild = request.getfixturevalue("jaxws")
        return "service", _output(_run(["java", SAAJ, *java_trust, "-cp", build.classpath,
                                        "KmsInterop", wsdl, port.service, port.port, *args]))
    if toolkit == "gsoap":
        program = request.getfixturevalue("gsoap").program
        return "Authenticate", _output(_run([program, relay.url(), ca, *args]))
    if toolkit == "php":
        return "SoapClient", _output(_run(["php", HERE / "php" / "kms_interop.php", wsdl, ca,
                                           "1.2", *args]))
    if toolkit == "node":
        return "createClient", _output(_run(["node", HERE / "node" / "kms_interop.js", wsdl,
                                             ca, "1.2", port.service, port.port, *args]))
    if toolkit == "suds":
        return "Client", run_suds(wsdl, str(ca), interop.port("1.1").port, account.name,
                                  account.password, "refused", secrets.token_bytes(32),
                                  str(uuid.uuid4()))
    return "Client", run_zeep(wsdl, str(ca), port.service, port.port, account.name,
                              account.password, "refused", secrets.token_bytes(32),
                              str(uuid.uuid4()))


def check_refused(toolkit: str, interop: Interop, relay: Recorder, ca: Path,
             java_trust: tuple[str, ...], request: pytest.FixtureRequest, error: str) -> None:
    """The client stops at its first connection with `error` (PHP only says that it could
    not load the WSDL), and the relay saw no request."""
    mark = relay.mark()
    step, seen = _first_connection(toolkit, interop, relay, ca, java_trust, request)
    assert seen["step"] == step and "error" in seen, seen
    if toolkit == "php":
        error = "failed to load external entity"
    assert re.search(error, seen["error"]), seen["error"]
    assert relay.since(mark) == []


@pytest.mark.parametrize("toolkit", TOOLKIT_NAMES)
def test_a_client_trusting_another_ca_is_refused(interop: Interop, stranger: CA,
                                                 interop_build: Path, toolkit: str,
                                                 request: pytest.FixtureRequest) -> None:
    """Each toolkit's trust setting is what it verifies the relay with, and it verifies:
    the same client that passes above, given another CA's certificate instead, refuses the
    relay's certificate."""
    if toolkit in ("jaxws", "gsoap"):
        request.getfixturevalue(toolkit)  # built (from the WSDL, through the relay) first
    java_trust = ()
    if toolkit == "jaxws":
        root = interop_build / "stranger-jaxws"
        root.mkdir()
        java_trust = _java_trust(stranger.pem, root / "truststore.p12")
    check_refused(toolkit, interop, interop.recorder, stranger.pem, java_trust, request,
             # node: OpenSSL finds no issuer for the leaf (the stranger's key identifier
             # differs)
             r"certificate (verify failed|signature failure)|PKIX path"
             r"|unable to verify the first certificate")


@pytest.mark.parametrize("toolkit", TOOLKIT_NAMES)
def test_a_client_refuses_a_certificate_for_another_name(interop: Interop, toolkit: str,
                                                         request: pytest.FixtureRequest
                                                         ) -> None:
    """Each toolkit checks the server's name too: a relay at 127.0.0.1 whose certificate,
    from the CA the client trusts, names another host is refused."""
    java_trust = request.getfixturevalue("jaxws").trust if toolkit == "jaxws" else ()
    if toolkit == "gsoap":
        request.getfixturevalue(toolkit)
    cert, key, _ = interop.pki.issue("elsewhere", server=True, names=("elsewhere.invalid",))
    with Recorder(interop.server.url, cert=(cert, key), ca=interop.ca) as elsewhere:
        check_refused(toolkit, interop, elsewhere, interop.ca, java_trust, request,
                 r"(?i)mismatch|does not match|no subject alternative names")
