"""The one frozen SecuritySettings: safe defaults, SHA-1 cannot be configured, per-realm
signature requirements from the JSON mapping."""

from __future__ import annotations

import dataclasses

import pytest

from kms_ws.security.settings import SecuritySettings


def test_defaults_are_safe() -> None:
    s = SecuritySettings()
    assert s.allow_basic_over_http is False and s.sign_responses is True
    assert (s.timestamp_ttl_seconds, s.clock_skew_seconds) == (300, 60)
    assert not any("sha1" in a for a in s.signature_algorithms + s.digest_algorithms)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.require_signature = True  # type: ignore[misc]


@pytest.mark.parametrize("field,value", [
    ("signature_algorithms", ["http://www.w3.org/2000/09/xmldsig#rsa-sha1"]),
    ("digest_algorithms", ["http://www.w3.org/2000/09/xmldsig#sha1"]),
    ("signature_algorithms", ["http://www.w3.org/2000/09/xmldsig#dsa-sha1"]),
    ("signature_algorithms", ["urn:made-up"]),
])
def test_weak_or_unknown_algorithms_cannot_be_configured(field: str, value: list[str]) -> None:
    with pytest.raises(ValueError, match="not accepted"):
        SecuritySettings.from_mapping({field: value})


def test_signature_requirement_server_wide_and_per_realm() -> None:
    s = SecuritySettings.from_mapping({"require_signature_realms": {"realm://a/x": True,
                                                                    "realm://a/y": False}})
    assert s.signature_required(("realm://a/x",)) and s.signature_required(("realm://a/y",
                                                                           "realm://a/x"))
    assert not s.signature_required(("realm://a/y",)) and not s.signature_required(())
    assert SecuritySettings(require_signature=True).signature_required(())


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        SecuritySettings.from_mapping({"allow_sha1": True})
