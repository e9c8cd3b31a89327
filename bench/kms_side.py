"""The kms-ws row: init a data dir, add a client, serve, create a key.

Drives kms-ws only through its CLI and its SOAP endpoint (the documented
contract), so the benchmark measures what a deployment runs.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _proc import LOOPBACK, BenchSetupError, free_port, run_bounded, serving
from _soap import MESSAGE_ID_PLACEHOLDER, SoapRequest, basic_auth, post_once
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from kms_ws.security.certificates import SERVER_CERT_FILE, self_signed

KMS_NS = "urn:kms-ws:p1619.3:1"
WSMAN_PATH = "/wsman"
CLIENT_NAME = "bench"
CLIENT_PASSWORD = "secret-pw"
SIGNER_NAME = "bench-signer"
WORKERS = 2
HERE = Path(__file__).resolve().parent
CLI_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 60.0

ENVELOPE = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"'
    ' xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"'
    ' xmlns:kms="urn:kms-ws:p1619.3:1">'
    "<s:Header><wsa:To>{to}</wsa:To><wsa:Action>{action}</wsa:Action>"
    "<wsa:MessageID>" + MESSAGE_ID_PLACEHOLDER + "</wsa:MessageID></s:Header>"
    "<s:Body>{body}</s:Body></s:Envelope>"
)


def envelope(port: int, operation: str, body: str) -> str:
    """A kms-ws request envelope; the MessageID is filled in per request."""
    return ENVELOPE.format(to=f"http://{LOOPBACK}:{port}{WSMAN_PATH}",
                           action=f"{KMS_NS}/{operation}", body=body)


def find_cli() -> list[str]:
    """The `kms-ws` console script: on PATH, or next to this interpreter."""
    found = shutil.which("kms-ws")
    if found is None:
        beside = Path(sys.executable).parent / "kms-ws"
        found = str(beside) if beside.exists() else None
    if found is None:
        raise BenchSetupError("the kms-ws command is not installed "
                              "(run `pip install -e .` in the repository)")
    return [found]


def _cli(cli: Sequence[str], args: Sequence[str], cwd: Path, stdin: str = "") -> None:
    argv = [*cli, *args]
    run_bounded(argv, CLI_TIMEOUT_S, f"`{' '.join(argv)}`", stdin=stdin, cwd=cwd)


def _request(port: int, operation: str, body: str, expect: str) -> SoapRequest:
    return SoapRequest(host=LOOPBACK, port=port, path=WSMAN_PATH,
                       body=envelope(port, operation, body), expect=expect.encode(),
                       authorization=basic_auth(CLIENT_NAME, CLIENT_PASSWORD))


def create_key(port: int) -> str:
    """CreateKey over SOAP; return the new KeyId."""
    spec = _request(port, "CreateKey",
                    "<kms:CreateKey><kms:FriendlyName>bench-key</kms:FriendlyName>"
                    "</kms:CreateKey>", "CreateKeyResponse")
    status, payload = post_once(spec)
    if status != 200:
        raise BenchSetupError(f"CreateKey: HTTP {status}: {payload[:500]!r}")
    try:
        root = etree.fromstring(payload)
    except etree.XMLSyntaxError as exc:
        raise BenchSetupError(f"CreateKey: unparsable response: {exc}") from None
    key_id = root.findtext(f".//{{{KMS_NS}}}CreateKeyResponse/{{{KMS_NS}}}Key/{{{KMS_NS}}}KeyId")
    if not key_id:
        raise BenchSetupError(f"CreateKey: no KeyId in response: {payload[:500]!r}")
    return str(key_id).strip()


def getkey_request(port: int, key_id: str) -> SoapRequest:
    return _request(port, "GetKey", f"<kms:GetKey><kms:KeyId>{key_id}</kms:KeyId></kms:GetKey>",
                    "GetKeyResponse")


@dataclass(frozen=True)
class SignerFiles:
    """A P-256 key and certificate registered (offline, `client add --cert`) with the
    client's realm, and the server's response-signing certificate."""

    key_pem: str
    cert_pem: str
    server_cert_pem: str


def make_signer(cli: Sequence[str], data_dir: Path, workdir: Path) -> SignerFiles:


    key = ec.generate_private_key(ec.SECP256R1())
    key_path, cert_path = workdir / "signer.key", workdir / "signer.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(self_signed(key, SIGNER_NAME).public_bytes(serialization.Encoding.PEM))
    _cli(cli, ["client", "add", SIGNER_NAME, "--cert", str(cert_path), "--data-dir",
               str(data_dir)], workdir)
    return SignerFiles(str(key_path), str(cert_path), str(data_dir / SERVER_CERT_FILE))


def serve_argv(cli: Sequence[str], data_dir: Path, port: int, front: str = "kms") -> list[str]:
    """`kms-ws serve` (front "kms"), or the same application behind the HTTP front it
    had before (front "baseline": bench/baseline_front.py), on plain loopback HTTP with
    HTTP Basic allowed."""
    if front == "baseline":
        return [sys.executable, str(HERE / "baseline_front.py"), "--data-dir", str(data_dir),
                "--port", str(port), "--workers", str(WORKERS)]
    return [*cli, "serve", "--data-dir", str(data_dir), "--host", LOOPBACK,
            "--port", str(port), "--workers", str(WORKERS), "--allow-basic-over-http"]


@contextmanager
def kms_server(workdir: Path, signed: bool = False, front: str = "kms"
               ) -> Iterator[tuple[SoapRequest, SignerFiles | None, int]]:
    """Set up and serve kms-ws from `workdir` (behind `front`, see serve_argv); yield a
    GetKey request for a fresh key (HTTP Basic, allowed over plain loopback HTTP for this
    run), when `signed` a registered signing key, and the server's process group."""
    cli = find_cli()
    data_dir = workdir / "data"
    _cli(cli, ["init", "--data-dir", str(data_dir)], workdir)
    _cli(cli, ["client", "add", CLIENT_NAME, "--password-stdin", "--data-dir", str(data_dir)],
         workdir, stdin=CLIENT_PASSWORD)
    signer = make_signer(cli, data_dir, workdir) if signed else None
    port = free_port()
    argv = serve_argv(cli, data_dir, port, front)
    with serving(f"kms-ws ({front} front)", argv, workdir / "serve.log",
                 f"http://{LOOPBACK}:{port}{WSMAN_PATH}?wsdl", cwd=workdir,
                 timeout=READY_TIMEOUT_S) as server:
        yield getkey_request(port, create_key(port)), signer, server.group
