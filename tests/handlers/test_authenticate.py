"""§6.2 Authenticate (Login, Validate, Logout) and the caller's authentication on every
operation: wrong passwords, backoff, lockout, sessions — on the in-memory store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kms_ws.domain.errors import (
    AccessDenied,
    CredentialRequired,
    InvalidCredentials,
    UnsupportedAuthenticationMode,
)
from kms_ws.domain.model import ClientState, CredentialType, EndpointKind
from kms_ws.service import messages as m

from ..fakes import callers
from .conftest import PASSWORD, Harness, password_hash

RANDOM = m.GetRandomBytesRequest(4)


def wrong(h: Harness, name: str = "alice") -> InvalidCredentials:
    with pytest.raises(InvalidCredentials) as refused:
        h.run("GetRandomBytes", RANDOM, credential=callers.password(name, "wrong-password"))
    return refused.value


def test_login_opens_a_session_the_client_uses_until_it_expires() -> None:
    h = Harness(session_ttl_seconds=60)
    h.add("alice")
    res = h.run("Authenticate", callers.login("alice", PASSWORD))
    assert res.token and res.expires == h.now + timedelta(seconds=60)
    assert res.client.name == "alice"
    assert h.run("GetRandomBytes", RANDOM, credential=callers.session(res.token)).data
    h.clock.now += timedelta(seconds=61)
    with pytest.raises(InvalidCredentials, match="expired"):
        h.run("GetRandomBytes", RANDOM, credential=callers.session(res.token))


def test_validate_checks_the_body_credential_and_opens_nothing(h: Harness) -> None:
    res = h.run("Authenticate", callers.validate("alice", PASSWORD))
    assert res.token is None and res.client.name == "alice"
    assert not h.store.tables.sessions
    with pytest.raises(InvalidCredentials):
        h.run("Authenticate", callers.validate("alice", "wrong-password"))


def test_logout_revokes_the_session(h: Harness) -> None:
    token = h.run("Authenticate", callers.login("alice", PASSWORD)).token
    logout = m.AuthenticateRequest("Logout", callers.session(token))
    h.run("Authenticate", logout, credential=callers.session(token))
    with pytest.raises(InvalidCredentials):
        h.run("GetRandomBytes", RANDOM, credential=callers.session(token))
    # Logout names the session it revokes
    h.check_refused(UnsupportedAuthenticationMode, "Authenticate", callers.logout(),
              code="E_UNSUPPORTED_AUTHENTICATION_MODE")


def test_another_clients_session_is_not_logged_out(h: Harness) -> None:
    token = h.run("Authenticate", callers.login("alice", PASSWORD)).token
    h.check_refused(InvalidCredentials, "Authenticate",
              m.AuthenticateRequest("Logout", callers.session(token)), "bob")
    assert h.run("GetRandomBytes", RANDOM, credential=callers.session(token)).data


def test_a_pep_opens_no_session() -> None:
    h = Harness()
    owner = h.add("alice")
    pep = h.add("pep-1", kind=EndpointKind.PEP, owner=owner)
    with h.store.unit_of_work(write=True) as uow:  # a PEP with a password, for the test
        uow.endpoints.set_password_hash(pep, h.endpoint(owner).password_hash)
    with pytest.raises(InvalidCredentials):  # find_client: PEPs do not log in
        h.run("Authenticate", callers.login("pep-1", PASSWORD))


def test_no_credential_is_refused_and_counted_as_a_refusal(h: Harness) -> None:
    with pytest.raises(CredentialRequired):
        h.service.run("GetRandomBytes", None, RANDOM, "r", callers.TLS)
    assert h.store.tables.tallies  # the refusal is audited in aggregate
    assert h.audit(operation="GetRandomBytes", result="Denied")


def test_a_password_over_plain_http_is_refused_unless_allowed() -> None:
    strict = Harness(allow_basic_over_http=False)
    strict.add("alice")
    with pytest.raises(AccessDenied) as refused:
        strict.run("GetRandomBytes", RANDOM, transport=callers.PLAIN_HTTP)
    assert refused.value.error_code == "E_ACCESS_DENIED"
    assert strict.run("GetRandomBytes", RANDOM, transport=callers.TLS).data


def test_unknown_user_and_wrong_password_answer_alike(h: Harness) -> None:
    unknown = wrong(h, "nobody")
    h.clock.now += timedelta(minutes=5)  # past the user name's backoff
    bad = wrong(h, "alice")
    assert (unknown.error_code, unknown.reason) == (bad.error_code, bad.reason)


def test_failed_authentications_lock_the_client() -> None:
    h = Harness(lock_after_failed_authentications=3)
    alice = h.add("alice")
    for _ in range(3):
        wrong(h)
    h.clock.now += timedelta(seconds=10)  # past the backoff the third failure started
    with pytest.raises(InvalidCredentials) as refused:  # told nothing it could tell apart
        h.run("GetRandomBytes", RANDOM)
    assert refused.value.reason == "unknown user name or wrong password"
    assert h.endpoint(alice).state is ClientState.LOCKED
    rows = [(r["event"], r["result"], r["count"]) for r in h.store.tables.audit]
    # the lockout, and the refusals: the first at once, the rest counted in its tally
    assert ("ClientLocked", "Denied", None) in rows
    assert rows.count(("AuthenticationFailed", "Denied", 1)) == 1


def test_a_success_resets_the_failure_count() -> None:
    h = Harness(lock_after_failed_authentications=3)
    alice = h.add("alice")
    for _ in range(2):
        wrong(h)
    assert h.endpoint(alice).failed_auth == 2
    h.run("GetRandomBytes", m.GetRandomBytesRequest(1))
    assert h.endpoint(alice).failed_auth == 0
    wrong(h)
    # a third wrong password, but not three in a row: not locked (the backoff of the
    # user name, which a success does not reset, is waited out)
    h.clock.now += timedelta(seconds=2)
    assert h.run("GetRandomBytes", m.GetRandomBytesRequest(1)).data


def test_backoff_refuses_even_the_right_password_at_no_cost(h: Harness) -> None:
    for _ in range(h.settings.backoff_after_failed_authentications + 1):
        wrong(h)
    before = h.store.tables.strikes.copy()
    with pytest.raises(InvalidCredentials):
        h.run("GetRandomBytes", RANDOM)  # barred: unchecked
    assert h.store.tables.strikes == before  # a refusal in backoff is not counted
    h.clock.now += timedelta(seconds=h.settings.backoff_max_seconds + 1)
    assert h.run("GetRandomBytes", RANDOM).data


def test_a_locked_or_disabled_client_with_a_session_learns_its_state(h: Harness) -> None:
    token = h.run("Authenticate", callers.login("alice", PASSWORD)).token
    alice = h.endpoint_id("alice")
    with h.store.unit_of_work(write=True) as uow:
        ep = uow.endpoints.get_endpoint(alice)
        assert ep is not None
        ep.state = ClientState.DISABLED
        uow.endpoints.update_endpoint(ep, h.now)
    with pytest.raises(InvalidCredentials, match="disabled"):
        h.run("GetRandomBytes", RANDOM, credential=callers.session(token))


def test_changed_password_invalidates_the_cached_one(h: Harness) -> None:
    h.run("GetRandomBytes", m.GetRandomBytesRequest(1))  # now cached
    with h.store.unit_of_work(write=True) as uow:
        uow.endpoints.set_password_hash(h.endpoint_id("alice"), password_hash("new-password-9"))
    with pytest.raises(InvalidCredentials):
        h.run("GetRandomBytes", m.GetRandomBytesRequest(1))
    assert h.run("GetRandomBytes", m.GetRandomBytesRequest(1),
                 credential=callers.password("alice", "new-password-9"))


def test_an_unsupported_credential_type_is_refused(h: Harness) -> None:
    with pytest.raises(UnsupportedAuthenticationMode):
        h.run("GetRandomBytes", RANDOM, credential=m.Credential(CredentialType.CHAP,
                                                                 username="alice"))
