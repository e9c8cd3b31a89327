"""§5.1 "the KMS will store all data set bindings that are reported to it, for future audit
and key query commands": a client — not only an administrator — with Read in a key's
realm asks which keys protected a data set (GetBindings: every binding, newest first,
with its time) and gets every key that protected it to decrypt with (GetKey by data
sets, Usage Decrypt, AllBoundKeys); KmsClient and the CLI do both.

The attacks: a client without Read probes whether a tape, a path or an address was ever
protected in a realm it cannot read. It is refused with E_PERMISSION_DENIED (audited)
whatever it names — bound or not — and a client that reads another realm gets the same
empty answer for a data set bound in this realm as for one bound nowhere. On main the
query did not exist for clients (AdminBindings only, administrators only)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest

from kms_ws.client import KmsClient, KmsFault

from ..conftest import make_client
from ..support.server import ServerProcess, kms
from ..support.validating import ValidatingPlugin

pytestmark = pytest.mark.e2e

Principal = Callable[..., tuple[KmsClient, str]]


def _refused(call: Callable[[], object]) -> KmsFault:
    with pytest.raises(KmsFault) as err:
        call()
    assert err.value.error_code == "E_PERMISSION_DENIED"
    assert err.value.subcode == "wsman:AccessDenied"
    return err.value


def test_a_reader_lists_every_key_that_protected_a_data_set_newest_first(
        principal: Principal, new_realm: Callable[[], str]) -> None:
    realm = new_realm()
    owner, owner_id = principal({realm: ()})
    reader, _ = principal({realm: ("Read", "Reference")})
    tape = f"T-{uuid.uuid4().hex[:8]}"
    first = owner.create_key(datasets=[("volume", tape)], realms=[realm])
    second = owner.create_key(datasets=[("volume", tape), ("pool", "P1")], realms=[realm])
    owner.create_key(datasets=[("volume", tape + "-other")], realms=[realm])

    found, more = reader.get_bindings(("volume", tape))
    assert [b["KeyId"] for b in found] == [second.key_id, first.key_id] and not more
    assert found[0]["Time"] >= found[1]["Time"]
    assert found[0]["DataSet"] == {"Name": "volume", "Value": tape}
    assert found[0]["ReportedBy"] == owner_id
    cut, more = reader.get_bindings(("volume", tape), max_records=1)
    assert [b["KeyId"] for b in cut] == [second.key_id] and more
    of_key, _ = reader.get_bindings(key_id=second.key_id)
    assert {(b["DataSet"]["Name"], b["DataSet"]["Value"]) for b in of_key} == {
        ("volume", tape), ("pool", "P1")}

    # GetKey by data for Decrypt asks for every key that protected the tape
    keys, more = reader.keys_for_decryption([("volume", tape)])
    assert [(k.key_id, k.value) for k in keys] == [(second.key_id, second.value),
                                                   (first.key_id, first.value)]
    assert not more
    # the plain GetKey by data still gives the newest one only
    assert reader.get_key(datasets=[("volume", tape)], usage="Decrypt").key_id == \
        second.key_id
    with pytest.raises(KmsFault) as err:  # encryption takes one key, never a list
        reader._call("GetKey", DataSets={"DataSet": [{"Name": "volume", "Value": tape}]},
                     AllBoundKeys=True, Usage="Encrypt")
    assert err.value.error_code == "E_INVALID_PARAMETER"


def test_without_read_the_query_is_refused_whatever_it_names(
        admin: KmsClient, principal: Principal, new_realm: Callable[[], str]) -> None:
    realm = new_realm()
    owner, _ = principal({realm: ()})
    user, user_id = principal({realm: ("Reference",)})  # may use the keys, not read them
    tape = f"T-{uuid.uuid4().hex[:8]}"
    key = owner.create_key(datasets=[("volume", tape)], realms=[realm])

    bound = _refused(lambda: user.get_bindings(("volume", tape)))
    unbound = _refused(lambda: user.get_bindings(("volume", tape + "-never")))
    by_key = _refused(lambda: user.get_bindings(key_id=key.key_id))
    unknown = _refused(lambda: user.get_bindings(key_id=str(uuid.uuid4())))
    assert "Read" in bound.reason
    assert bound.reason == unbound.reason == by_key.reason == unknown.reason  # no oracle
    keys = _refused(lambda: user.keys_for_decryption([("volume", tape)]))
    assert keys.reason == _refused(
        lambda: user.keys_for_decryption([("volume", tape + "-never")])).reason
    denied = [r for r in admin.admin_audit(client_id=user_id, max_records=1000)
              if r["Result"] == "Denied" and r["Event"] == "E_PERMISSION_DENIED"]
    assert [r["Operation"] for r in denied].count("GetBindings") == 4
    assert [r["Operation"] for r in denied].count("GetKey") == 2


def test_read_in_another_realm_sees_nothing_of_this_one(
        principal: Principal, new_realm: Callable[[], str]) -> None:
    here, elsewhere = new_realm(), new_realm()
    owner, _ = principal({here: ()})
    neighbour, _ = principal({elsewhere: ()})
    stranger, _ = principal({elsewhere: ("Read", "Reference")})
    tape = f"T-{uuid.uuid4().hex[:8]}"
    key = owner.create_key(datasets=[("volume", tape)], realms=[here])
    mine = neighbour.create_key(datasets=[("volume", tape)], realms=[elsewhere])
    # the tape is bound in both realms: the stranger sees its own binding only
    found, _ = stranger.get_bindings(("volume", tape))
    assert [b["KeyId"] for b in found] == [mine.key_id]
    keys, _ = stranger.keys_for_decryption([("volume", tape)])
    assert [k.key_id for k in keys] == [mine.key_id]
    # bound only here, or nowhere: the same empty answer
    only_here = f"T-{uuid.uuid4().hex[:8]}"
    owner.create_key(datasets=[("volume", only_here)], realms=[here])
    for value in (only_here, only_here + "-never"):
        assert stranger.get_bindings(("volume", value)) == ([], False)
        assert stranger.keys_for_decryption([("volume", value)]) == ([], False)
    # a key of this realm is, for it, a key that does not exist
    faults = []
    for key_id in (key.key_id, str(uuid.uuid4())):
        with pytest.raises(KmsFault) as err:
            stranger.get_bindings(key_id=key_id)
        faults.append((err.value.subcode, err.value.error_code))
    assert faults[0] == faults[1] == ("kms:NotFound", "E_NOT_FOUND")


def test_the_cli_queries_bindings(server: ServerProcess, admin: KmsClient,
                                  new_realm: Callable[[], str],
                                  validator: ValidatingPlugin) -> None:
    realm = new_realm()
    name, password = f"p-{uuid.uuid4().hex[:10]}", f"pw-{uuid.uuid4().hex}"
    admin.admin_create("Client", {"Name": name, "RealmAssociations": {"RealmAssociation": [
        {"Realm": realm, "Right": ["Read", "Reference", "Create"]}]}}, password=password)
    tape = f"T-{uuid.uuid4().hex[:8]}"
    with make_client(server.url, name, password, validator) as c:
        key = c.create_key(datasets=[("volume", tape)], realms=[realm])

    def cli(*args: str, check: bool = True):  # type: ignore[no-untyped-def]
        return kms(*args, "--url", server.url, "--user", name, "--password-stdin",
                   stdin=password + "\n", check=check)

    listed = json.loads(cli("bindings", "--dataset", f"volume={tape}").stdout)
    assert [b["KeyId"] for b in listed["bindings"]] == [key.key_id] and not listed["more"]
    every = json.loads(cli("get-key", "--dataset", f"volume={tape}", "--usage", "Decrypt",
                           "--all-bound", "--show-value").stdout)
    assert [k["key_id"] for k in every["keys"]] == [key.key_id]
    assert every["keys"][0]["value_b64"]
    bad = cli("bindings", "--key", key.key_id, "--dataset", f"volume={tape}", check=False)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
