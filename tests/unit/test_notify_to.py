"""The NotifyTo address rule (kms_ws.service.notify_to) and its setting."""

from __future__ import annotations

import pytest

from kms_ws.domain.errors import NotifyToRefused
from kms_ws.security.settings import SecuritySettings
from kms_ws.service import notify_to


@pytest.mark.parametrize("url,origin,networks", [
    ("http://10.0.0.5:8080/x", "10.0.0.5", ()),
    ("http://[::ffff:10.0.0.5]/x", "10.0.0.5", ()),  # IPv4-mapped is the same host
    ("https://10.9.8.7/x", "192.0.2.1", ("10.9.0.0/16",)),
    ("http://[::1]:9/x", "127.0.0.1", ()),
])
def test_allowed(url: str, origin: str, networks: tuple[str, ...]) -> None:
    target = notify_to.check(url, origin, networks)  # raises NotifyToRefused if not
    assert target.addresses == (notify_to._address(target.host),)  # the literal itself


@pytest.mark.parametrize("url,origin,networks", [
    ("http://10.0.0.6/x", "10.0.0.5", ()),
    ("http://10.10.0.1/x", "192.0.2.1", ("10.9.0.0/16",)),
    ("http://127.0.0.1/x", None, ()),  # no origin known (older subscription): networks only
    ("file:///etc/passwd", "127.0.0.1", ()),
    ("http:///x", "127.0.0.1", ()),
    ("http://127.0.0.1/" + "a" * notify_to.MAX_ADDRESS, "127.0.0.1", ()),  # longer than kept
])
def test_refused(url: str, origin: str | None, networks: tuple[str, ...]) -> None:
    with pytest.raises(NotifyToRefused):
        notify_to.check(url, origin, networks)


def test_the_longest_address_kept_is_allowed() -> None:
    url = "http://127.0.0.1/" + "a" * (notify_to.MAX_ADDRESS - len("http://127.0.0.1/"))
    assert len(url) == notify_to.MAX_ADDRESS
    assert notify_to.check(url, "127.0.0.1", ()).path == url[len("http://127.0.0.1"):]


def test_networks_must_be_cidr() -> None:
    assert SecuritySettings.from_mapping({"notify_to_networks": ["10.0.0.0/8"]}) \
        .notify_to_networks == ("10.0.0.0/8",)
    with pytest.raises(ValueError, match="notify_to_networks"):
        SecuritySettings.from_mapping({"notify_to_networks": ["not-a-net"]})
