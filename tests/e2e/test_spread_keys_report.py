"""`kms-ws report spread-keys`: the keys in more than one realm (before issue 12.1 every
key went into every realm where its creator could create), listed offline from the data
directory with their realms, creation time and creator, for an administrator to review
and narrow (`kms-ws admin key disassociate`)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable

import pytest

from kms_ws.client import KmsClient

from ..support.server import ServerProcess, kms

pytestmark = pytest.mark.e2e


def _report(server: ServerProcess) -> dict[str, dict]:  # type: ignore[type-arg]
    out = kms("report", "spread-keys", "--data-dir", str(server.data_dir))
    doc = json.loads(out.stdout)
    assert doc["count"] == len(doc["keys"])
    return {k["key_id"]: k for k in doc["keys"]}


def test_the_report_lists_keys_in_several_realms_with_their_creators(
        admin: KmsClient, server: ServerProcess, new_realm: Callable[[], str],
        principal: Callable[..., tuple[KmsClient, str]]) -> None:
    fin, hr = new_realm(), new_realm()
    creator, creator_id = principal({fin: (), hr: ()})
    spread = creator.create_key(friendly_name=f"k-{uuid.uuid4().hex[:8]}", realms=[fin, hr])
    stored = creator.store_key(os.urandom(32), realms=[hr, fin])
    alone = creator.create_key(realms=[fin])
    associated = creator.create_key(realms=[hr])
    admin.admin_associate("Key", associated.key_id, "Realm", fin)

    listed = _report(server)
    assert alone.key_id not in listed
    entry = listed[spread.key_id]
    assert entry["realms"] == sorted([fin, hr])
    assert entry["created_by"] == {"id": creator_id, "name": entry["created_by"]["name"],
                                   "operation": "CreateKey"}
    assert entry["friendly_name"] == spread.friendly_name and entry["created_at"].endswith("Z")
    assert listed[stored]["created_by"]["operation"] == "StoreKey"
    assert listed[stored]["source"] == {"kind": "Client", "id": creator_id}
    assert listed[associated.key_id]["realms"] == sorted([fin, hr])

    # reviewed: the administrator narrows a key to one realm; it leaves the report
    admin.admin_disassociate("Key", spread.key_id, "Realm", hr)
    assert spread.key_id not in _report(server)
