"""Identify and WS-Transfer at /wsman, in the envelope shapes real WS-Management clients
send; every request and response validated against schemas/."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import timedelta

import pytest
from lxml import etree

from kms_ws.client import KmsClient, KmsFault
from kms_ws.xmlns import WSMAN, WXF

from ..support import wsman as W
from ..support.db import snapshot
from ..support.server import ADMIN, ServerProcess
from ..support.validating import post
from .test_faults import fault_of

pytestmark = pytest.mark.e2e
NS = W.NS


def body_child(env: etree._Element) -> etree._Element:
    return next(c for c in env.find("s:Body", NS) if isinstance(c.tag, str))


@pytest.mark.parametrize("header", ["<s:Header/>", ""], ids=["empty-header", "no-header"])
def test_identify_over_basic(server: ServerProcess, header: str) -> None:
    r, env = post(server.url, W.identify(header), auth=ADMIN)
    assert r.status_code == 200
    res = env.find("s:Body/wsmid:IdentifyResponse", NS)
    assert res.findtext("wsmid:ProtocolVersion", namespaces=NS) == WSMAN
    assert res.findtext("wsmid:ProductVendor", namespaces=NS)
    assert res.findtext("wsmid:ProductVersion", namespaces=NS) == "0.1.0"
    assert res.find("wsmid:SecurityProfiles/wsmid:SecurityProfileName", NS) is not None


def test_identify_needs_credentials_unless_configured(server: ServerProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r, env = post(server.url, W.identify())
    assert r.status_code == 401 and fault_of(env)[1] == "wsman:AccessDenied"
    open_srv = ServerProcess(tmp_path / "d", security={"identify_without_credentials": True})
    open_srv.bootstrap()
    open_srv.start()
    try:
        r, env = post(open_srv.url, W.identify())
        assert r.status_code == 200 and env.find("s:Body/wsmid:IdentifyResponse", NS) is not None
        # only Identify: everything else still needs a credential
        r, env = post(open_srv.url, W.get(str(uuid.uuid4())))
        assert r.status_code == 401
    finally:
        assert open_srv.stop() == 0


@pytest.mark.parametrize("style", ["openwsman", "shell", "winrm"])
def test_get_key_returns_metadata_only(server: ServerProcess, admin: KmsClient,
                                       style: str) -> None:
    key = admin.create_key(friendly_name=f"get-{style}", attributes={"site": "A"})
    r, env = post(server.url, W.get(key.key_id, style=style), auth=ADMIN)
    assert r.status_code == 200
    assert env.findtext("s:Header/wsa:Action", namespaces=NS) == f"{WXF}/GetResponse"
    k = env.find("s:Body/kms:Key", NS)
    assert k.findtext("kms:KeyId", namespaces=NS) == key.key_id
    assert k.findtext("kms:FriendlyName", namespaces=NS) == f"get-{style}"
    assert k.find("kms:KeyBlob", NS) is None  # no value unless asked for
    assert key.value is not None and key.value.hex() not in r.text


def test_get_key_value_only_when_asked_and_allowed(server: ServerProcess, admin: KmsClient,
                                                   client_factory) -> None:  # type: ignore[no-untyped-def]
    key = admin.create_key(friendly_name="transfer-value")
    got = admin.get_key_metadata(key.key_id, include_value=True)
    assert got.value == key.value and got.version == key.version
    assert admin.get_key_metadata(key.key_id).value is None
    # a client of another realm: as if the key did not exist
    other, _, _ = client_factory(realms=("realm://elsewhere/x",))
    with pytest.raises(KmsFault) as err:
        other.get_key_metadata(key.key_id, include_value=True)
    assert err.value.subcode == "kms:NotFound" and err.value.http_status == 400


@pytest.mark.parametrize("selectors,detail", [
    (None, "InsufficientSelectors"),
    ({}, "InsufficientSelectors"),
    ({"Name": "x"}, "UnexpectedSelectors"),
    ({"KeyId": "not-a-uuid"}, "InvalidValue"),
    ({"KeyId": ""}, "InvalidValue"),
], ids=["no-selectorset", "empty", "unknown-name", "bad-value", "empty-value"])
def test_bad_selectors(server: ServerProcess, selectors, detail: str) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(server.data_dir)
    r, env = post(server.url, W.get(None, selectors=selectors), auth=ADMIN)
    assert r.status_code == 400
    code, sub, _, error = fault_of(env)
    assert (code, sub, error) == ("s:Sender", "wsman:InvalidSelectors", "E_INVALID_SELECTORS")
    assert env.findtext("s:Body/s:Fault/s:Detail/wsman:FaultDetail", namespaces=NS) \
        .endswith("/faultDetail/" + detail)
    assert env.findtext("s:Header/wsa:Action", namespaces=NS).endswith("/wsman/fault")
    assert snapshot(server.data_dir) == before


def test_duplicate_selectors(server: ServerProcess) -> None:
    k = str(uuid.uuid4())
    sel = (f'<wsman:SelectorSet><wsman:Selector Name="KeyId">{k}</wsman:Selector>'
           f'<wsman:Selector Name="KeyId">{k}</wsman:Selector></wsman:SelectorSet>')
    r, env = post(server.url, W.get(None, extra=sel), auth=ADMIN)
    assert r.status_code == 400 and fault_of(env)[1] == "wsman:InvalidSelectors"


def test_unknown_resource_uri_is_destination_unreachable(server: ServerProcess) -> None:
    r, env = post(server.url, W.get(str(uuid.uuid4()), resource="urn:example:NoSuchThing"),
                  auth=ADMIN)
    assert r.status_code == 400
    code, sub, _, _ = fault_of(env)
    assert (code, sub) == ("s:Sender", "wsa:DestinationUnreachable")
    assert env.findtext("s:Body/s:Fault/s:Detail/wsman:FaultDetail", namespaces=NS) \
        .endswith("/InvalidResourceURI")


def test_create_key_by_ws_transfer(server: ServerProcess, admin: KmsClient) -> None:
    before = snapshot(server.data_dir)["keys"]
    body = "<kms:CreateKey><kms:FriendlyName>wxf-created</kms:FriendlyName></kms:CreateKey>"
    r, env = post(server.url, W.request(f"{WXF}/Create", body), auth=ADMIN)
    assert r.status_code == 200
    created = env.find("s:Body/wxf:ResourceCreated", NS)
    assert created.findtext("wsa:ReferenceParameters/wsman:ResourceURI", namespaces=NS) == W.KEY_URI
    key_id = created.findtext("wsa:ReferenceParameters/wsman:SelectorSet/wsman:Selector",
                              namespaces=NS)
    assert snapshot(server.data_dir)["keys"] == before + 1
    assert admin.get_key(key_id).friendly_name == "wxf-created"


def test_delete_destroys_a_key_through_administration(server: ServerProcess, admin: KmsClient,
                                                     client_factory) -> None:  # type: ignore[no-untyped-def]
    key = admin.create_key(friendly_name="to-destroy")
    _, name, pw = client_factory()
    before = snapshot(server.data_dir)
    r, env = post(server.url, W.request(f"{WXF}/Delete", selectors={"KeyId": key.key_id}),
                  auth=(name, pw))
    assert r.status_code == 400 and fault_of(env)[1] == "wsman:AccessDenied"
    assert snapshot(server.data_dir) == before
    assert admin.get_key(key.key_id).value == key.value
    r, env = post(server.url, W.request(f"{WXF}/Delete", selectors={"KeyId": key.key_id}),
                  auth=ADMIN)
    assert r.status_code == 200 and env.find("s:Body/*", NS) is None
    r, env = post(server.url, W.get(key.key_id), auth=ADMIN)
    assert env.findtext("s:Body/kms:Key/kms:State", namespaces=NS) == "Destroyed"
    with pytest.raises(KmsFault):
        admin.get_key(key.key_id)


def test_get_client_and_pep_is_administration(server: ServerProcess, admin: KmsClient,
                                              client_factory) -> None:  # type: ignore[no-untyped-def]
    client, name, password = client_factory()
    me = client.authenticate("Validate")
    r, env = post(server.url, W.get(None, resource=W.CLIENT_URI, selectors={"ClientId": me}),
                  auth=ADMIN)
    assert r.status_code == 200
    assert env.findtext("s:Body/kms:Client/kms:Name", namespaces=NS) == name
    assert password not in r.text and "scrypt" not in r.text
    pep = client.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:6]}",
                                   pep_attributes={"pep://example.com/lib/slot": "3"})
    r, env = post(server.url, W.get(None, resource=W.PEP_URI, selectors={"PepId": pep}),
                  auth=ADMIN)
    assert r.status_code == 200 and env.findtext("s:Body/kms:Pep/kms:PepId", namespaces=NS) == pep
    # administration needs an administrator
    r, env = post(server.url, W.get(None, resource=W.PEP_URI, selectors={"PepId": pep}),
                  auth=(name, password))
    assert r.status_code == 400 and fault_of(env)[1] == "wsman:AccessDenied"


def test_get_without_credentials(server: ServerProcess) -> None:
    r, env = post(server.url, W.get(str(uuid.uuid4())))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    assert fault_of(env)[1] == "wsman:AccessDenied"


def _put_body(env: etree._Element, **changes: str) -> str:
    """The kms:Key a client got, with some fields changed, as a Put body."""
    key = env.find("s:Body/kms:Key", NS)
    for name, value in changes.items():
        el = key.find(f"kms:{name}", NS)
        el.text = value
    return etree.tostring(key).decode()


def test_put_is_a_versioned_metadata_update(server: ServerProcess, admin: KmsClient) -> None:
    key = admin.create_key(friendly_name="before-put")
    r, env = post(server.url, W.get(key.key_id), auth=ADMIN)
    body = _put_body(env, FriendlyName="after-put")
    r, out = post(server.url, W.request(f"{WXF}/Put", body, selectors={"KeyId": key.key_id}),
                  auth=ADMIN)
    assert r.status_code == 200
    assert out.findtext("s:Body/kms:Key/kms:Version", namespaces=NS) == str(key.version + 1)
    got = admin.get_key(key.key_id)
    assert (got.friendly_name, got.version, got.value) == ("after-put", key.version + 1,
                                                           key.value)
    # the same (now stale) representation again: a version conflict, nothing changes
    before = snapshot(server.data_dir)
    r, out = post(server.url, W.request(f"{WXF}/Put", _put_body(env, FriendlyName="lost"),
                                        selectors={"KeyId": key.key_id}), auth=ADMIN)
    assert r.status_code == 400 and fault_of(out)[1] == "wsman:Concurrency"
    assert snapshot(server.data_dir) == before
    assert admin.get_key(key.key_id).friendly_name == "after-put"


def test_put_of_another_instance_or_by_a_client_is_refused(server: ServerProcess,
                                                          admin: KmsClient,
                                                          client_factory) -> None:  # type: ignore[no-untyped-def]
    key, other = admin.create_key(friendly_name="fixed"), admin.create_key(friendly_name="o")
    _, name, pw = client_factory()
    r, env = post(server.url, W.get(key.key_id), auth=ADMIN)
    before = snapshot(server.data_dir)
    r, out = post(server.url, W.request(f"{WXF}/Put", _put_body(env, FriendlyName="x"),
                                        selectors={"KeyId": other.key_id}), auth=ADMIN)
    assert r.status_code == 400 and fault_of(out)[1] == "wsman:InvalidSelectors"
    r, out = post(server.url, W.request(f"{WXF}/Put", _put_body(env),
                                        selectors={"KeyId": key.key_id}), auth=(name, pw))
    assert r.status_code == 400
    assert snapshot(server.data_dir) == before


def test_every_administered_kind_is_a_resource(server: ServerProcess, admin: KmsClient) -> None:
    """A policy through WS-Transfer: Create, Get, Put (versioned) and Delete reach the same
    administrative handlers as the Admin* operations."""
    uri = "urn:kms-ws:p1619.3:1/RetentionPolicy"
    first = admin.admin_create("RetentionPolicy", {"Name": f"ret-{uuid.uuid4().hex[:8]}",
                                                   "TExpiration": "P30D"})
    r, env = post(server.url, W.get(None, resource=uri,
                                    selectors={"PolicyId": first["PolicyId"]}), auth=ADMIN)
    assert r.status_code == 200
    template = env.find("s:Body/kms:RetentionPolicy", NS)
    name = f"ret-{uuid.uuid4().hex[:8]}"
    template.find("kms:Name", NS).text = name
    template.find("kms:PolicyId", NS).text = str(uuid.uuid4())
    r, env = post(server.url, W.request(f"{WXF}/Create", etree.tostring(template).decode(),
                                        resource=uri), auth=ADMIN)
    assert r.status_code == 200, r.text
    pid = env.findtext("s:Body/wxf:ResourceCreated/wsa:ReferenceParameters/wsman:SelectorSet/"
                       "wsman:Selector[@Name='PolicyId']", namespaces=NS)
    assert admin.admin_get("RetentionPolicy", pid)["Name"] == name
    r, env = post(server.url, W.get(None, resource=uri, selectors={"PolicyId": pid}), auth=ADMIN)
    policy = env.find("s:Body/kms:RetentionPolicy", NS)
    policy.find("kms:TExpiration", NS).text = "P60D"
    put = etree.tostring(policy).decode()
    r, env = post(server.url, W.request(f"{WXF}/Put", put, resource=uri,
                                        selectors={"PolicyId": pid}), auth=ADMIN)
    assert r.status_code == 200, r.text
    assert admin.admin_get("RetentionPolicy", pid)["TExpiration"] == timedelta(days=60)
    r, env = post(server.url, W.request(f"{WXF}/Put", put, resource=uri,
                                        selectors={"PolicyId": pid}), auth=ADMIN)
    assert r.status_code == 400 and fault_of(env)[1] == "wsman:Concurrency"  # stale Version
    r, env = post(server.url, W.request(f"{WXF}/Delete", resource=uri,
                                        selectors={"PolicyId": pid}), auth=ADMIN)
    assert r.status_code == 200
    with pytest.raises(KmsFault):
        admin.admin_get("RetentionPolicy", pid)


def test_put_sets_a_peps_authentication_policy_and_values(server: ServerProcess,
                                                          client_factory) -> None:  # type: ignore[no-untyped-def]
    """§4.6 over WS-Transfer: Get the Pep, Put it back with AuthenticationPolicy and one
    AuthenticationValues tuple; the secret is never sent back, and it is enforced."""
    client, _, _ = client_factory()
    pep = client.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:6]}")
    r, env = post(server.url, W.get(None, resource=W.PEP_URI, selectors={"PepId": pep}),
                  auth=ADMIN)
    doc = env.find("s:Body/kms:Pep", NS)
    assert doc.findtext("kms:AuthenticationPolicy", namespaces=NS) == "None"
    doc.find("kms:AuthenticationPolicy", NS).text = "SymmetricKey"
    secret = secrets.token_bytes(32)
    values = etree.Element(f"{{{NS['kms']}}}AuthenticationValues")
    tup = etree.SubElement(values, f"{{{NS['kms']}}}CredentialValue")
    etree.SubElement(tup, f"{{{NS['kms']}}}Length").text = "32"
    etree.SubElement(tup, f"{{{NS['kms']}}}Value").text = base64.b64encode(secret).decode()
    doc.find("kms:AuthenticationPolicy", NS).addnext(values)
    r, out = post(server.url, W.request(f"{WXF}/Put", etree.tostring(doc).decode(),
                                        resource=W.PEP_URI, selectors={"PepId": pep}),
                  auth=ADMIN)
    assert r.status_code == 200, r.text
    shown = out.find("s:Body/kms:Pep", NS)
    assert shown.findtext("kms:AuthenticationPolicy", namespaces=NS) == "SymmetricKey"
    assert shown.findtext("kms:AuthenticationValuesSet", namespaces=NS) == "true"
    assert shown.find("kms:AuthenticationValues", NS) is None
    assert base64.b64encode(secret).decode() not in r.text
    with pytest.raises(KmsFault) as err:
        client.create_key(pep_id=pep)
    assert err.value.error_code == "E_PEP_PROOF_REQUIRED"
