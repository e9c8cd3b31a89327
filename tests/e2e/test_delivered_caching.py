"""§5.6 and §6.3/§6.4 against a real server: every key the server hands out carries the
CACHING_TYPE the caching policy gives its receiver and the ids of the policies that
decided the delivery; the capability list names exactly the credential types and key
wrapping types that work, as the server's own refusals list them."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest
from lxml import etree

from kms_ws.client import Kek, KmsClient, KmsFault, hmac_signing_key
from kms_ws.xmlns import KMS

from ..conftest import make_client
from ..support.envelopes import envelope
from ..support.server import ServerProcess
from ..support.signing import register_hmac, register_signer
from ..support.validating import ValidatingPlugin, post
from ..support.wrapping import make_holder

pytestmark = pytest.mark.e2e
OWN = 3600  # a key's own T_CACHED (no template)


def _name() -> str:
    return f"n-{uuid.uuid4().hex[:10]}"


def _enforce(admin: KmsClient, kind: str, doc: dict, target_kind: str, target: str) -> str:
    p = admin.admin_create(kind, {"Name": _name(), **doc})
    admin.admin_associate(kind, p["PolicyId"], target_kind, target)
    admin.admin_edit(kind, {**admin.admin_get(kind, p["PolicyId"]), "State": "Enforcing"})
    return str(p["PolicyId"])


def _client(server: ServerProcess, admin: KmsClient, realm: str, validator: ValidatingPlugin,
            **kw) -> tuple[KmsClient, str]:  # type: ignore[no-untyped-def]
    name, password = _name(), f"pw-{uuid.uuid4().hex}"
    created = admin.admin_create("Client", {"Name": name, "RealmAssociations": {
        "RealmAssociation": [{"Realm": realm}]}}, password=password)
    return KmsClient(server.url, name, password, plugins=[validator], **kw), created["ClientId"]


def test_delivered_keys_carry_caching_type_and_the_policies_that_applied(
        server: ServerProcess, admin: KmsClient, new_realm, validator) -> None:  # type: ignore[no-untyped-def]
    realm = new_realm()
    kek = Kek(f"kek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
    client, client_id = _client(server, admin, realm, validator, wrapping_keys=[kek])
    client.register_wrapping_values({kek.key_id: kek.secret})
    tpl = admin.admin_create("KeyTemplate", {
        "FriendlyName": _name(), "KeyLength": 256, "CipherType": "2.16.840.1.101.3.4.1.46",
        "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})
    caching = _enforce(admin, "CachingPolicy", {"Rule": [
        {"CachingType": "Memory", "TCacheInterval": 120},
        {"CachingType": "Persistent", "TCacheInterval": 86400, "Capability": "hasHSM"}]},
        "KeyTemplate", tpl["TemplateId"])
    retention = _enforce(admin, "RetentionPolicy", {"TExpiration": "P90D"},
                         "KeyTemplate", tpl["TemplateId"])

    created = client.create_key(template=tpl["FriendlyName"])
    assert (created.caching_type, created.t_cached) == ("Memory", 120)
    assert sorted(created.applied_policies) == sorted([("CachingPolicy", caching),
                                                       ("RetentionPolicy", retention)])
    access = _enforce(admin, "AccessDistributionPolicy", {"Clients": {"Id": [client_id]}},
                      "Key", created.key_id)
    wrapping = _enforce(admin, "WrappingPolicy", {"WrappingType": "Symmetric",
                                                  "WrappingMode": "aes-key-wrap-pad"},
                        "Key", created.key_id)
    got = client.get_key(created.key_id)
    assert got.value == created.value and got.wrapping_type == "aes-key-wrap-pad"
    assert (got.caching_type, got.t_cached) == ("Memory", 120)
    assert sorted(got.applied_policies) == sorted([
        ("CachingPolicy", caching), ("RetentionPolicy", retention),
        ("AccessDistributionPolicy", access), ("WrappingPolicy", wrapping)])

    # The receiver's capabilities pick the rule, and with it the caching type.
    admin.admin_edit("Client", {**admin.admin_get("Client", client_id),
                                "Capabilities": {"Capability": [{"Name": "hasHSM"}]}})
    assert (client.get_key(created.key_id).caching_type,
            client.get_key(created.key_id).t_cached) == ("Persistent", 86400)

    # Listings carry the same caching type and name the caching policy that decided it.
    listed = {k.key_id: k for k in client.get_update_list()}[created.key_id]
    assert (listed.caching_type, listed.t_cached) == ("Persistent", 86400)
    assert listed.applied_policies == [("CachingPolicy", caching)]
    shown = client.get_key_metadata(created.key_id)  # WS-Transfer Get
    assert (shown.caching_type, shown.applied_policies) == ("Persistent",
                                                            [("CachingPolicy", caching)])

    # Without a caching policy: the key's own T_CACHED, in memory (never Persistent).
    plain = client.create_key()
    assert (plain.caching_type, plain.t_cached, plain.applied_policies) == ("Memory", OWN, [])
    assert client.get_key(plain.key_id).caching_type == "Memory"
    no_cache = _enforce(admin, "CachingPolicy", {"Rule": [
        {"CachingType": "NoCache", "TCacheInterval": 0}]}, "Key", plain.key_id)
    got = client.get_key(plain.key_id)
    assert (got.caching_type, got.t_cached, got.applied_policies) == \
        ("NoCache", 0, [("CachingPolicy", no_cache)])
    client.close()


# ---- §6.3/§6.4: the capability list names what works -----------------------------------

def _enumeration(simple_type: str) -> list[str]:
    """Every value the schema's simple type allows (what a client may send)."""
    xsd = etree.parse(str(Path(__file__).parents[2] / "schemas" / "kms.xsd"))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    return list(xsd.xpath(f"//xs:simpleType[@name='{simple_type}']//xs:enumeration/@value",
                          namespaces=ns))


def _refused_credential(server: ServerProcess, ctype: str) -> list[str]:
    """Authenticate with a credential of `ctype` (value-carrying): the fault's Supported."""
    body = (f"<kms:Authenticate><kms:RequestType>Validate</kms:RequestType><kms:Credential>"
            f"<kms:CredentialType>{ctype}</kms:CredentialType><kms:CredentialValue>"
            "<kms:Length>8</kms:Length><kms:Value>c2VjcmV0ISE=</kms:Value></kms:CredentialValue>"
            "</kms:Credential></kms:Authenticate>")
    _, env = post(server.url, envelope(body, op="Authenticate"))
    assert env is not None
    kf = env.find(f".//{{{KMS}}}KmsFault")
    assert kf is not None, etree.tostring(env)
    assert kf.findtext(f"{{{KMS}}}ErrorCode") == "E_UNSUPPORTED_AUTHENTICATION_MODE"
    return [s.text or "" for s in kf.iterfind(f"{{{KMS}}}Supported")]


def test_capabilities_name_every_credential_type_that_authenticates(
        server: ServerProcess, admin: KmsClient, client: KmsClient, validator) -> None:  # type: ignore[no-untyped-def]
    advertised = [c.split(":", 1)[1] for c in client.get_server_capabilities()
                  if c.startswith("credential:")]
    signer = register_signer(admin)
    secret = secrets.token_bytes(32)
    hmac_name, _ = register_hmac(admin, secret)

    def works(ctype: str) -> bool:
        if ctype == "UsernamePassword":
            return client.authenticate("Validate") is not None
        if ctype == "Session":
            _, name, password = _fresh(admin)
            with make_client(server.url, name, password, validator) as c:
                opened = c.login()  # later requests carry the session credential
                return opened is not None and len(c.get_random_bytes(8)) == 8
        if ctype == "AsymmetricKey":
            with KmsClient(server.url, signing_key=signer.key, plugins=[validator]) as c:
                return c.authenticate("Validate") == signer.endpoint_id
        if ctype == "SymmetricKey":
            with KmsClient(server.url, signing_key=hmac_signing_key(hmac_name, secret),
                           plugins=[validator]) as c:
                return c.authenticate("Validate") is not None
        assert _refused_credential(server, ctype) == advertised  # the refusal lists them
        return False

    schema_types = _enumeration("CredentialType")
    assert set(advertised) <= set(schema_types)
    assert [t for t in schema_types if works(t)] == [t for t in schema_types if t in advertised]
    assert set(advertised) == {"UsernamePassword", "Session", "AsymmetricKey", "SymmetricKey"}


def _fresh(admin: KmsClient) -> tuple[str, str, str]:
    name, password = _name(), f"pw-{uuid.uuid4().hex}"
    client_id = admin.register_endpoint("Client", name, password=password)
    return client_id, name, password


def test_capabilities_name_every_wrapping_type_that_delivers(
        server: ServerProcess, admin: KmsClient, validator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    kek = Kek(f"kek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
    holder = make_holder("cap-cert", tmp_path)
    clients = []
    for keys in ([], [kek], [holder]):  # unwrapped, a KEK, a certificate
        _, name, password = _fresh(admin)
        c = KmsClient(server.url, name, password, plugins=[validator], wrapping_keys=keys)
        if keys:
            c.register_wrapping_values({kek.key_id: kek.secret} if keys[0] is kek
                                       else {holder.key_id: holder.certificate})
        clients.append(c)
    advertised = [c.split(":", 1)[1] for c in clients[0].get_server_capabilities()
                  if c.startswith("wrapping:")]

    def delivers(wrapping_type: str) -> bool:
        for c in clients:
            try:
                key = c.create_key(wrapping_type=wrapping_type)
                fetched = c.get_key(key.key_id, wrapping_type=wrapping_type)
            except KmsFault as exc:
                assert exc.error_code in ("E_UNSUPPORTED_WRAPPING", "E_WRAPPING_REQUIRED"), exc
                continue
            if fetched.wrapping_type == wrapping_type and fetched.value == key.value and \
                    len(fetched.value or b"") == 32:
                return True
        return False

    assert advertised and all(delivers(t) for t in advertised)
    with pytest.raises(KmsFault) as err:
        clients[1].get_key(clients[1].create_key().key_id, wrapping_type="rot13-wrap")
    assert err.value.error_code == "E_UNSUPPORTED_WRAPPING"
    # what the server refuses to make names what it advertises, and nothing else
    assert set(err.value.supported) <= set(advertised) and not delivers("rot13-wrap")

    # §5.3.1 WRAPPING_TYPE: each advertised type makes a policy that wraps deliveries of
    # the key it governs; a type not advertised is refused, naming the advertised ones.
    kinds = [c.split(":", 1)[1] for c in clients[0].get_server_capabilities()
             if c.startswith("wrapping-type:")]
    modes = {"aes-key-wrap-pad": clients[1], "cms-rsa-oaep": clients[2]}

    def governs(wrapping_type: str) -> bool:
        for mode, c in modes.items():
            key = c.create_key()
            try:
                pid = admin.admin_create("WrappingPolicy", {
                    "Name": _name(), "WrappingType": wrapping_type, "WrappingMode": mode})
            except KmsFault as exc:
                assert exc.error_code == "E_INVALID_PARAMETER", exc
                refused[wrapping_type] = list(exc.supported)
                continue
            admin.admin_associate("WrappingPolicy", pid["PolicyId"], "Key", key.key_id)
            admin.admin_edit("WrappingPolicy", {**admin.admin_get(
                "WrappingPolicy", pid["PolicyId"]), "State": "Enforcing"})
            got = c.get_key(key.key_id)
            if got.wrapping_type == mode and got.value == key.value:
                return True
        return False

    refused: dict[str, list[str]] = {}
    schema_kinds = _enumeration("WrappingKind")
    assert kinds and set(kinds) <= set(schema_kinds)
    assert [t for t in schema_kinds if governs(t)] == [t for t in schema_kinds if t in kinds]
    assert all(refused[t] == kinds for t in schema_kinds if t not in kinds)
    for c in clients:
        c.close()
