"""Fixtures of the security tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kms_ws.client import KmsClient

from ..e2e.conftest import new_realm, principal  # noqa: F401  (shared fixtures)
from ..support.pep import Setup
from ..support.server import ServerProcess


@pytest.fixture()
def pep(server: ServerProcess, admin: KmsClient,
        validator: Any) -> Iterator[Callable[..., Setup]]:
    """make(kind="ec"|"rsa"|"hmac"): a client and a PEP of its own that authenticates
    itself with a credential of that kind."""
    made: list[Setup] = []

    def make(kind: str = "ec") -> Setup:
        made.append(Setup(server, admin, validator, kind))
        return made[-1]

    yield make
    for s in made:
        s.client.close()
