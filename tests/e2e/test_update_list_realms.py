"""GetUpdateList lists a key to exactly the callers with the Read right in one of its
realms, whatever changed them: created in several realms, stored, joined to a realm, taken
out of one, edited, destroyed. The page is filtered on the realms each key row carries
(keys.realms, schema 10), which the store writes with key_realms: both agree after every
change."""

from __future__ import annotations

import os

import pytest

from kms_ws.client import KmsClient
from kms_ws.domain.model import Key

from ..support.db import key_realm_mismatches
from ..support.server import ServerProcess

pytestmark = pytest.mark.e2e


def listed(client: KmsClient) -> dict[str, Key]:
    """The newest version of every key the client's GetUpdateList yields (pages of 2, so
    that a page has to look past keys of other realms)."""
    return {k.key_id: k for k in client.get_update_list(max_elements=2)}


def test_update_list_follows_a_keys_realms(server: ServerProcess, admin: KmsClient,  # type: ignore[no-untyped-def]
                                           new_realm, principal) -> None:
    a, b, c = new_realm(), new_realm(), new_realm()
    maker, _ = principal({a: ("Create",), b: ("Create",)})  # its keys go into a and b
    reader_a, _ = principal({a: ("Read",)})
    reader_b, _ = principal({b: ("Read",)})
    reader_c, _ = principal({c: ("Read",)})
    user_a, _ = principal({a: ("Reference",)})  # may use keys of a, not list them
    only_a, _ = principal({a: ("Create",)})
    both = maker.create_key(friendly_name="in-a-and-b")
    stored = maker.store_key(os.urandom(32), friendly_name="stored-in-a-and-b")
    mine = only_a.create_key(friendly_name="in-a-only")
    assert sorted(both.realms) == sorted((a, b))
    assert set(listed(reader_a)) == {both.key_id, stored, mine.key_id}
    assert set(listed(reader_b)) == {both.key_id, stored}
    assert listed(reader_c) == {} and listed(user_a) == {}

    admin.admin_disassociate("Key", both.key_id, "Realm", a)
    assert set(listed(reader_a)) == {stored, mine.key_id}
    seen = listed(reader_b)[both.key_id]
    assert list(seen.realms) == [b] and seen.version > both.version

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
    assert key_realm_mismatches(server.data_dir) == []
