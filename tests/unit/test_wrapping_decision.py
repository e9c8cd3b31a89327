"""The one wrapping decision (domain.wrapping.decide) and the transport rule for
unwrapped delivery."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kms_ws.cli import build_parser
from kms_ws.domain.errors import UnsupportedWrapping, WrappingRequired
from kms_ws.domain.wrapping import (
    POLICY_TYPES,
    WrappingKeyInfo,
    WrappingKeyKind,
    decide,
    usable,
)
from kms_ws.security.settings import SecuritySettings
from kms_ws.service.context import RequestContext, Transport

NOW = datetime(2026, 6, 1, 12, 0, 0)
SYM, CERT = WrappingKeyKind.SYMMETRIC, WrappingKeyKind.CERTIFICATE


def info(key_id: str, kind: WrappingKeyKind, ordinal: int,
         not_after: datetime | None = None) -> WrappingKeyInfo:
    return WrappingKeyInfo("ep", key_id, kind, NOW, ordinal, not_after)


def test_unwrapped_only_when_allowed_and_nothing_registered() -> None:
    assert decide(None, [], [], True).outer is None
    with pytest.raises(WrappingRequired):
        decide(None, [], [], False)
    with pytest.raises(WrappingRequired):
        decide("none", [info("k", SYM, 1)], [], True)  # never falls back to none


def test_defaults_and_requests_follow_the_newest_fitting_key() -> None:
    keys = usable([info("old-kek", SYM, 1), info("cert", CERT, 2)], NOW)
    plan = decide(None, keys, [], False)
    assert (plan.outer.wrapping_type, plan.outer.key.key_id) == ("cms-rsa-oaep", "cert")
    plan = decide("aes-key-wrap", keys, [], False)
    assert plan.outer.key.key_id == "old-kek"
    with pytest.raises(UnsupportedWrapping) as err:
        decide("cms-rsa-oaep", [info("kek", SYM, 1)], [], True)
    assert err.value.supported == ("aes-key-wrap", "aes-key-wrap-pad", "cms-kek",
                                   "cms-auth-enveloped")
    with pytest.raises(UnsupportedWrapping) as err:
        decide("des-ecb", [], [], True)
    assert err.value.supported == ("none",)


def test_expired_certificates_are_not_used() -> None:
    keys = usable([info("kek", SYM, 1), info("cert", CERT, 2, NOW - timedelta(seconds=1))],
                  NOW)
    assert [k.key_id for k in keys] == ["kek"]


def test_pep_keys_make_an_inner_layer_even_without_an_outer_one() -> None:
    pep = [info("pep-kek", SYM, 1)]
    plan = decide(None, [], pep, False)  # the key itself is never exposed: allowed anywhere
    assert plan.outer is None and plan.inner.key.key_id == "pep-kek"
    plan = decide(None, [info("c", CERT, 1)], pep, False)
    assert plan.outer.key.key_id == "c" and plan.inner.wrapping_type == "aes-key-wrap-pad"


@pytest.mark.parametrize("mode,secure,loopback,allowed", [
    ("tls-or-loopback", False, True, True), ("tls-or-loopback", False, False, False),
    ("tls", False, True, False), ("tls", True, False, True), ("never", True, True, False)])
def test_transport_rule(mode, secure, loopback, allowed) -> None:
    ctx = RequestContext(None, None, NOW, "r", SecuritySettings(unwrapped_delivery=mode),
                         None, transport=Transport(secure, loopback))  # type: ignore[arg-type]
    assert ctx.unwrapped_allowed() is allowed


def test_unknown_unwrapped_delivery_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unwrapped_delivery"):
        SecuritySettings.from_mapping({"unwrapped_delivery": "sometimes"})


def test_the_cli_offers_the_wrapping_types_the_server_serves(capsys) -> None:
    """`kms-ws admin wrapping-policy add --wrapping-type` lists what check_policy_type
    accepts: Signature, which the server refuses (no mode of ours signs a blob), is an
    argparse error naming the choices, before any request is made."""
    parser = build_parser()
    for wrapping_type in POLICY_TYPES:
        args = parser.parse_args(["admin", "wrapping-policy", "add", "p",
                                  "--wrapping-type", wrapping_type])
        assert args.wrapping_type == wrapping_type
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["admin", "wrapping-policy", "add", "p",
                           "--wrapping-type", "Signature"])
    assert exit_.value.code == 2
    assert "invalid choice: 'Signature' (choose from 'Symmetric', 'Asymmetric')" in \
        capsys.readouterr().err
