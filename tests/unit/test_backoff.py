"""domain.backoff: the delays of the backoff and when a lockout runs out (pure rules;
tests/security/test_authentication_limits.py drives them through the service)."""

from __future__ import annotations

from datetime import datetime, timedelta

from kms_ws.domain.backoff import Strikes, after_failure, effective_state, may_authenticate
from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind

T0 = datetime(2026, 3, 1, 8, 0, 0)


def _delays(n: int, start_after: int = 3, max_seconds: int = 300) -> list[float | None]:
    strikes, out, now = None, [], T0
    for _ in range(n):
        strikes = after_failure(strikes, now, start_after, 900, max_seconds)
        out.append((strikes.barred_until - now).total_seconds()
                   if strikes.barred_until else None)
        now += timedelta(seconds=1)
    return out


def test_the_delay_doubles_from_the_threshold_up_to_the_maximum() -> None:
    assert _delays(14) == [None, None, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert _delays(100)[-1] == 300  # no overflow however long it goes on


def test_no_backoff_when_the_threshold_is_zero() -> None:
    assert _delays(10, start_after=0) == [None] * 10


def test_counts_are_forgotten_after_the_memory_period() -> None:
    s = after_failure(None, T0, 3, 900, 300)
    s = after_failure(s, T0 + timedelta(seconds=900), 3, 900, 300)
    assert s.failures == 2
    s = after_failure(s, T0 + timedelta(seconds=1801), 3, 900, 300)
    assert s.failures == 1 and s.barred_until is None


def test_a_bar_runs_until_its_time() -> None:
    s = Strikes(3, T0, T0 + timedelta(seconds=1))
    assert s.bars(T0) and s.bars(T0 + timedelta(seconds=0.999))
    assert not s.bars(T0 + timedelta(seconds=1))


def _client(state: ClientState, locked_at: datetime | None) -> Endpoint:
    return Endpoint(endpoint_id="c", kind=EndpointKind.CLIENT, name="c", state=state,
                    credential_type=CredentialType.USERNAME_PASSWORD, version=1,
                    locked_at=locked_at)


def test_a_lockout_runs_out_after_lockout_seconds_unless_it_is_zero() -> None:
    locked = _client(ClientState.LOCKED, T0)
    assert not may_authenticate(locked, T0 + timedelta(seconds=900), 900)
    assert may_authenticate(locked, T0 + timedelta(seconds=901), 900)
    assert effective_state(locked, T0 + timedelta(seconds=901), 900) is ClientState.ACTIVE
    assert not may_authenticate(locked, T0 + timedelta(days=365), 0)  # until unlocked
    assert not may_authenticate(_client(ClientState.LOCKED, None), T0 + timedelta(days=1), 900)
    disabled = _client(ClientState.DISABLED, None)
    assert effective_state(disabled, T0, 900) is ClientState.DISABLED
