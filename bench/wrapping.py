"""Cost of wrapped key delivery, in process: GetKey through KmsService (real SQLite, real
crypto, no HTTP) for each WrappingType against an unwrapped GetKey measured in the same
run, plus the raw wrap+unwrap cost of each blob type and master-key sealing (file key vs a
SoftHSM2 token when one is installed). Prints a table; ratios are to the baseline row.

    python bench/wrapping.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.serialization import Encoding

from kms_ws.app import init_data_dir
from kms_ws.config import Config
from kms_ws.crypto import sealing
from kms_ws.crypto.passwords import hash_password
from kms_ws.crypto.pkcs11_provider import Pkcs11Provider
from kms_ws.crypto.wrapping import CertRecipient, Kek, unwrap, wrap
from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind
from kms_ws.service import messages as m
from kms_ws.service.dispatch import KmsService

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.wrapping import make_holder


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n / elapsed


def measure(cases: list[tuple[str, Callable[[], object]]], seconds: float,
            rounds: int = 3) -> list[tuple[str, float]]:
    """Best of `rounds` interleaved runs per case: the machine is shared, so a case and
    its baseline see the same conditions."""
    best = [0.0] * len(cases)
    for _ in range(rounds):
        for i, (_, fn) in enumerate(cases):
            best[i] = max(best[i], rate(fn, seconds / rounds))
    return [(name, r) for (name, _), r in zip(cases, best, strict=True)]


def _client(svc: KmsService, db, name: str) -> m.Credential:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=True) as uow:
        uow.endpoints.insert_endpoint(Endpoint(
            str(uuid.uuid4()), EndpointKind.CLIENT, name, ClientState.ACTIVE,
            CredentialType.USERNAME_PASSWORD, 1, realms=("realm://localhost/default",),
            password_hash=hash_password(name + "-password")), svc.clock())
    return m.Credential(CredentialType.USERNAME_PASSWORD, username=name,
                        password=name + "-password")


def service_rows(tmp: Path, seconds: float) -> list[tuple[str, float]]:
    db, ring = init_data_dir(Config(data_dir=tmp / "svc"))
    # in process, the passwords cross no network: the local-use setting
    svc = KmsService(db, ring, replace(Config().security, allow_basic_over_http=True))
    plain, wrapped = _client(svc, db, "plain"), _client(svc, db, "wrapped")
    key_id = svc.run("CreateKey", plain, m.CreateKeyRequest(length_bits=256), "c").key.key_id
    der = make_holder("bench-cert", tmp).certificate.public_bytes(Encoding.DER)
    svc.run("RegisterWrappingValues", wrapped, m.RegisterWrappingValuesRequest(values=(
        m.WrappingValue("bench-cert", certificate=der),
        m.WrappingValue("bench-kek", symmetric_key=secrets.token_bytes(32)))), "w")
    req = m.GetKeyRequest(key_id=key_id)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("none (baseline)", lambda: svc.run("GetKey", plain, req, "g"))]
    for wt in ("aes-key-wrap", "aes-key-wrap-pad", "cms-kek", "cms-auth-enveloped",
               "cms-rsa-oaep"):
        r = m.GetKeyRequest(key_id=key_id, wrapping_type=wt)
        cases.append((wt, lambda r=r: svc.run("GetKey", wrapped, r, "g")))
    rows = measure(cases, seconds)
    db.dispose()
    return rows


def blob_rows(tmp: Path, seconds: float) -> list[tuple[str, float]]:
    key, kek = secrets.token_bytes(32), Kek("k", secrets.token_bytes(32))
    holder = make_holder("blob-cert", tmp)
    cert = CertRecipient("blob-cert", holder.certificate)
    return measure([(wt, lambda w=wt, r=rec, o=op: unwrap(w, wrap(w, key, r), o))
                    for wt, rec, op in (("aes-key-wrap", kek, kek),
                                        ("aes-key-wrap-pad", kek, kek), ("cms-kek", kek, kek),
                                        ("cms-auth-enveloped", kek, kek),
                                        ("cms-rsa-oaep", cert, holder))], seconds)


def sealing_rows(tmp: Path, seconds: float) -> list[tuple[str, float]]:
    _, ring = init_data_dir(Config(data_dir=tmp / "seal"))
    value = secrets.token_bytes(32)
    cases: list[tuple[str, Callable[[], object]]] = [("file master key", lambda: sealing.unseal(
        ring.aead, "k", 1, sealing.seal(ring.aead, "k", 1, value)))]
    module = "/usr/lib/softhsm/libsofthsm2.so"
    if Path(module).exists() and shutil.which("softhsm2-util"):
        (tmp / "tokens").mkdir()
        (tmp / "hsm.conf").write_text(f"directories.tokendir = {tmp / 'tokens'}\n"
                                      "objectstore.backend = file\n")
        os.environ["SOFTHSM2_CONF"] = str(tmp / "hsm.conf")
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench",
                        "--pin", "1234", "--so-pin", "5678"], check=True, capture_output=True)
        p = Pkcs11Provider(module, "bench", "1234")
        aead = p.open(p.create())
        cases.append(("SoftHSM2 master key", lambda: sealing.unseal(
            aead, "k", 1, sealing.seal(aead, "k", 1, value))))
    return measure(cases, seconds)


def table(title: str, rows: list[tuple[str, float]]) -> None:
    base = rows[0][1]
    print(f"\n{title}\n{'':2}{'':24}{'ops/s':>12}{'vs first row':>14}")
    for name, r in rows:
        print(f"  {name:24}{r:12,.0f}{r / base:13.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="per case (over 3 rounds)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        table("GetKey in process (KmsService, SQLite), by WrappingType",
              service_rows(tmp, args.seconds))
        table("wrap + unwrap of a 32-byte key", blob_rows(tmp, args.seconds))
        table("seal + unseal of a 32-byte key at rest", sealing_rows(tmp, args.seconds))


if __name__ == "__main__":
    main()
