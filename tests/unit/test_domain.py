"""Domain rules: life cycle, ciphers, capability negotiation, where new objects go."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kms_ws.domain import ciphers
from kms_ws.domain.capabilities import SERVER_CAPABILITIES, negotiate
from kms_ws.domain.errors import InvalidParameter, KeyNotUsable, PermissionDenied
from kms_ws.domain.lifecycle import check_deliverable, effective_state
from kms_ws.domain.model import Key, KeyState, KeyUsage
from kms_ws.domain.realms import ALL_RIGHTS, Right, missing_rights, new_object_realms

NOW = datetime(2026, 6, 1, 12, 0, 0)


def key(state: KeyState = KeyState.ACTIVE, **dates: datetime) -> Key:
    return Key(key_id="k", state=state, cipher_type=ciphers.DEFAULT_CIPHER, length_bits=256,
               version=1, edit_datetime=NOW, created_at=NOW, t_cached=0, **dates)


def test_dates_drive_the_state_at_request_time() -> None:
    k = key(t_expired=NOW + timedelta(days=1), t_disabled=NOW + timedelta(days=2))
    assert effective_state(k, NOW) is KeyState.ACTIVE
    assert effective_state(k, NOW + timedelta(days=1)) is KeyState.EXPIRED
    assert effective_state(k, NOW + timedelta(days=2)) is KeyState.DISABLED


def test_expired_key_serves_decryption_only() -> None:
    k = key(t_expired=NOW - timedelta(seconds=1))
    assert check_deliverable(k, KeyUsage.DECRYPT, NOW) is KeyState.EXPIRED
    with pytest.raises(KeyNotUsable, match="encrypt"):
        check_deliverable(k, KeyUsage.ENCRYPT, NOW)
    with pytest.raises(KeyNotUsable):
        check_deliverable(k, None, NOW)  # no stated usage = the stricter one


@pytest.mark.parametrize("state", [KeyState.PRE_ACTIVE, KeyState.COMPROMISED,
                                   KeyState.DESTROYED, KeyState.DISABLED])
def test_states_that_are_never_delivered(state: KeyState) -> None:
    for usage in (KeyUsage.ENCRYPT, KeyUsage.DECRYPT):
        with pytest.raises(KeyNotUsable):
            check_deliverable(key(state), usage, NOW)


def test_disabled_date_wins_over_expired() -> None:
    k = key(t_expired=NOW - timedelta(days=2), t_disabled=NOW - timedelta(days=1))
    with pytest.raises(KeyNotUsable, match="Disabled"):
        check_deliverable(k, KeyUsage.DECRYPT, NOW)


def test_cipher_resolution() -> None:
    assert ciphers.resolve(None, None) == (ciphers.DEFAULT_CIPHER, 256)
    assert ciphers.resolve(None, 128) == ("2.16.840.1.101.3.4.1.6", 128)
    assert ciphers.resolve("1.3.111.2.1619.0.1.2", None) == ("1.3.111.2.1619.0.1.2", 512)
    with pytest.raises(InvalidParameter, match="512"):
        ciphers.resolve("1.3.111.2.1619.0.1.2", 256)
    with pytest.raises(InvalidParameter) as err:
        ciphers.resolve("1.2.3", None)
    assert ciphers.DEFAULT_CIPHER in err.value.supported


def test_negotiation_keeps_the_clients_order_and_drops_unknowns() -> None:
    offered = ["x", SERVER_CAPABILITIES[3], SERVER_CAPABILITIES[0], SERVER_CAPABILITIES[3]]
    assert negotiate(offered) == [SERVER_CAPABILITIES[3], SERVER_CAPABILITIES[0]]
    assert negotiate(["nothing", "we", "know"]) == []


DEFAULT, FIN, HR = "realm://localhost/default", "realm://x.org/fin", "realm://x.org/hr"
READ = frozenset({Right.READ})


@pytest.mark.parametrize("grants,within,expected", [
    ({DEFAULT: ALL_RIGHTS, FIN: ALL_RIGHTS, HR: ALL_RIGHTS}, None, (DEFAULT,)),
    ({FIN: ALL_RIGHTS, HR: READ}, None, (FIN,)),
    ({FIN: ALL_RIGHTS, HR: ALL_RIGHTS}, [HR], (HR,)),
    ({DEFAULT: ALL_RIGHTS, FIN: ALL_RIGHTS}, [FIN], (FIN,)),
])
def test_a_new_object_named_nowhere_goes_into_one_realm(grants, within, expected) -> None:  # type: ignore[no-untyped-def]
    assert new_object_realms(grants, [], DEFAULT, "key", within) == expected


def test_several_candidates_without_a_default_must_be_named() -> None:
    grants = {FIN: ALL_RIGHTS, HR: ALL_RIGHTS}
    with pytest.raises(InvalidParameter, match=f"may create in {FIN}, {HR}"):
        new_object_realms(grants, [], DEFAULT, "key")
    assert new_object_realms(grants, [HR, FIN, HR], DEFAULT, "key") == (FIN, HR)
    with pytest.raises(PermissionDenied, match="no Create right in any realm"):
        new_object_realms({FIN: READ}, [], DEFAULT, "key")


def test_named_realms_need_create_and_lie_within_the_bound() -> None:
    grants = {FIN: ALL_RIGHTS, HR: READ}
    with pytest.raises(PermissionDenied, match=f"Create right needed in {HR}"):
        new_object_realms(grants, [FIN, HR], DEFAULT, "key")
    with pytest.raises(PermissionDenied, match="realm://x.org/none"):
        new_object_realms(grants, ["realm://x.org/none"], DEFAULT, "key")
    with pytest.raises(InvalidParameter, match=f"do not include {FIN}"):
        new_object_realms(grants, [FIN], DEFAULT, "key", within=[HR])


def test_only_rights_held_in_that_realm_can_be_granted() -> None:
    grants = {FIN: frozenset({Right.EDIT, Right.READ}), HR: ALL_RIGHTS}
    assert missing_rights(grants, FIN, {Right.READ, Right.REFERENCE, Right.EDIT}) == []
    assert missing_rights(grants, FIN, {Right.CREATE, Right.READ}) == [Right.CREATE]
    # rights are a set (issue 15): Edit implies neither Read nor Delete
    assert missing_rights({FIN: frozenset({Right.EDIT})}, FIN,
                          {Right.READ, Right.DELETE}) == [Right.READ, Right.DELETE]
    assert missing_rights(grants, DEFAULT, {Right.REFERENCE}) == [Right.REFERENCE]
