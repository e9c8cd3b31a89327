"""Clients registered for a test: each alone in a realm of its own, so notifications and
listings of other tests on a shared server never reach it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from kms_ws.client import KmsClient, KmsFault

from .server import ADMIN
from .validating import ValidatingPlugin


@contextmanager
def own_realm_client(url: str, prefix: str) -> Iterator[tuple[KmsClient, str, str]]:
    """A new client (every right in a fresh realm://<prefix>/...), as (client, name,
    password); the client validates every message against schemas/."""
    realm = f"realm://{prefix}/{uuid.uuid4().hex[:8]}"
    name, pw = f"{prefix}-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with KmsClient(url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
        admin.admin_create("Realm", {"RealmId": realm})  # naming a realm never creates it
        admin.register_endpoint("Client", name, password=pw, realms=(realm,))
    with KmsClient(url, name, pw, plugins=[ValidatingPlugin()]) as c:
        yield c, name, pw


def ensure_realms(admin: KmsClient, realms: tuple[str, ...]) -> None:
    """Make the realms that do not exist yet (the administrator gets every right in them):
    naming a realm when registering an endpoint never creates it."""
    for realm in realms:
        try:
            admin.admin_get("Realm", realm)
        except KmsFault as fault:
            if fault.error_code != "E_NOT_FOUND":
                raise
            admin.admin_create("Realm", {"RealmId": realm})
