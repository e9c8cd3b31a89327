"""Shared fixtures: a real server process on loopback, clients that validate every
message against schemas/; and the check of what the collected tests need beyond Python
packages (tests/support/prerequisites.py, docs/testing.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms_ws.client import KmsClient

from .support.clients import ensure_realms
from .support.postgres import (
    PostgresCluster,
    shared_cluster,
    stop_shared_cluster,
    whole_suite_on_postgres,
)
from .support.prerequisites import PREREQUISITES
from .support.server import ADMIN, ServerProcess, running_server
from .support.validating import ValidatingPlugin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*names): what the test needs beyond Python "
                            "packages, by its name in tests/support/prerequisites.py")


def _needs(item: pytest.Item) -> set[str]:
    names = {name for mark in item.iter_markers("needs") for name in mark.args}
    callspec = getattr(item, "callspec", None)
    if "postgres" in getattr(item, "fixturenames", ()) or whole_suite_on_postgres() or \
            (callspec is not None and "postgresql" in callspec.params.values()):
        names.add("postgresql")
    return names


class MissingPrerequisite(pytest.Item):
    """Stands for the tests a missing prerequisite keeps from running: fails in one line."""

    def __init__(self, *, line: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.line = line

    def runtest(self) -> None:
        pytest.fail(self.line, pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Checks once what the collected tests need. When something is missing, the tests
    that need it do not run, and one failing line per missing prerequisite says what,
    how to install it and how many tests wait for it (in CI and elsewhere alike)."""
    needs = {item.nodeid: _needs(item) for item in items}
    wanted = sorted(set().union(*needs.values())) if needs else []
    unknown = [name for name in wanted if name not in PREREQUISITES]
    if unknown:
        raise pytest.UsageError(f"unknown prerequisites {unknown}: "
                                f"tests/support/prerequisites.py knows {list(PREREQUISITES)}")
    missing = {name: why for name in wanted if (why := PREREQUISITES[name].missing())}
    if not missing:
        return
    blocked = [item for item in items if needs[item.nodeid] & missing.keys()]
    config.hook.pytest_deselected(items=blocked)
    failing: list[pytest.Item] = []
    for name, why in missing.items():
        need = PREREQUISITES[name]
        count = sum(1 for item in blocked if name in needs[item.nodeid])
        line = (f"missing {need.what} ({why}): {need.install}; {count} tests need it and "
                "did not run (docs/testing.md)")
        failing.append(MissingPrerequisite.from_parent(
            session, name=f"prerequisite[{name}]", nodeid=f"prerequisite[{name}]", line=line))
    items[:] = failing + [item for item in items if not needs[item.nodeid] & missing.keys()]


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
