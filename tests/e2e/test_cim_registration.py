"""§4.4/§4.6 against a real server: a client registers its PEP with the PEP's CIM
PhysicalElement / SoftwareIdentity; the identity is kept and shown with the PEP; the
administrators' EndpointTypeRules (made with `kms-ws admin endpoint-type-rule`) give the
PEP its endpoint type, whose capabilities then decide what it may cache; a client cannot
overrule them, and requests without an identity work as before."""

from __future__ import annotations

import json
import uuid

import pytest
from zeep.plugins import HistoryPlugin

from kms_ws.client import KmsClient, KmsFault
from kms_ws.xmlns import KMS

from ..support.server import ADMIN, ServerProcess, kms

pytestmark = pytest.mark.e2e

HSM_IDENTITY = {"PhysicalElement": {"Manufacturer": "Acme Storage", "Model": "HSM-9000",
                                    "SerialNumber": "SN-0042", "PartNumber": "PN-7"},
                "SoftwareIdentity": {"VersionString": "2.1.0", "MajorVersion": 2}}


def _name() -> str:
    return f"n-{uuid.uuid4().hex[:10]}"


def _admin_cli(server: ServerProcess, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
    return kms("admin", *args, "--url", server.url, "--user", ADMIN[0], "--password-stdin",
               stdin=ADMIN[1] + "\n", check=check)


@pytest.fixture()
def typed(server: ServerProcess, admin: KmsClient, new_realm):  # type: ignore[no-untyped-def]
    """A realm, two endpoint types in it, and two rules: Acme HSMs (by CLI, priority 10)
    and anything by Acme (priority 20)."""
    realm = new_realm()
    in_realm = {"RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}}
    hsm = admin.admin_create("EndpointType", {"Name": _name(), "Capabilities": {
        "Capability": [{"Name": "hasHSM"}]}, **in_realm})["EndpointTypeId"]
    soft = admin.admin_create("EndpointType", {"Name": _name(), "Capabilities": {
        "Capability": [{"Name": "software"}]}, **in_realm})["EndpointTypeId"]
    admin.admin_create("EndpointTypeRule", {
        "Name": _name(), "Priority": 20, "EndpointTypeId": soft,
        "Match": [{"Property": "PhysicalElement/Manufacturer", "Pattern": "Acme.*"}],
        **in_realm})
    rule = json.loads(_admin_cli(
        server, "endpoint-type-rule", "add", _name(), "--priority", "10",
        "--endpoint-type", hsm, "--match", "PhysicalElement/Manufacturer=Acme.*",
        "--match", r"PhysicalElement/Model=HSM-\d+", "--realm", realm).stdout)
    return realm, hsm, soft, rule


def test_a_pep_registered_with_its_cim_identity_gets_its_type_from_the_rules(
        server: ServerProcess, admin: KmsClient, principal, typed, validator) -> None:  # type: ignore[no-untyped-def]
    realm, hsm, soft, rule = typed
    shown = json.loads(_admin_cli(server, "endpoint-type-rule", "show", rule["RuleId"]).stdout)
    assert shown["EndpointTypeId"] == hsm and shown["Priority"] == 10
    assert [m["Property"] for m in shown["Match"]] == ["PhysicalElement/Manufacturer",
                                                      "PhysicalElement/Model"]
    client, _ = principal({realm: ()})
    history = HistoryPlugin()
    client._zeep.plugins.append(history)  # the raw response: its EndpointTypeId

    pep_id = client.register_endpoint("Pep", _name(), cim_identity=HSM_IDENTITY)
    returned = history.last_received["envelope"].find(f".//{{{KMS}}}EndpointTypeId")
    assert returned is not None and returned.text == hsm
    pep = admin.admin_get("Pep", pep_id)
    assert pep["EndpointTypeId"] == hsm
    assert pep["CimIdentity"] == {
        "PhysicalElement": {"Manufacturer": "Acme Storage", "Model": "HSM-9000",
                            "SerialNumber": "SN-0042", "PartNumber": "PN-7"},
        "SoftwareIdentity": {"VersionString": "2.1.0", "MajorVersion": 2}}
    # kept as presented: an edit does not change it
    admin.admin_edit("Pep", {**pep, "CimIdentity": {"PhysicalElement": {"Model": "forged"}}})
    assert admin.admin_get("Pep", pep_id)["CimIdentity"] == pep["CimIdentity"]
    tape = client.register_endpoint("Pep", _name(), cim_identity={
        "PhysicalElement": {"Manufacturer": "Acme Storage", "Model": "LTO-9"}})
    assert admin.admin_get("Pep", tape)["EndpointTypeId"] == soft
    # an old client: no identity, no type, as before
    old = client.register_endpoint("Pep", _name())
    assert "EndpointTypeId" not in admin.admin_get("Pep", old)
    assert "CimIdentity" not in admin.admin_get("Pep", old)

    # The type the rule gave decides what the PEP may cache (its capability hasHSM).
    key = client.create_key(pep_id=pep_id)
    policy = admin.admin_create("CachingPolicy", {"Name": _name(), "Rule": [
        {"CachingType": "Memory", "TCacheInterval": 60},
        {"CachingType": "Persistent", "TCacheInterval": 86400, "Capability": "hasHSM"}]})
    admin.admin_associate("CachingPolicy", policy["PolicyId"], "Key", key.key_id)
    admin.admin_edit("CachingPolicy", {**admin.admin_get("CachingPolicy", policy["PolicyId"]),
                                       "State": "Enforcing"})
    for_pep = client.get_key(key.key_id, pep_id=pep_id)
    assert (for_pep.caching_type, for_pep.t_cached) == ("Persistent", 86400)
    assert client.get_key(key.key_id).caching_type == "Memory"  # the client itself: no HSM


def test_a_client_cannot_overrule_the_rules_and_an_administrator_can(
        server: ServerProcess, admin: KmsClient, principal, typed) -> None:  # type: ignore[no-untyped-def]
    realm, hsm, soft, _ = typed
    client, client_id = principal({realm: ()})
    name = _name()
    with pytest.raises(KmsFault) as err:
        client.register_endpoint("Pep", name, cim_identity=HSM_IDENTITY, endpoint_type_id=soft)
    assert (err.value.subcode, err.value.error_code) == ("wsman:AccessDenied",
                                                          "E_PERMISSION_DENIED")
    assert soft in err.value.reason and hsm not in err.value.reason  # the rule's type unnamed
    assert not [p for p in admin.admin_list("Pep")[0] if p.get("Name") == name]  # nothing made
    audit = admin.admin_audit(client_id=client_id)
    assert any(r["Operation"] == "RegisterEndpoint" and r["Result"] == "Denied" for r in audit)
    # agreeing with the rule is fine; an administrator's choice is its own
    assert admin.admin_get("Pep", client.register_endpoint(
        "Pep", _name(), cim_identity=HSM_IDENTITY, endpoint_type_id=hsm))["EndpointTypeId"] == hsm
    typed_by_admin = admin.register_endpoint("Client", _name(), password=f"pw-{uuid.uuid4().hex}",
                                             realms=[realm], cim_identity=HSM_IDENTITY,
                                             endpoint_type_id=soft)
    assert admin.admin_get("Client", typed_by_admin)["EndpointTypeId"] == soft
    # a registering client is typed by the rules too
    by_rule = admin.register_endpoint("Client", _name(), password=f"pw-{uuid.uuid4().hex}",
                                      realms=[realm], cim_identity=HSM_IDENTITY)
    shown = admin.admin_get("Client", by_rule)
    assert shown["EndpointTypeId"] == hsm and shown["CimIdentity"]["PhysicalElement"][
        "SerialNumber"] == "SN-0042"


def test_rule_administration_is_checked_and_audited(server: ServerProcess, admin: KmsClient,
                                                    typed) -> None:  # type: ignore[no-untyped-def]
    realm, hsm, _, rule = typed
    bad = _admin_cli(server, "endpoint-type-rule", "add", _name(), "--priority", "1",
                     "--endpoint-type", hsm, "--match", "PhysicalElement/Model=(", "--realm",
                     realm, check=False)
    assert bad.returncode == 1 and "E_INVALID_PARAMETER" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    unknown = _admin_cli(server, "endpoint-type-rule", "add", _name(), "--priority", "1",
                         "--endpoint-type", hsm, "--match", "Chassis/Color=red", check=False)
    assert unknown.returncode == 1 and "SchemaValidationError" in unknown.stderr
    with pytest.raises(KmsFault) as err:
        admin.admin_delete("EndpointType", hsm)
    assert err.value.error_code == "E_OBJECT_IN_USE"
    edited = json.loads(_admin_cli(server, "endpoint-type-rule", "edit", rule["RuleId"],
                                   "--priority", "5").stdout)
    assert edited["Priority"] == 5 and edited["Version"] == 2
    audit = admin.admin_audit(max_records=1000)
    assert any(r["Operation"] == "AdminEdit" and rule["RuleId"] in r.get("Message", "")
               for r in audit)
    _admin_cli(server, "endpoint-type-rule", "delete", rule["RuleId"])
