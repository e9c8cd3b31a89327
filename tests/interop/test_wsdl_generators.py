"""The WSDL as enterprise generators read it: Java JAX-WS RI `wsimport` (Debian `jaxws`,
`libjaxws-java`, a JDK) and gSOAP `wsdl2h` + `soapcpp2` (Debian `gsoap`) run on the WSDL
served by a real server, and on wsdl/kms-client.wsdl, print no warning, and derive our
actions: the soapAction of every operation, the wsam:Action of every input, output and
fault. (gSOAP ignored an optional soapAction and sent a default action the server did
not know; see test_action_aliases.py for clients made that way.) The tools are installed
by .ci/run: a missing one fails the test.

Two documented exceptions, both outside the WSDL's power: wsdl2h runs with `-N` (one
service per binding; without it, it notes that it collected the SOAP 1.2 and 1.1
bindings into one service), and wsimport, in `-extension` mode, states for every SOAP 1.2
port that it "uses a non-standard SOAP 1.2 binding" (JAX-WS RI 2.3 WSDLModeler prints
this for any WSDL 1.1 SOAP 1.2 binding; without -extension it ignores the port instead).
That one note, for exactly the SOAP 1.2 ports, is the only diagnostic allowed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kms_ws.resources import wsdl_dir
from kms_ws.service.dispatch import OPERATIONS
from kms_ws.soap.wsdl import CLIENT_OPERATIONS, FAULT_ACTION
from kms_ws.xmlns import action

from ..support.server import ServerProcess

pytestmark = pytest.mark.e2e
SOAP12_NOTE = '[WARNING] SOAP port "{}": uses a non-standard SOAP 1.2 binding.'
DIAGNOSTIC = re.compile(r"warn|error|fail|not supported|ignor|cannot|unable", re.IGNORECASE)


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (.ci/run installs the Debian packages jaxws, " \
                 "libjaxws-java, default-jdk-headless, gsoap and libgsoap-dev)"
    return path


def _run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


def _wsimport(wsdl: str, out: Path) -> tuple[str, str, str]:
    """wsimport with compilation: (its output, the SEI source, the Service source)."""
    src, classes = out / "src", out / "classes"
    src.mkdir(parents=True)
    classes.mkdir()
    text = _run([_tool("wsimport"), "-extension", "-XadditionalHeaders", "-keep",
                 "-s", str(src), "-d", str(classes), wsdl], out)
    seis = list(src.rglob("*PortType.java"))
    services = list(src.rglob("*Service.java"))
    assert len(seis) == 1 and len(services) == 1, (seis, services)
    assert list(classes.rglob("*PortType.class"))  # it compiled what it generated
    return text, seis[0].read_text(), services[0].read_text()


def _diagnostics(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()
            if line.startswith("[") or DIAGNOSTIC.search(line)]


def _check_sei(sei: str, ops: list[str]) -> None:
    for op in ops:
        assert f'@WebMethod(operationName = "{op}", action = "{action(op)}")' in sei, op
        assert (f'@Action(input = "{action(op)}", output = "{action(op + "Response")}", '
                f"fault = {{\n        @FaultAction(className = KmsFault_Exception.class, "
                f'value = "{FAULT_ACTION}")') in sei, op


@pytest.mark.needs("jaxws")
def test_wsimport_reads_the_served_wsdl(server: ServerProcess, tmp_path: Path) -> None:
    out, sei, service = _wsimport(server.url + "?wsdl", tmp_path)
    assert _diagnostics(out) == [SOAP12_NOTE.format("KmsPort")], out
    _check_sei(sei, list(OPERATIONS))
    # both ports; the Credential header as a method parameter (-XadditionalHeaders) that
    # clashes with no Credential element of a Body (Authenticate, RegisterEndpoint, ...)
    assert "getKmsPort()" in service and "getKmsSoap11Port()" in service
    assert sei.count('header = true, partName = "CredentialHeader")') == len(OPERATIONS)


@pytest.mark.needs("jaxws")
def test_wsimport_reads_the_client_service_wsdl(tmp_path: Path) -> None:
    out, sei, service = _wsimport(str(wsdl_dir() / "kms-client.wsdl"), tmp_path)
    assert _diagnostics(out) == [SOAP12_NOTE.format("KmsClientPort")], out
    _check_sei(sei, list(CLIENT_OPERATIONS))
    assert "getKmsClientPort()" in service


def _gsoap(wsdl: str, out: Path, *options: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """wsdl2h then soapcpp2 -j (C++ proxies), both without a diagnostic; returns per
    service (binding) {operation: (input, output, fault action)} as wsdl2h derived them."""
    text = _run([_tool("wsdl2h"), *options, "-o", "kms.h", wsdl], out)
    assert _diagnostics(text) == [], text
    header = (out / "kms.h").read_text()
    text = _run([_tool("soapcpp2"), "-j", "-C", "-x", "kms.h"], out)
    assert _diagnostics(text) == [] and "Compilation successful" in text, text
    services: dict[str, str] = dict(re.findall(r"^//gsoap (\w+) +service name:\s+(\w+)",
                                               header, re.MULTILINE))
    found: dict[str, dict[str, tuple[str, ...]]] = {}
    for prefix, name in services.items():
        actions: dict[str, list[str]] = {}
        for kind in ("input-action", "output-action", "fault-action"):
            for op, uri in re.findall(rf"^//gsoap {prefix} +service method-{kind}:\s+(\w+) "
                                      r"(\S+)$", header, re.MULTILINE):
                actions.setdefault(op.rstrip("_"), []).append(uri)
        found[name] = {op: tuple(uris) for op, uris in actions.items()}
    return found


@pytest.mark.needs("gsoap")
def test_gsoap_reads_the_served_wsdl(server: ServerProcess, tmp_path: Path) -> None:
    found = _gsoap(server.url + "?wsdl", tmp_path, "-N", "kms")
    expected = {op: (action(op), action(op + "Response"), FAULT_ACTION) for op in OPERATIONS}
    assert found == {"KmsSoap12Binding": expected, "KmsSoap11Binding": expected}
    for binding in ("KmsSoap12Binding", "KmsSoap11Binding"):
        assert (tmp_path / f"soap{binding}Proxy.cpp").exists()


@pytest.mark.needs("gsoap")
def test_gsoap_reads_the_client_service_wsdl(tmp_path: Path) -> None:
    found = _gsoap(str(wsdl_dir() / "kms-client.wsdl"), tmp_path)
    assert found == {"KmsClientSoap12Binding": {
        op: (action(op), action(op + "Response"), FAULT_ACTION) for op in CLIENT_OPERATIONS}}
