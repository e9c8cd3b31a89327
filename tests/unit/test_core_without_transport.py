"""The core speaks the domain's terms: nothing in kms_ws/domain or kms_ws/service names an
HTTP status, a SOAP fault subcode or a WS-* URI. Those are kms_ws.soap's (faults) and
kms_ws.wsman's (resource URIs, delivery modes, Identify, action URIs) to map."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import kms_ws

PACKAGE = Path(kms_ws.__file__).parent
CORE = sorted(p for d in ("domain", "service") for p in (PACKAGE / d).rglob("*.py"))

SUBCODE = re.compile(r"(?:s|wsa|wsman|wsmid|wsen|wxf|wse|wsse|kms):[A-Z][A-Za-z]*")
WS_URI = re.compile(r"schemas\.(?:dmtf\.org|xmlsoap\.org)|docs\.oasis-open\.org|"
                    r"www\.w3\.org/(?:2003/05/soap|2005/08/addressing)")
TRANSPORT_NAMES = {"http_status", "subcode", "fault_detail"}


def _findings(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if SUBCODE.fullmatch(node.value):
                found.append(f"{where}: fault subcode {node.value!r}")
            if WS_URI.search(node.value):
                found.append(f"{where}: WS-* URI in {node.value[:60]!r}")
        elif isinstance(node, ast.Name) and node.id in TRANSPORT_NAMES:
            found.append(f"{where}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in TRANSPORT_NAMES:
            found.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").endswith("xmlns"):
            found.append(f"{where}: imports the wire's namespaces (kms_ws.xmlns)")
        elif isinstance(node, ast.Import) and any(a.name == "kms_ws.xmlns" for a in node.names):
            found.append(f"{where}: imports kms_ws.xmlns")
    return found


def test_the_scan_covers_the_core() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in CORE}
    assert {"domain/errors.py", "service/subscriptions.py", "service/identify.py",
            "service/pep_auth.py", "service/audit_trail.py"} <= names


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_core_module_names_no_transport(path: Path) -> None:
    assert _findings(path) == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scan is not vacuous: each thing it looks for, written in a module, is found."""
    bad = tmp_path / "bad.py"
    bad.write_text('from ..xmlns import WSE\n'
                   'class E:\n'
                   '    subcode = "wsman:AccessDenied"\n'
                   '    http_status = 401\n'
                   'MODE = "http://schemas.xmlsoap.org/ws/2004/08/eventing/DeliveryModes/Push"\n'
                   'def f(e): return e.http_status\n', encoding="utf-8")
    found = _findings(bad, tmp_path)
    assert len(found) == 6, found
