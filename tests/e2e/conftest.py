"""Fixtures for administration tests: fresh realms and clients with stated rights."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from kms_ws.client import KmsClient

from ..conftest import make_client
from ..support.server import ServerProcess
from ..support.validating import ValidatingPlugin

Rights = dict[str, tuple[str, ...]]


@pytest.fixture()
def new_realm(admin: KmsClient) -> Callable[[], str]:
    """Creates a realm (the bootstrap administrator gets every right in it)."""
    def make() -> str:
        uri = f"realm://example.com/r-{uuid.uuid4().hex[:10]}"
        admin.admin_create("Realm", {"RealmId": uri})
        return uri
    return make


@pytest.fixture()
def principal(server: ServerProcess, admin: KmsClient,
              validator: ValidatingPlugin) -> Iterator[Callable[..., tuple[KmsClient, str]]]:
    """principal({realm: rights}, admin=False, name=None) -> (KmsClient, client id)."""
    made: list[KmsClient] = []

    def make(grants: Rights, administrator: bool = False,
             name: str | None = None, **fields: object) -> tuple[KmsClient, str]:
        name = name or f"p-{uuid.uuid4().hex[:10]}"
        password = f"pw-{uuid.uuid4().hex}"
        doc = {"Name": name, "Administrator": administrator, **fields,
               "RealmAssociations": {"RealmAssociation": [
                   {"Realm": r, **({"Right": list(rights)} if rights else {})}
                   for r, rights in grants.items()]}}
        created = admin.admin_create("Client", doc, password=password)
        c = make_client(server.url, name, password, validator)
        made.append(c)
        return c, created["ClientId"]

    yield make
    for c in made:
        c.close()
