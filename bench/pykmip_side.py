"""The PyKMIP reference row: throwaway PKI, a PyKMIP server, Get load.

Imported by getkey.py (host side: certificates, interpreter choice, process
control; no PyKMIP import) and run as a script under the interpreter that
has a working PyKMIP (the current one, or bench/.venv-pykmip):

    pykmip_side.py serve      --port P --pki DIR --workdir DIR
    pykmip_side.py create-key --port P --pki DIR           (prints the UID)
    pykmip_side.py load       --port P --pki DIR --uid U --clients 1,8
                              --duration S --warmup S --out FILE
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _load import CellResult, run_cell
from _proc import LOOPBACK, BenchSetupError, ServerProcess, run_bounded, tail, wait_until
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
VENV_DIR = HERE / ".venv-pykmip"
# PyKMIP 0.11 predates SQLAlchemy 2 (and needs >= 1.4): the fallback environment.
VENV_REQUIREMENTS = ["pykmip==0.11.0", "sqlalchemy>=1.4,<2", "cryptography"]
CLIENT_CN = "bench-client"
AES_KEY_BYTES = 32
STEP_TIMEOUT_S = 120.0
VENV_TIMEOUT_S = 900.0


# --------------------------------------------------------------------------
# Host side
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Pki:
    """Paths of the throwaway CA, server and client certificates and keys."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    def cert(self, name: str) -> Path:
        return self.root / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.root / f"{name}.key"

    @property
    def client_conf(self) -> Path:
        """An empty client config, so PyKMIP reads no system-wide file."""
        return self.root / "client.conf"


def make_pki(root: Path) -> Pki:
    """Write a CA, a server cert for 127.0.0.1 and a client cert into `root`."""
    def new_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def issue(subject: str, key: rsa.RSAPrivateKey, issuer: str, signer: rsa.RSAPrivateKey,
              extensions: list[tuple[x509.ExtensionType, bool]]) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateBuilder().subject_name(name(subject))
                   .issuer_name(name(issuer)).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    def write(pki_name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        pki.cert(pki_name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pki.key(pki_name).write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    pki = Pki(root)
    root.mkdir(parents=True, exist_ok=True)
    pki.client_conf.write_text("[client]\n")
    ca_key = new_key()
    ca_cert = issue("kms-ws bench CA", ca_key, "kms-ws bench CA", ca_key,
                    [(x509.BasicConstraints(ca=True, path_length=0), True)])
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    leafs: dict[str, tuple[str, list[x509.ExtensionType]]] = {
        "server": (LOOPBACK, [x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])]),
        "client": (CLIENT_CN, [x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])]),
    }
    for leaf, (cn, exts) in leafs.items():
        key = new_key()
        cert = issue(cn, key, "kms-ws bench CA", ca_key,
                     [(x509.BasicConstraints(ca=False, path_length=None), True)]
                     + [(ext, False) for ext in exts])
        write(leaf, cert, key)
    return pki


def venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def ensure_venv(log: Path) -> Path:
    """Create bench/.venv-pykmip with a PyKMIP-compatible SQLAlchemy, once."""
    python = venv_python()
    marker, wanted = VENV_DIR / ".bench-ready", " ".join(VENV_REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    with open(log, "ab") as out:
        for argv in ([sys.executable, "-m", "venv", "--clear", str(VENV_DIR)],
                     [str(python), "-m", "pip", "install", "-q", *VENV_REQUIREMENTS]):
            try:
                done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, timeout=VENV_TIMEOUT_S,
                                      check=False)
            except subprocess.TimeoutExpired:
                raise BenchSetupError(f"timed out: {' '.join(argv)}") from None
            if done.returncode != 0:
                raise BenchSetupError(f"failed: {' '.join(argv)}\n{tail(log)}")
    marker.write_text(wanted)
    return python


def _script(python: Path | str, *args: str) -> list[str]:
    return [str(python), str(Path(__file__).resolve()), *args]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True
    except OSError:
        return False


@contextmanager
def pykmip_server(python: Path | str, pki: Pki, port: int,
                  workdir: Path) -> Iterator[tuple[str, int]]:
    """Run a PyKMIP server; yield the UID of a fresh AES-256 key on it and the server's
    process group."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = _script(python, "serve", "--port", str(port), "--pki", str(pki.root),
                   "--workdir", str(workdir))
    # SIGINT: PyKMIP's serve loop only leaves accept() promptly on KeyboardInterrupt.
    with ServerProcess("pykmip server", argv, workdir / "server.out",
                       stop_signal=signal.SIGINT, grace=20.0) as server:
        def listening() -> bool:
            server.ensure_alive()
            return _port_open(port)

        wait_until(listening, 60.0, "the PyKMIP server to listen")
        try:
            out = run_bounded(_script(python, "create-key", "--port", str(port),
                                      "--pki", str(pki.root)), STEP_TIMEOUT_S,
                              "PyKMIP create key")
        except BenchSetupError as exc:
            raise BenchSetupError(f"{exc}\nserver log tail:\n"
                                  f"{tail(workdir / 'server.log')}") from None
        uid = out.strip().splitlines()[-1] if out.strip() else ""
        if not uid:
            raise BenchSetupError("PyKMIP create key printed no UID")
        yield uid, server.group


def run_pykmip_load(python: Path | str, pki: Pki, port: int, uid: str,
                    clients: Sequence[int], duration_s: float, warmup_s: float,
                    workdir: Path, server_group: int) -> dict[int, CellResult]:
    """Run every Get cell in one subprocess under `python`; parse its JSON."""
    out = workdir / "load.json"
    argv = _script(python, "load", "--port", str(port), "--pki", str(pki.root),
                   "--uid", uid, "--clients", ",".join(map(str, clients)),
                   "--server-group", str(server_group),
                   "--duration", str(duration_s), "--warmup", str(warmup_s),
                   "--out", str(out))
    budget = len(clients) * (duration_s + warmup_s + 120.0)
    run_bounded(argv, budget, "PyKMIP load")
    cells = json.loads(out.read_text())
    return {int(c["clients"]): CellResult.from_json(c) for c in cells}


# --------------------------------------------------------------------------
# PyKMIP side (runs under the interpreter that has a working PyKMIP)
# --------------------------------------------------------------------------

def _new_client(port: int, pki: Pki) -> Any:
    from kmip.pie.client import ProxyKmipClient  # noqa: PLC0415 - host side runs without PyKMIP

    client = ProxyKmipClient(hostname=LOOPBACK, port=port, cert=str(pki.cert("client")),
                             key=str(pki.key("client")), ca=str(pki.ca),
                             ssl_version="PROTOCOL_SSLv23",
                             config_file=str(pki.client_conf))
    client.open()
    return client


class KmipGetClient:
    """One connected ProxyKmipClient issuing Get for one UID."""

    def __init__(self, port: int, pki: Pki, uid: str) -> None:
        self._port, self._pki, self._uid = port, pki, uid
        self._client = _new_client(port, pki)

    def request(self) -> str | None:
        try:
            key = self._client.get(self._uid)
        except Exception as exc:  # noqa: BLE001 - counted, then reconnect
            self._reconnect()
            return f"{type(exc).__name__}: {exc}"
        value = getattr(key, "value", b"")
        if len(value) != AES_KEY_BYTES:
            return f"unexpected Get result: {type(key).__name__} of {len(value)} bytes"
        return None

    def _reconnect(self) -> None:
        try:
            self._client.close()
        finally:
            self._client = _new_client(self._port, self._pki)

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class KmipGetFactory:
    """Picklable factory handed to the load worker processes."""

    port: int
    pki: Pki
    uid: str

    def __call__(self) -> KmipGetClient:
        return KmipGetClient(self.port, self.pki, self.uid)


def _serve(args: argparse.Namespace) -> None:
    from kmip.services.server import KmipServer  # noqa: PLC0415 - as in _new_client

    pki, workdir = Pki(Path(args.pki)), Path(args.workdir)
    server = KmipServer(
        hostname=LOOPBACK, port=args.port, certificate_path=str(pki.cert("server")),
        key_path=str(pki.key("server")), ca_path=str(pki.ca), auth_suite="TLS1.2",
        config_path=None, log_path=str(workdir / "server.log"),
        enable_tls_client_auth=True, logging_level="WARNING",
        database_path=str(workdir / "pykmip.db"))
    with server:
        server.serve()


def _create_key(args: argparse.Namespace) -> None:
    from kmip import enums  # noqa: PLC0415 - as in _new_client

    client = _new_client(args.port, Pki(Path(args.pki)))
    try:
        uid = client.create(enums.CryptographicAlgorithm.AES, AES_KEY_BYTES * 8,
                            name="bench-key")
        fetched = client.get(uid)
        if len(fetched.value) != AES_KEY_BYTES:
            raise SystemExit(f"created key {uid} has {len(fetched.value)} bytes")
    finally:
        client.close()
    print(uid)


def _load(args: argparse.Namespace) -> None:
    factory = KmipGetFactory(args.port, Pki(Path(args.pki)), args.uid)
    cells = [run_cell(factory, int(n), args.duration, args.warmup,
                      args.server_group).to_json()
             for n in args.clients.split(",")]
    Path(args.out).write_text(json.dumps(cells))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("serve", "create-key", "load"):
        p = sub.add_parser(command)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--pki", required=True)
        if command == "serve":
            p.add_argument("--workdir", required=True)
        if command == "load":
            p.add_argument("--uid", required=True)
            p.add_argument("--clients", required=True)
            p.add_argument("--duration", type=float, required=True)
            p.add_argument("--warmup", type=float, required=True)
            p.add_argument("--out", required=True)
            p.add_argument("--server-group", type=int, required=True)
    args = parser.parse_args(argv)
    {"serve": _serve, "create-key": _create_key, "load": _load}[args.command](args)


if __name__ == "__main__":
    main()
