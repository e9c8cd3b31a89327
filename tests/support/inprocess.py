"""The WSGI application in process — real SQLite store, real crypto, real XML — with a
clock the test moves, for tests that count what a request costs (password hashes) or
need time to pass (backoff, lockout expiry, audit intervals). Every request and answer
is validated against schemas/."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from lxml import etree

from kms_ws.app import create_app, init_data_dir
from kms_ws.config import Config
from kms_ws.crypto.passwords import hash_password
from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind
from kms_ws.security.http_auth import PEER_CERTIFICATE
from kms_ws.security.settings import SecuritySettings
from kms_ws.xmlns import KMS, SOAP, WSA

from .clock import Clock
from .envelopes import envelope
from .schema_check import validate_envelope

NS = {"s": SOAP, "wsa": WSA, "kms": KMS}
DEFAULT_REALM = "realm://localhost/default"


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    env: etree._Element

    @property
    def error_code(self) -> str | None:
        return self.env.findtext(".//kms:ErrorCode", namespaces=NS)

    @property
    def ok(self) -> bool:
        return self.env.find("s:Body/s:Fault", NS) is None

    def fault(self) -> tuple[Any, ...]:
        """Everything a client sees of a fault but what differs per request (request id,
        MessageID, RelatesTo, the response's signature and timestamp): HTTP status,
        WWW-Authenticate, Content-Type, wsa:Action and the whole s:Fault element."""
        fault = self.env.find("s:Body/s:Fault", NS)
        assert fault is not None, etree.tostring(self.env)[:600]
        fault = copy.deepcopy(fault)
        for rid in fault.iterfind(".//kms:RequestId", NS):
            rid.text = "-"
        return (self.status, self.headers.get("WWW-Authenticate"),
                self.headers.get("Content-Type"),
                self.env.findtext("s:Header/wsa:Action", namespaces=NS),
                etree.tostring(fault, method="c14n"))


def random_bytes_request() -> bytes:
    return envelope("<kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes>"
                    "</kms:GetRandomBytes>", op="GetRandomBytes")


def login_request(username: str, password: str) -> bytes:
    return envelope(
        "<kms:Authenticate><kms:RequestType>Login</kms:RequestType><kms:Credential>"
        "<kms:CredentialType>UsernamePassword</kms:CredentialType><kms:UsernamePassword>"
        f"<kms:Username>{username}</kms:Username><kms:Password>{password}</kms:Password>"
        "</kms:UsernamePassword></kms:Credential></kms:Authenticate>", op="Authenticate")


def session_request(token: str) -> bytes:
    return envelope(
        "<kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes></kms:GetRandomBytes>",
        op="GetRandomBytes",
        headers=f"<kms:Credential><kms:CredentialType>Session</kms:CredentialType>"
                f"<kms:SessionToken>{token}</kms:SessionToken></kms:Credential>")


class InProcessServer:
    def __init__(self, data_dir: Path, security: dict[str, Any] | None = None) -> None:
        settings = SecuritySettings.from_mapping(security or {})
        self.config = Config(data_dir=data_dir, security=settings)
        db, _ = init_data_dir(self.config)
        db.dispose()
        self.app = create_app(self.config)
        self.clock = Clock()
        self.app.service.clock = self.clock
        self.service = self.app.service
        self.db = self.app.service.db

    def add_client(self, name: str, password: str, admin: bool = False) -> str:
        endpoint_id = str(uuid.uuid4())
        with self.db.unit_of_work(write=True) as uow:
            uow.endpoints.insert_endpoint(Endpoint(
                endpoint_id=endpoint_id, kind=EndpointKind.CLIENT, name=name,
                state=ClientState.ACTIVE, credential_type=CredentialType.USERNAME_PASSWORD,
                version=1, realms=(DEFAULT_REALM,), is_admin=admin,
                password_hash=hash_password(password)), self.clock())
        return endpoint_id

    def client(self, name: str) -> Endpoint:
        with self.db.unit_of_work() as uow:
            ep = uow.endpoints.find_client(name)
        assert ep is not None
        return ep

    def post(self, body: bytes, auth: tuple[str, str] | None = None,
             addr: str = "192.0.2.10", peer_certificate: bytes | None = None) -> Answer:
        """peer_certificate: the DER certificate the HTTP front verified in the TLS
        handshake (environ["kms_ws.peer_certificate"], as kms_ws.http_worker hands it)."""
        validate_envelope(body)
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/wsman",
                   "CONTENT_LENGTH": str(len(body)),
                   "CONTENT_TYPE": "application/soap+xml;charset=UTF-8",
                   "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "https",
                   "REMOTE_ADDR": addr}
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            environ["HTTP_AUTHORIZATION"] = f"Basic {token}"
        if peer_certificate is not None:
            environ[PEER_CERTIFICATE] = peer_certificate
        started: list[Any] = []
        out = b"".join(self.app(environ, lambda status, headers: started.append(
            (status, headers))))
        status, headers = started[0]
        return Answer(int(status.split()[0]), dict(headers), validate_envelope(out))

    def random_bytes(self, auth: tuple[str, str] | None,
                     addr: str = "192.0.2.10") -> Answer:
        return self.post(random_bytes_request(), auth, addr)

    def lock(self, name: str, addr: str = "192.0.2.99") -> None:
        """Wrong passwords, a few minutes apart (past any backoff), until `name` is
        Locked."""
        for _ in range(40):
            if self.client(name).state is ClientState.LOCKED:
                return
            self.clock.now += timedelta(minutes=5)
            assert not self.random_bytes((name, "a-wrong-password"), addr).ok
        raise AssertionError(f"{name} was not locked")

    def close(self) -> None:
        self.db.dispose()


class PasswordHashes:
    """Every scrypt computation (the password hash) made while counting: its cost
    parameters and salt."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @property
    def count(self) -> int:
        return len(self.calls)

    def params(self) -> set[tuple[Any, ...]]:
        return {(c["n"], c["r"], c["p"], c["dklen"], c["maxmem"], len(c["salt"]))
                for c in self.calls}

    @contextmanager
    def counting(self, monkeypatch: Any) -> Iterator[PasswordHashes]:
        real = hashlib.scrypt

        def scrypt(password: bytes, *, salt: bytes, n: int, r: int, p: int,
                   maxmem: int = 0, dklen: int = 64) -> bytes:
            self.calls.append({"salt": salt, "n": n, "r": r, "p": p, "maxmem": maxmem,
                               "dklen": dklen})
            return real(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)

        self.calls.clear()
        with monkeypatch.context() as m:
            m.setattr(hashlib, "scrypt", scrypt)
            yield self
