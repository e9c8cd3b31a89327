"""Offline commands that change the store (`kms-ws client add`, `client unlock`,
`template add`) run the online operations' handlers as the local operator: the same
rules, and an audit record naming the operator, chained like every record (`kms-ws audit
verify` accepts it)."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import kms_ws
from kms_ws.client import KmsClient, KmsFault
from kms_ws.config import load
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed
from kms_ws.service.operator import OPERATOR_ID, OPERATOR_NAME
from kms_ws.store.engine import Database
from kms_ws.store.unit_of_work import SqlUnitOfWork

from ..support.server import ServerProcess, kms
from ..support.signing import new_key
from ..support.validating import ValidatingPlugin

pytestmark = pytest.mark.e2e


def _audit(data: Path) -> list[dict]:  # type: ignore[type-arg]
    db = Database(load(data).db_url)
    try:
        with db.unit_of_work() as uow:
            return list(reversed(uow.audit.audit_records(limit=1000)))
    finally:
        db.dispose()


def _clients(data: Path) -> list[tuple]:  # type: ignore[type-arg]
    db = Database(load(data).db_url)
    try:
        with db.transaction() as conn:
            return [(e.endpoint_id, e.name, e.password_hash, e.grants, e.is_admin, e.version)
                    for e in SqlUnitOfWork(conn).endpoints.list_clients()]
    finally:
        db.dispose()


def _pem(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.pem"
    path.write_bytes(self_signed(new_key(), name).public_bytes(serialization.Encoding.PEM))
    return path


def test_an_offline_add_of_a_taken_name_or_certificate_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bob = kms("client", "add", "bob", "--password-stdin", "--data-dir", str(data),
              stdin="bob-password-1\n").stdout.strip()
    cert = _pem(tmp_path, "carol")
    kms("client", "add", "carol", "--cert", str(cert), "--data-dir", str(data))
    before = _clients(data)
    for args, stdin in ((("bob", "--admin", "--password-stdin"), "another-password\n"),
                        (("bob", "--cert", str(_pem(tmp_path, "bob"))), None),
                        (("dave", "--cert", str(cert)), None)):
        again = kms("client", "add", *args, "--data-dir", str(data), stdin=stdin, check=False)
        assert again.returncode == 1
        assert again.stderr.strip().splitlines() == [
            f"kms-ws: client {args[0]!r} or its certificate exists"]
    assert _clients(data) == before  # the same clients, passwords, rights, versions
    refused = [(r["operation"], r["event"], r["actor_name"]) for r in _audit(data)
               if r["result"] != "Success"]
    assert refused == [("AdminCreate", "E_ALREADY_EXISTS", OPERATOR_NAME)] * 3
    assert any(row[0] == bob for row in before)


def test_offline_changes_are_audited_as_the_operator_and_chained(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = kms("client", "add", "root", "--admin", "--password-stdin", "--data-dir",
                str(data), stdin="root-password-1\n").stdout.strip()  # on an empty store
    second = kms("client", "add", "tapes", "--realm", "realm://example.com/tapes", "--right",
                 "Read", "--password-stdin", "--data-dir", str(data),
                 stdin="tapes-password-1\n").stdout.strip()
    done = kms("client", "unlock", "tapes", "--data-dir", str(data))
    assert done.stdout.strip() == "client tapes is not locked"  # and nothing is written
    made = [(r["actor_id"], r["actor_name"], r["operation"], r["result"], r["message"])
            for r in _audit(data)]
    assert made == [(OPERATOR_ID, OPERATOR_NAME, "AdminCreate", "Success", f"Client {first}"),
                    (OPERATOR_ID, OPERATOR_NAME, "AdminCreate", "Success", f"Client {second}")]
    verdict = kms("audit", "verify", "--data-dir", str(data))
    assert verdict.stdout.startswith("audit chain intact: records 1 to 2")
    listing = kms("client", "list", "--data-dir", str(data)).stdout
    assert "admin root  realm://localhost/default(Create,Delete,Edit,Read,Reference)" in listing
    assert "tapes  realm://example.com/tapes(Read)" in listing


def test_an_offline_template_add_is_the_admin_create_of_a_template(tmp_path: Path) -> None:
    """`kms-ws template add` runs AdminCreate as the local operator: the template lands
    in the realm named (default: the default realm) with what was asked, a second one of
    the same name is refused and changes nothing, and both are audited as the operator."""
    data = tmp_path / "data"
    made = kms("template", "add", "tapes-aes", "--length", "256", "--attribute",
               "site=lab", "--realm", "realm://example.com/tapes", "--description", "LTO",
               "--data-dir", str(data)).stdout.strip()
    plain = kms("template", "add", "plain", "--data-dir", str(data)).stdout.strip()
    again = kms("template", "add", "tapes-aes", "--length", "128", "--data-dir", str(data),
                check=False)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == ["kms-ws: template 'tapes-aes' exists"]
    db = Database(load(data).db_url)
    try:
        with db.unit_of_work() as uow:
            tpl = uow.templates.get_template(name="tapes-aes")
            default = uow.templates.get_template(name="plain")
    finally:
        db.dispose()
    assert tpl is not None and default is not None
    assert (tpl.template_id, tpl.length_bits, tpl.realms, tpl.description, tpl.version) == \
        (made, 256, ("realm://example.com/tapes",), "LTO", 1)
    assert [(a.name, a.value) for a in tpl.attributes] == [("site", "lab")]
    assert (default.template_id, default.realms) == (plain, ("realm://localhost/default",))
    assert [(r["actor_name"], r["operation"], r["event"], r["message"]) for r in _audit(data)
            if r["result"] == "Success"] == [
        (OPERATOR_NAME, "AdminCreate", "AdminCreate", f"KeyTemplate {made}"),
        (OPERATOR_NAME, "AdminCreate", "AdminCreate", f"KeyTemplate {plain}")]
    assert [(r["actor_name"], r["operation"], r["event"]) for r in _audit(data)
            if r["result"] != "Success"] == [(OPERATOR_NAME, "AdminCreate", "E_ALREADY_EXISTS")]


def test_an_administrator_creates_a_certificate_client_online(
        server: ServerProcess, admin: KmsClient, validator: ValidatingPlugin) -> None:
    """AdminCreate takes the credentials RegisterEndpoint takes (the offline add runs it
    with a certificate): the client then signs its requests with its key."""
    name, key = f"cert-{uuid.uuid4().hex[:8]}", new_key()
    cert = self_signed(key, name)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cred = {"CredentialType": "AsymmetricKey",
            "CredentialValue": [{"Length": len(pem), "Value": pem}]}
    made = admin._call("AdminCreate", Client={"Name": name}, Credential=cred)
    client_id = admin.admin_get("Client", name)["ClientId"]
    assert made is not None and admin.admin_get("Client", client_id)["CredentialType"] == \
        "AsymmetricKey"
    with KmsClient(server.url, signing_key=wssecurity.SigningKey(key, cert),
                   plugins=[validator]) as signer:
        assert len(signer.get_random_bytes(4)) == 4
    with pytest.raises(KmsFault) as taken:  # a certificate belongs to one endpoint
        admin._call("AdminCreate", Client={"Name": name + "-2"}, Credential=cred)
    assert taken.value.error_code == "E_ALREADY_EXISTS"


def test_the_endpoint_name_rule_lives_in_one_function() -> None:
    """Client and PEP name uniqueness is asked of the store in one place only."""
    root = Path(kms_ws.__file__).parent
    callers = []
    for path in root.rglob("*.py"):
        if "store" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(n, ast.Attribute) and n.attr == "endpoint_name_taken"
                    for n in ast.walk(node)):
                callers.append((path.relative_to(root).as_posix(), node.name))
    assert callers == [("service/admin/endpoints.py", "require_unregistered")]
