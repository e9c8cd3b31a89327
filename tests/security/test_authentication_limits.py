"""Issue 12.5: password authentication is no oracle and no lockout weapon.

An attacker tries user names and passwords. It must not learn which names exist (unknown
user, wrong password and locked account get the same answer at the same cost: one
password hash of the same parameters), must not confirm a guess on a locked account (a
locked account checks nothing), is slowed down per source address and per account name
— unknown names too — before any lockout (backoff, shared through the store), and cannot
lock an administrator out for ever (lockouts expire; `kms-ws client unlock` works
offline).

In process (real store, crypto and XML; the test moves the clock): "the same cost" is
proven by counting scrypt computations at the crypto boundary, "the same answer" by
comparing the whole fault. Nothing here times anything."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kms_ws.domain.model import ClientState
from kms_ws.service import refusals
from kms_ws.store import tables as t

from ..support.inprocess import InProcessServer, PasswordHashes, login_request, session_request

PASSWORD = "alice-password-1"
ADMIN_PASSWORD = "admin-password-1"
SOURCE = "192.0.2.10"


@pytest.fixture()
def kms(tmp_path: Path) -> Iterator[InProcessServer]:
    srv = InProcessServer(tmp_path / "data")  # the default security settings
    srv.add_client("admin", ADMIN_PASSWORD, admin=True)
    srv.add_client("alice", PASSWORD)
    srv.add_client("bob", "bob-password-1")
    yield srv
    srv.close()


@pytest.fixture()
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[PasswordHashes]:
    with PasswordHashes().counting(monkeypatch) as h:
        yield h


def _fresh_source() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


def _past_backoff(kms: InProcessServer) -> None:
    """Five minutes on: longer than bob's backoff after the failures so far, well within
    his 15-minute lockout."""
    kms.clock.now += timedelta(minutes=5)


def test_unknown_user_wrong_password_and_locked_account_answer_alike(
        kms: InProcessServer) -> None:
    kms.lock("bob")
    _past_backoff(kms)
    unknown = kms.random_bytes(("nobody-here", "some-password"), _fresh_source())
    wrong = kms.random_bytes(("alice", "not-her-password"), _fresh_source())
    locked_right = kms.random_bytes(("bob", "bob-password-1"), _fresh_source())
    _past_backoff(kms)
    locked_wrong = kms.random_bytes(("bob", "not-his-password"), _fresh_source())
    assert unknown.error_code == "E_INVALID_CREDENTIALS"
    assert unknown.fault() == wrong.fault() == locked_right.fault() == locked_wrong.fault()
    assert b"locked" not in locked_right.fault()[-1] and b"bob" not in locked_right.fault()[-1]


def test_each_refusal_costs_one_password_hash_of_the_same_parameters(
        kms: InProcessServer, hashes: PasswordHashes) -> None:
    kms.lock("bob")
    hashes.calls.clear()
    for auth in (("bob", "bob-password-1"), ("bob", "not-his-password"),
                 ("nobody-here", "some-password"), ("alice", "not-her-password")):
        _past_backoff(kms)
        before = hashes.count
        assert not kms.random_bytes(auth, _fresh_source()).ok
        assert hashes.count - before == 1, auth
    assert kms.random_bytes(("alice", PASSWORD), _fresh_source()).ok
    assert hashes.count == 5
    assert len(hashes.params()) == 1  # one set of scrypt parameters for all five


def test_a_locked_account_does_not_verify_its_password(
        kms: InProcessServer, hashes: PasswordHashes) -> None:
    """A guess on a locked account cannot be confirmed: the right password is not hashed
    with the account's salt at all."""
    kms.lock("bob")
    stored = kms.client("bob").password_hash or ""
    salt = stored.split("$")[4]
    _past_backoff(kms)
    hashes.calls.clear()
    assert not kms.random_bytes(("bob", "bob-password-1"), _fresh_source()).ok
    assert hashes.count == 1 and hashes.calls[0]["salt"] != base64.b64decode(salt)


def test_anonymous_wrong_passwords_do_not_lock_the_only_administrator(
        kms: InProcessServer, hashes: PasswordHashes) -> None:
    """Fifty quick wrong passwords: only the first few are checked, the rest are refused
    without checking (backoff), and the administrator is not locked."""
    for _ in range(50):
        assert not kms.random_bytes(("admin", "guess-guess-guess"), SOURCE).ok
    assert kms.client("admin").state is ClientState.ACTIVE
    assert hashes.count <= 3


def test_a_lockout_expires(kms: InProcessServer) -> None:
    """Locked by slow guessing, the only administrator is back once the lockout (15
    minutes by default) is over, with its own password. (Its attempt while locked was a
    failure like any other: the backoff it started is waited out too.)"""
    kms.lock("admin")
    kms.clock.now += timedelta(minutes=14)
    assert not kms.random_bytes(("admin", ADMIN_PASSWORD), _fresh_source()).ok
    kms.clock.now += timedelta(minutes=5)
    assert kms.random_bytes(("admin", ADMIN_PASSWORD), _fresh_source()).ok
    assert kms.client("admin").state is ClientState.ACTIVE


def test_the_right_password_during_backoff_is_refused_unchecked_and_alike(
        kms: InProcessServer, hashes: PasswordHashes) -> None:
    """Even the right password, remembered by the worker (HTTP Basic's password cache),
    is refused while the user name is barred: nothing is checked, not even the cache."""
    assert kms.random_bytes(("alice", PASSWORD), _fresh_source()).ok  # now remembered
    wrong = None
    for _ in range(3):
        wrong = kms.random_bytes(("alice", "not-her-password"), _fresh_source())
    hashes.calls.clear()
    right = kms.random_bytes(("alice", PASSWORD), _fresh_source())
    assert wrong is not None and right.fault() == wrong.fault()
    assert hashes.count == 0  # refused without checking
    kms.clock.now += timedelta(seconds=1)  # the first delay: one second
    assert kms.random_bytes(("alice", PASSWORD), _fresh_source()).ok


def test_the_delay_grows_exponentially(kms: InProcessServer) -> None:
    for _ in range(3):
        kms.random_bytes(("alice", "not-her-password"), _fresh_source())
    for delay in (1, 2, 4, 8):  # each further wrong password doubles the wait
        kms.clock.now += timedelta(seconds=delay - 0.5)
        assert not kms.random_bytes(("alice", PASSWORD), _fresh_source()).ok
        kms.clock.now += timedelta(seconds=0.5)
        assert not kms.random_bytes(("alice", "not-her-password"), _fresh_source()).ok
    kms.clock.now += timedelta(seconds=16)
    assert kms.random_bytes(("alice", PASSWORD), _fresh_source()).ok


def test_unknown_names_back_off_like_existing_ones(
        kms: InProcessServer, hashes: PasswordHashes) -> None:
    """Backoff is no oracle: a name nobody has is slowed down exactly like alice."""
    for name in ("alice", "no-such-user"):
        counts = []
        for _ in range(5):
            before = hashes.count
            kms.random_bytes((name, "not-the-password"), _fresh_source())
            counts.append(hashes.count - before)
        assert counts == [1, 1, 1, 0, 0], name


def test_one_source_trying_many_names_backs_off(
        kms: InProcessServer, hashes: PasswordHashes) -> None:
    """Password spraying: 20 failures from one address (each a different name), then
    that address is refused unchecked — even with alice's right password — while
    another address is served. An IPv6 /64 is one source."""
    for i in range(20):
        assert not kms.random_bytes((f"user-{i}", "spray-password"), "2001:db8:1:2::5").ok
    hashes.calls.clear()
    assert not kms.random_bytes(("alice", PASSWORD), "2001:db8:1:2::77").ok
    assert hashes.count == 0
    assert kms.random_bytes(("alice", PASSWORD), "2001:db8:1:3::5").ok


def test_login_with_the_credential_in_the_body_backs_off_too(
        kms: InProcessServer, hashes: PasswordHashes) -> None:
    good = kms.post(login_request("alice", PASSWORD), addr=_fresh_source())
    assert good.ok
    token = good.env.findtext(".//{urn:kms-ws:p1619.3:1}SessionToken")
    wrong = [kms.post(login_request("alice", "not-her-password"), addr=_fresh_source())
             for _ in range(3)]
    hashes.calls.clear()
    right = kms.post(login_request("alice", PASSWORD), addr=_fresh_source())
    assert right.fault() == wrong[-1].fault() and hashes.count == 0
    # a session opened before is no password guess: it keeps working
    assert token and kms.post(session_request(token), addr=_fresh_source()).ok


def test_a_certificate_client_is_not_locked_by_password_guesses(
        kms: InProcessServer) -> None:
    """Only accounts with a password count wrong passwords: guessing at a client that
    signs its requests locks nothing."""
    with kms.db.transaction(write=True) as conn:  # bob now signs: no password at all
        conn.execute(update(t.endpoints).where(t.endpoints.c.name == "bob")
                     .values(password_hash=None, credential_type="AsymmetricKey"))
    for _ in range(15):
        kms.clock.now += timedelta(minutes=5)
        kms.random_bytes(("bob", "a-wrong-password"), _fresh_source())
    assert kms.client("bob").state is ClientState.ACTIVE


def test_counts_nothing_needs_any_more_are_dropped(kms: InProcessServer) -> None:
    """The background pass keeps the store's backoff counts to what can still matter: a
    flood of made-up names leaves nothing behind once forgotten."""
    for i in range(5):
        kms.random_bytes((f"made-up-{i}", "some-password"), f"198.51.100.{200 + i}")

    def kept() -> int:
        with kms.db.transaction() as conn:
            return len(conn.execute(select(t.auth_strikes.c.key)).all())

    assert kept() == 10  # five names, five sources
    kms.clock.now += timedelta(seconds=900)
    refusals.tidy(kms.db, kms.config.security, kms.clock())
    assert kept() == 10  # still remembered: failure_memory_seconds
    kms.clock.now += timedelta(seconds=1)
    refusals.tidy(kms.db, kms.config.security, kms.clock())
    assert kept() == 0
