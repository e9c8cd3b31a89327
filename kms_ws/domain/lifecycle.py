"""Key life cycle (§4.1.2, §5.2): dates drive transitions at request time."""

from __future__ import annotations

from datetime import datetime, timedelta

from .errors import InvalidParameter, KeyNotUsable
from .model import Key, KeyState, KeyUsage


def effective_state(key: Key, now: datetime) -> KeyState:
    """The state a key is in at `now`: T_DISABLED and T_EXPIRED move an Active key on."""
    if key.state in (KeyState.ACTIVE, KeyState.EXPIRED):
        if key.t_disabled is not None and now >= key.t_disabled:
            return KeyState.DISABLED
        if key.t_expired is not None and now >= key.t_expired:
            return KeyState.EXPIRED
    return key.state


def next_transition(key: Key, now: datetime) -> datetime | None:
    """The first date after `now` at which the key's effective state changes (T_EXPIRED or
    T_DISABLED passing), or None: the time the change sequence must record the change."""
    before = effective_state(key, now)
    for at in sorted(d for d in (key.t_expired, key.t_disabled) if d is not None and d > now):
        state = effective_state(key, at)
        if state is not before:
            return at
    return None


def transitions(key: Key, first: datetime, now: datetime) -> list[tuple[datetime, KeyState]]:
    """Each date from `first` to `now` at which the key's effective state changed, with the
    state it entered, in order: both when T_EXPIRED and T_DISABLED passed since anyone
    looked (a deliverer that was down)."""
    out: list[tuple[datetime, KeyState]] = []
    state = effective_state(key, first - timedelta(microseconds=1))
    for at in sorted({d for d in (key.t_expired, key.t_disabled)
                      if d is not None and first <= d <= now}):
        entered = effective_state(key, at)
        if entered is not state:
            out.append((at, entered))
            state = entered
    return out


def check_deliverable(key: Key, usage: KeyUsage | None, now: datetime) -> KeyState:
    """Refuse delivery of a key whose state forbids the intended use.

    Active: any use. Expired: decryption only (no new data under it). Pre-active,
    Disabled, Compromised, Destroyed: never delivered. A request that states no usage is
    treated as encryption, the stricter of the two.
    """
    state = effective_state(key, now)
    if state is KeyState.ACTIVE:
        return state
    if state is KeyState.EXPIRED and usage is KeyUsage.DECRYPT:
        return state
    wanted = (usage or KeyUsage.ENCRYPT).value.lower()
    raise KeyNotUsable(f"key {key.key_id} is {state.value} and cannot be delivered for {wanted}")


# ---- administrator actions (§5.2) --------------------------------------------------------

ACTIONS = ("Activate", "Disable", "Compromise", "Destroy")

# action -> states (effective, at `now`) it may be applied in, and the state it leads to
_TRANSITIONS: dict[str, tuple[frozenset[KeyState], KeyState]] = {
    "Activate": (frozenset({KeyState.PRE_ACTIVE}), KeyState.ACTIVE),
    "Disable": (frozenset({KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.EXPIRED}),
                KeyState.DISABLED),
    "Compromise": (frozenset({KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.EXPIRED,
                              KeyState.DISABLED}), KeyState.COMPROMISED),
    "Destroy": (frozenset(set(KeyState) - {KeyState.DESTROYED}), KeyState.DESTROYED),
}


def apply_action(key: Key, action: str, now: datetime) -> KeyState:
    """The state an administrator action leads to, or InvalidParameter.

    Destroyed is final: the value is erased, the tombstone and its history stay.
    Compromised can only be destroyed. Nothing returns a key to Active except
    Activate from Pre-active (a disabled or compromised key is never revived)."""
    if action not in _TRANSITIONS:
        raise InvalidParameter(f"unknown key action {action}", supported=ACTIONS)
    allowed, target = _TRANSITIONS[action]
    state = effective_state(key, now)
    if state not in allowed:
        raise InvalidParameter(f"key {key.key_id} is {state.value}: {action} is not allowed")
    return target
