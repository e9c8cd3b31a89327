"""Stateless enumeration contexts (HMAC-SHA256 under a key derived from the master key)
and the UpdatePending backoff."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kms_ws.client.wsman import UPDATE_PAGE
from kms_ws.crypto import master_key
from kms_ws.domain.errors import InvalidEnumerationContext
from kms_ws.service import enumeration_context as ec
from kms_ws.service.subscriptions import next_attempt
from kms_ws.service.update_list import MAX_ITEMS

NOW = datetime(2030, 1, 1, 12, 0, 0)


def cursor(**kw) -> ec.Cursor:  # type: ignore[no-untyped-def]
    base = dict(pos=10, high=99, caller="c1", expires=4_000_000_000,
                filter=(("type", "AllKeys"), ("client", ""), ("pep", "")), mode="")
    base.update(kw)
    return ec.Cursor(**base)  # type: ignore[arg-type]


def test_round_trip_and_any_node_with_the_same_master_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mk = master_key.create(tmp_path / "master.key")
    same = master_key.load(tmp_path / "master.key")  # another process, same file
    text = ec.seal(cursor(), mk.context_mac_key)
    assert ec.open_context(text, same.context_mac_key, "c1", NOW) == cursor()
    assert len(mk.context_mac_key) == 32
    other = master_key.create(tmp_path / "other.key")
    with pytest.raises(InvalidEnumerationContext):
        ec.open_context(text, other.context_mac_key, "c1", NOW)


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: t.split(".")[0],
    lambda t: "x" + t,
    lambda t: "",
    lambda t: "!!!.???",
])
def test_tampered_contexts_are_refused(tmp_path, mutate) -> None:  # type: ignore[no-untyped-def]
    key = master_key.create(tmp_path / "m.key").context_mac_key
    with pytest.raises(InvalidEnumerationContext):
        ec.open_context(mutate(ec.seal(cursor(), key)), key, "c1", NOW)


def test_foreign_and_expired_contexts_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    key = master_key.create(tmp_path / "m.key").context_mac_key
    with pytest.raises(InvalidEnumerationContext):
        ec.open_context(ec.seal(cursor(), key), key, "someone-else", NOW)
    expired = cursor(expires=int(NOW.replace(tzinfo=UTC).timestamp()) - 1)
    with pytest.raises(InvalidEnumerationContext):
        ec.open_context(ec.seal(expired, key), key, "c1", NOW)


def test_backoff_doubles_up_to_the_maximum() -> None:
    waits = [(next_attempt(NOW, n, 2.0, 30.0) - NOW).total_seconds() for n in range(1, 7)]
    assert waits == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_kms_client_asks_for_the_most_items_a_pull_returns() -> None:
    """KmsClient.get_update_list's default page (bench/README.md: keys/s by page size)."""
    assert UPDATE_PAGE == MAX_ITEMS
