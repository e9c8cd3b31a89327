"""service.monitoring on the fake store: readiness names each cause (for the server's log;
GET /readyz answers the same "not ready" whatever it is), and the service reports its
refusals to the observer it was given. A real scrape: tests/e2e/test_health_and_metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kms_ws.domain.errors import ErrorKind, InvalidCredentials, StorageFull
from kms_ws.service import messages as m
from kms_ws.service.monitoring import readiness

from ..fakes import callers
from ..fakes.master_keys import keyring
from ..fakes.memory_store import MemoryStore, MemoryUnitOfWork
from .conftest import PASSWORD, Harness


class UnreachableStore(MemoryStore):
    @contextmanager
    def unit_of_work(self, write: bool = False, durable: bool = True,
                     read_only: bool = False) -> Iterator[MemoryUnitOfWork]:
        raise ConnectionRefusedError("connection refused")
        yield  # (a generator, as the real one)


class LowSpace:
    def check(self) -> None:
        raise StorageFull("free space (3 MiB) is below its reserve of 256 MiB")

    def report(self, reason: str) -> None:
        pass


def test_ready_when_the_store_answers_the_key_opens_and_space_is_left() -> None:
    master = keyring()
    assert readiness(MemoryStore(master.key_id), master, None) is None


@pytest.mark.parametrize("cause", ["store", "master key", "space"])
def test_each_cause_of_unreadiness_is_named(cause: str) -> None:
    master = keyring()
    store = MemoryStore(master.key_id)
    space = None
    if cause == "store":
        store = UnreachableStore(master.key_id)
    elif cause == "master key":
        store = MemoryStore("a-key-the-provider-does-not-hold")
    else:
        space = LowSpace()
    reason = readiness(store, master, space)
    expected = {"store": "the store does not answer: ConnectionRefusedError",
                "master key": "the master key a-key-the-provider-does-not-hold does not open",
                "space": "free space (3 MiB) is below"}[cause]
    assert reason is not None and reason.startswith(expected), reason


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def authentication_failed(self, operation: str, kind: ErrorKind) -> None:
        self.seen.append((operation, kind.value))

    def replay_refused(self, operation: str) -> None:
        self.seen.append((operation, "replay"))


def test_a_wrong_password_is_reported_to_the_observer_and_a_right_one_is_not() -> None:
    h = Harness()
    h.service.observer = recorder = Recorder()
    h.add("alice")
    h.run("GetRandomBytes", m.GetRandomBytesRequest(4),
          credential=callers.password("alice", PASSWORD))
    assert recorder.seen == []
    with pytest.raises(InvalidCredentials):
        h.run("GetRandomBytes", m.GetRandomBytesRequest(4),
              credential=callers.password("alice", "not-" + PASSWORD))
    assert recorder.seen == [("GetRandomBytes", "invalid-credentials")]
