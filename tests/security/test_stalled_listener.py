"""One slow subscriber cannot hold up everyone else's notifications: a client whose
NotifyTo (or EndTo) accepts the server's call and never answers holds one of the
deliverer's notify_concurrency slots until notify_timeout_seconds — which these tests
set far beyond their bounds, so nothing passes by the stalled call timing out — and
however many such subscriptions it makes, at most a quarter of them; honest subscribers
get their UpdatePending meanwhile."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from kms_ws.client import ClientServiceListener, KmsClient, UpdateNotice

from ..e2e.test_wsman_eventing import FAST
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.validating import ValidatingPlugin

pytestmark = pytest.mark.e2e
BOUND = 60.0  # failure timeout of every wait; the stalled call would last 10x longer
SLOTS = 4  # the deliverer's notify_concurrency
CONFIG = {**FAST, "notify_timeout_seconds": 10 * BOUND, "notify_give_up_seconds": 0,
          "notify_concurrency": SLOTS}
HONEST = 5  # more than the slots: the honest ones need the slots over and over


class Staller:
    """A listener that accepts every connection, takes the request and never answers,
    until released (then it closes them all)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)  # accept() returns to look at `release`
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/stall"
        self.called = threading.Event()  # a request arrived and is being held
        self.release = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Staller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(BOUND)
        assert not self.thread.is_alive()

    def _serve(self) -> None:
        try:
            while not self.release.is_set():
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    continue
                conn.settimeout(BOUND)
                self.held.append(conn)
                if conn.recv(65536):  # the call's head (at least): never answered
                    self.called.set()
        finally:
            for conn in self.held:
                conn.close()
            self.sock.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("stall") / "data", config=CONFIG) as s:
        yield s


def new_realm(url: str, prefix: str) -> str:
    realm = f"realm://{prefix}/{uuid.uuid4().hex[:8]}"
    with KmsClient(url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
        admin.admin_create("Realm", {"RealmId": realm})
    return realm


@contextmanager
def member(url: str, realm: str, name: str) -> Iterator[KmsClient]:
    """A client with every right in `realm`."""
    name, pw = f"{name}-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with KmsClient(url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
        admin.register_endpoint("Client", name, password=pw, realms=(realm,))
    with KmsClient(url, name, pw, plugins=[ValidatingPlugin()]) as c:
        yield c


def acknowledge(notice: UpdateNotice) -> dict[str, int]:
    return dict(notice.tokens)


@contextmanager
def honest_subscribers(url: str, realm: str) -> Iterator[list[ClientServiceListener]]:
    """HONEST clients of `realm`, each subscribed with a listener that acknowledges."""
    with ExitStack() as stack:
        listeners = []
        for i in range(HONEST):
            client = stack.enter_context(member(url, realm, f"honest{i}"))
            listener = stack.enter_context(client.listener(acknowledge,
                                                           inspect=validate_envelope))
            client.subscribe(listener.url, expires="PT1H")
            listeners.append(listener)
        yield listeners


@pytest.mark.parametrize("stalling", [1, SLOTS], ids=["one", "as-many-as-slots"])
def test_a_notify_to_that_never_answers_does_not_delay_the_others(srv: ServerProcess,
                                                                  stalling: int) -> None:
    """The attacker's client subscribes once, or as often as the deliverer has slots
    (one client holds at most a quarter of them), with a NotifyTo that never answers."""
    realm = new_realm(srv.url, "stall")
    with member(srv.url, realm, "owner") as owner, Staller() as staller, \
            member(srv.url, realm, "attacker") as attacker:
        subs = [attacker.subscribe(staller.url, expires="PT1H", announce_end=False)
                for _ in range(stalling)]
        owner.create_key(friendly_name="stalled")
        assert staller.called.wait(BOUND), "the server never called the stalling NotifyTo"
        _honest_ones_are_notified(srv, realm, owner, staller, "NotifyTo")
        for sub in subs:
            attacker.unsubscribe(sub)


@pytest.mark.parametrize("stalling", [1, SLOTS], ids=["one", "as-many-as-slots"])
def test_an_end_to_that_never_answers_does_not_delay_the_others(srv: ServerProcess,
                                                                stalling: int) -> None:
    """The attacker's subscriptions (one, or as many as the deliverer has slots) expire at
    once: the server sends SubscriptionEnd to their EndTo, which never answers."""
    realm = new_realm(srv.url, "stallend")
    with member(srv.url, realm, "owner") as owner, Staller() as staller, \
            member(srv.url, realm, "attacker") as attacker, \
            attacker.listener(acknowledge) as own:
        for _ in range(stalling):
            attacker.subscribe(own.url, expires="PT1S", end_to=staller.url)
        assert staller.called.wait(BOUND), "the server never called the stalling EndTo"
        _honest_ones_are_notified(srv, realm, owner, staller, "EndTo")


def _honest_ones_are_notified(srv: ServerProcess, realm: str, owner: KmsClient,
                              staller: Staller, stalled: str) -> None:
    """While the staller still holds its call, a key change reaches every honest
    subscriber."""
    with honest_subscribers(srv.url, realm) as listeners:
        owner.create_key(friendly_name="for-everyone")
        for listener in listeners:
            assert listener.wait_for(1, BOUND), \
                f"an honest subscriber waited behind the stalled {stalled}"
        assert not staller.release.is_set() and staller.held  # still stalled
