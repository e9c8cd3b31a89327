"""Domain rules: life cycle, ciphers, capability negotiation."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kms_ws.domain import ciphers
from kms_ws.domain.capabilities import SERVER_CAPABILITIES, negotiate
from kms_ws.domain.errors import InvalidParameter, KeyNotUsable
from kms_ws.domain.lifecycle import check_deliverable, effective_state
from kms_ws.domain.model import Key, KeyState, KeyUsage

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
