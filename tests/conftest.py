"""Shared fixtures: a real server process on loopback, clients that validate every
message against schemas/."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms_ws.client import KmsClient

from .support.clients import ensure_realms
from .support.postgres import PostgresCluster, shared_cluster, stop_shared_cluster
from .support.server import ADMIN, ServerProcess, running_server
from .support.validating import ValidatingPlugin


@pytest.fixture(scope="session", autouse=True)
def _stop_postgres() -> Iterator[None]:
    """Stops the test run's PostgreSQL cluster, if a test started it."""
    yield
    stop_shared_cluster()


@pytest.fixture(scope="session")
def postgres() -> PostgresCluster:
    """The test run's private PostgreSQL cluster (started on first use): `create_database()`
    gives a fresh database's URL. Fails (never skips) without the PostgreSQL binaries."""
    return shared_cluster()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("kms") / "data") as srv:
        yield srv


@pytest.fixture()
def validator() -> ValidatingPlugin:
    return ValidatingPlugin()


def make_client(url: str, user: str | None, password: str | None,
                validator: ValidatingPlugin) -> KmsClient:
    return KmsClient(url, user, password, plugins=[validator])


@pytest.fixture()
def admin(server: ServerProcess, validator: ValidatingPlugin) -> Iterator[KmsClient]:
    with make_client(server.url, *ADMIN, validator) as c:
        yield c


@pytest.fixture()
def client_factory(server: ServerProcess, admin: KmsClient, validator: ValidatingPlugin):
    """Registers a fresh (non-admin) client per call; returns (KmsClient, name, password)."""
    made: list[KmsClient] = []

    def make(realms: tuple[str, ...] = ()) -> tuple[KmsClient, str, str]:
        name = f"client-{uuid.uuid4().hex[:8]}"
        password = f"pw-{uuid.uuid4().hex}"
        ensure_realms(admin, realms)
        admin.register_endpoint("Client", name, password=password, realms=realms)
        c = make_client(server.url, name, password, validator)
        made.append(c)
        return c, name, password

    yield make
    for c in made:
        c.close()


@pytest.fixture()
def client(client_factory) -> KmsClient:  # type: ignore[no-untyped-def]
    return client_factory()[0]


def data_files(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob("*") if p.is_file()]
