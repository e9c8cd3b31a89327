"""What the service tells monitoring, without knowing how it is exported.

`Observer` is the port the service counts through (refused authentications, refused
replays); the edge implements it (soap/metrics.py: Prometheus) and the service never
imports an exporter or HTTP. `status` reads the figures a scrape shows (keys by state,
pending UpdatePending deliveries, master-key rotation progress) and `readiness` says
whether this process can serve: the store answers, the master key opens, the disk is
above its free-space watermark. Both go through the service's ports only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..crypto.master_key import Keyring
from ..domain.errors import ErrorKind, KmsError
from ..domain.model import KeyState
from . import rotation
from .ports import SpaceCheck, Store

# The refusals counted as failed authentications: a credential that is missing, wrong or
# not the one the request needs, a signature that does not verify or an unknown signer.
AUTHENTICATION_KINDS = frozenset({
    ErrorKind.CREDENTIAL_REQUIRED, ErrorKind.INVALID_CREDENTIALS, ErrorKind.UNAUTHENTICATED,
    ErrorKind.SIGNATURE_INVALID, ErrorKind.UNKNOWN_SIGNER})


class Observer(Protocol):
    """Counts what the service refuses; implemented at the edge."""

    def authentication_failed(self, operation: str, kind: ErrorKind) -> None: ...

    def replay_refused(self, operation: str) -> None: ...


class NoObserver:
    """Nothing is counted (metrics off, offline commands, tests)."""

    def authentication_failed(self, operation: str, kind: ErrorKind) -> None:
        pass

    def replay_refused(self, operation: str) -> None:
        pass


def observe_refusal(observer: Observer, operation: str, exc: KmsError) -> None:
    """A refused request, counted by what refused it."""
    if exc.kind is ErrorKind.REPLAYED:
        observer.replay_refused(operation)
    elif exc.kind in AUTHENTICATION_KINDS:
        observer.authentication_failed(operation, exc.kind)


@dataclass(frozen=True)
class Status:
    keys_by_state: dict[str, int]
    pending_deliveries: int  # UpdatePending notifications not yet acknowledged
    sealed_values: int  # key values, KEKs, secrets and audit keys sealed at rest
    rotation_pending: int  # of those, sealed under an older master key (0: no rotation)


def status(db: Store) -> Status:
    with db.unit_of_work() as uow:
        keys = {state.value: 0 for state in KeyState} | uow.keys.count_by_state()
        pending = uow.subscriptions.pending_total()
    rot = rotation.state(db)
    return Status(keys, pending, sum(rot.counts.values()), rot.pending)


def readiness(db: Store, keyring: Keyring, space: SpaceCheck | None) -> str | None:
    """None when this process can serve; else why not (for the server's log only)."""
    try:
        with db.unit_of_work() as uow:
            current = uow.sealed.current_master_key_id()
    except Exception as exc:  # noqa: BLE001 - whatever the store raises, it is not ready
        return f"the store does not answer: {type(exc).__name__}: {exc}"
    if current is None:
        return "the store records no master key"
    try:
        keyring.aead_for(current)
    except Exception as exc:  # noqa: BLE001 - a provider or token error of any kind
        return f"the master key {current} does not open: {type(exc).__name__}: {exc}"
    if space is not None:
        try:
            space.check()
        except KmsError as exc:
            return exc.reason
    return None
