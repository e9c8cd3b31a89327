"""Handler tests: every §6 operation through KmsService.run — real handlers, real crypto,
the store's ports in memory (tests/fakes/memory_store.py), a clock the test moves.
Credentials and transports come from tests/fakes/callers.py."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from kms_ws.domain.errors import KmsError
from kms_ws.domain.model import (
    AdminObject,
    ClientState,
    CredentialType,
    Endpoint,
    EndpointKind,
    KeyState,
)
from kms_ws.domain.realms import ALL_RIGHTS, Right, realm_object_id
from kms_ws.security.settings import SecuritySettings
from kms_ws.service.context import Transport
from kms_ws.service.dispatch import KmsService
from kms_ws.service.messages import Credential

from ..fakes import callers
from ..fakes.master_keys import keyring
from ..fakes.memory_store import MemoryStore, Tables
from ..support.clock import Clock

DEFAULT = "realm://localhost/default"
OTHER = "realm://localhost/other"
PASSWORD = "a-long-password"


class Harness:
    """One service over one in-memory store."""

    def __init__(self, outbound: Any = None, **security: Any) -> None:
        self.clock = Clock()
        self.master = keyring()
        # in process: the passwords cross no network (a test asks for the refusal)
        security.setdefault("allow_basic_over_http", True)
        self.store = MemoryStore(self.master.key_id)
        self.settings = dataclasses.replace(SecuritySettings.from_mapping({}), **security)
        self.service = KmsService(self.store, self.master, self.settings, self.clock,
                                  outbound=outbound)

    @property
    def now(self) -> datetime:
        return self.clock.now

    def add(self, name: str, *, kind: EndpointKind = EndpointKind.CLIENT,
            grants: dict[str, frozenset[Right]] | None = None, admin: bool = False,
            owner: str | None = None, state: ClientState = ClientState.ACTIVE) -> str:
        """An endpoint put in the store directly (as the offline CLI would)."""
        endpoint_id = str(uuid.uuid4())
        with self.store.unit_of_work(write=True) as uow:
            uow.endpoints.insert_endpoint(Endpoint(
                endpoint_id=endpoint_id, kind=kind, name=name, state=state,
                credential_type=CredentialType.USERNAME_PASSWORD, version=1,
                grants=grants if grants is not None else {},
                realms=() if grants is not None else (DEFAULT,), is_admin=admin,
                owner_id=owner,
                password_hash=password_hash(PASSWORD) if kind is EndpointKind.CLIENT else None),
                self.now)
        return endpoint_id

    def add_realm(self, uri: str = DEFAULT) -> None:
        """The realm as an administered object (what administrators name realms by)."""
        with self.store.unit_of_work(write=True) as uow:
            uow.objects.insert_object(AdminObject("Realm", realm_object_id(uri), uri, None, 1,
                                                  self.now, self.now, {}, (uri,)))

    def endpoint_id(self, name: str) -> str:
        with self.store.unit_of_work() as uow:
            found = uow.endpoints.find_endpoints(name)
        assert len(found) == 1
        return found[0].endpoint_id

    def set_state(self, key_id: str, state: KeyState) -> None:
        """A key's state changed behind the service (as an administrator's edit would)."""
        self._edit_key(key_id, state=state)

    def set_expiry(self, key_id: str, at: datetime) -> None:
        self._edit_key(key_id, t_expired=at)

    def _edit_key(self, key_id: str, **change: Any) -> None:
        with self.store.unit_of_work(write=True) as uow:
            found = uow.keys.get_key(key_id)
            assert found is not None
            uow.keys.update_key(dataclasses.replace(found[0], **change), None)

    def endpoint(self, endpoint_id: str) -> Endpoint:
        with self.store.unit_of_work() as uow:
            ep = uow.endpoints.get_endpoint(endpoint_id)
        assert ep is not None
        return ep

    def run(self, name: str, request: Any, as_: str = "alice", *,
            credential: Credential | None = None,
            transport: Transport = callers.TLS) -> Any:
        cred = credential if credential is not None else callers.password(as_, PASSWORD)
        return self.service.run(name, cred, request, "req-1", transport)

    def check_refused(self, error: type[KmsError], name: str, request: Any, as_: str = "alice",
                *, credential: Credential | None = None, transport: Transport = callers.TLS,
                code: str | None = None, counted: tuple[str, ...] = ()) -> KmsError:
        """The request fails with `error` (and E_ code), changes nothing in the store but
        the audit trail (and the `counted` tables a refusal is counted in), and is audited
        with its error code."""
        before = copy.deepcopy(self.store.tables)
        with pytest.raises(error) as failed:
            self.run(name, request, as_, credential=credential, transport=transport)
        exc = failed.value
        if code is not None:
            assert exc.error_code == code
        after = self.store.tables
        assert unaudited(after, counted) == unaudited(before, counted), \
            "a refusal changed the store"
        new = after.audit[len(before.audit):]
        assert any(r["operation"] == name and r["event"] == exc.error_code
                   and r["result"] == ("Denied" if exc.refusal else "Failed") for r in new), new
        return exc

    def audit(self, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.store.tables.audit
                if all(r.get(k) == v for k, v in match.items())]


def password_hash(password: str) -> str:
    """A stored password hash in the server's format (crypto.passwords), with a cheaper
    scrypt cost: the hash names its parameters, and the server checks it as it is."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**8, r=8, p=1, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${2**8}$8$1${b64(salt).decode()}${b64(digest).decode()}"


def unaudited(tables: Tables, counted: tuple[str, ...] = ()) -> Tables:
    """The store but its audit trail and the `counted` tables."""
    empty = Tables()
    return dataclasses.replace(tables, audit=[],
                               **{name: getattr(empty, name) for name in counted})


@pytest.fixture()
def h() -> Iterator[Harness]:
    """A service with alice (a client with every right in the default realm) and bob (the
    same in the other realm)."""
    harness = Harness()
    harness.add("alice")
    harness.add("bob", grants={OTHER: ALL_RIGHTS})
    yield harness
