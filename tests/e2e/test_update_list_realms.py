"""GetUpdateList lists a key to exactly the callers with the Read right in one of its
realms, whatever changed them: created in several realms, stored, joined to a realm, taken
out of one, edited, destroyed. The page is filtered on the realms each key row carries
(keys.realms, schema 10), which the store writes with key_realms: both agree after every
change."""

from __future__ import annotations

import os
import uuid

import pytest

from kms_ws.client import KmsClient
from kms_ws.domain.model import Key

from ..support.db import key_row_mismatches
from ..support.server import ServerProcess

pytestmark = pytest.mark.e2e


def listed(client: KmsClient) -> dict[str, Key]:
    """The newest version of every key the client's GetUpdateList yields (pages of 2, so
    that a page has to look past keys of other realms)."""
    return {k.key_id: k for k in client.get_update_list(max_elements=2)}


def test_update_list_follows_a_keys_realms(server: ServerProcess, admin: KmsClient,  # type: ignore[no-untyped-def]
                                           new_realm, principal) -> None:
    a, b, c = new_realm(), new_realm(), new_realm()
    maker, _ = principal({a: ("Create",), b: ("Create",)})  # it puts its keys into a and b
    reader_a, _ = principal({a: ("Read",)})
    reader_b, _ = principal({b: ("Read",)})
    reader_c, _ = principal({c: ("Read",)})
    user_a, _ = principal({a: ("Reference",)})  # may use keys of a, not list them
    only_a, _ = principal({a: ("Create",)})
    both = maker.create_key(friendly_name="in-a-and-b", realms=[a, b])
    stored = maker.store_key(os.urandom(32), friendly_name="stored-in-a-and-b", realms=[a, b])
    mine = only_a.create_key(friendly_name="in-a-only")
    assert sorted(both.realms) == sorted((a, b))
    assert set(listed(reader_a)) == {both.key_id, stored, mine.key_id}
    assert set(listed(reader_b)) == {both.key_id, stored}
    assert listed(reader_c) == {} and listed(user_a) == {}

    admin.admin_disassociate("Key", both.key_id, "Realm", a)
    assert set(listed(reader_a)) == {stored, mine.key_id}
    seen = listed(reader_b)[both.key_id]
    # §4.1: a realm association is listed (a new place on the change sequence) but does
    # not change VERSION or EDIT_DATETIME
    assert list(seen.realms) == [b] and seen.version == both.version
    assert seen.edit_datetime == both.edit_datetime

    admin.admin_associate("Key", mine.key_id, "Realm", c)
    assert set(listed(reader_c)) == {mine.key_id}
    assert sorted(listed(reader_a)[mine.key_id].realms) == sorted((a, c))

    doc = admin.admin_get("Key", both.key_id)
    admin.admin_edit("Key", {**doc, "Description": "edited"})
    assert listed(reader_b)[both.key_id].description == "edited"
    assert both.key_id not in listed(reader_a)

    admin.admin_delete("Key", both.key_id)
    tombstone = listed(reader_b)[both.key_id]
    assert tombstone.state == "Destroyed" and list(tombstone.realms) == [b]
    assert both.key_id not in listed(reader_a) and both.key_id not in listed(reader_c)
    assert key_row_mismatches(server.data_dir) == []


def test_update_list_carries_each_keys_facets_after_every_change(  # type: ignore[no-untyped-def]
        server: ServerProcess, admin: KmsClient, new_realm, principal) -> None:
    """Attributes, data sets and extensions are looked up for the keys whose row says
    they have some (keys.facets): created with or without, edited to none or some, and
    data sets bound to a key after it was made (key assignment)."""
    realm, volume = new_realm(), f"v-{uuid.uuid4().hex[:8]}"
    maker, _ = principal({realm: ("Create", "Read")})  # it also receives keys by data set
    reader, _ = principal({realm: ("Read",)})
    plain = maker.create_key(friendly_name="plain")
    tagged = maker.create_key(friendly_name="tagged", attributes={"dept": "hr"},
                              datasets=[("volume", volume)])
    got = listed(reader)
    assert (got[plain.key_id].attributes, got[plain.key_id].datasets) == ({}, [])
    assert got[tagged.key_id].attributes == {"dept": "hr"}
    assert got[tagged.key_id].datasets == [("volume", volume)]

    doc = admin.admin_get("Key", tagged.key_id)
    admin.admin_edit("Key", {**doc, "AttributeAssociations": None,
                             "ApplicationExtensions": {"Extension": [
                                 {"Name": "backup-app/job", "Value": "nightly"}]}})
    admin.admin_edit("Key", {**admin.admin_get("Key", plain.key_id),
                             "AttributeAssociations": {"Attribute": [
                                 {"Name": "site", "Value": "b"}]}})
    got = listed(reader)
    assert got[tagged.key_id].attributes == {}
    assert got[tagged.key_id].datasets == [("volume", volume)]  # an edit keeps the bindings
    assert got[tagged.key_id].extensions == {
        "ApplicationExtensions": {"backup-app/job": "nightly"}}
    assert got[plain.key_id].attributes == {"site": "b"}

    pool = f"pool-{uuid.uuid4().hex[:8]}"
    policy = admin.admin_create("KeyAssignmentPolicy", {
        "Name": f"n-{uuid.uuid4().hex[:10]}", "Condition": [{"Name": "pool", "Value": pool}],
        "Generation": "Shared"})
    admin.admin_associate("KeyAssignmentPolicy", policy["PolicyId"], "Realm", realm)
    admin.admin_edit("KeyAssignmentPolicy", {
        **admin.admin_get("KeyAssignmentPolicy", policy["PolicyId"]), "State": "Enforcing"})
    first = maker.get_key(datasets=[("pool", pool), ("volume", f"{pool}-1")], usage="Encrypt")
    again = maker.get_key(datasets=[("pool", pool), ("volume", f"{pool}-2")], usage="Encrypt")
    assert again.key_id == first.key_id  # the second data set is bound to the same key
    assert ("volume", f"{pool}-2") in listed(reader)[first.key_id].datasets
    assert key_row_mismatches(server.data_dir) == []
