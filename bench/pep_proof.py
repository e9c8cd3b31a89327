"""What a PEP's own proof (§4.6, kms:PepCredential) costs per request (benchmark, not a
test).

One real server (`kms-ws serve`, 2 workers) on loopback, one KmsClient, sequential
requests. Each request made for a self-authenticating PEP (ECDSA P-256 credential, with
its proof) is compared, in the same run and alternating with it (so both see the same
machine load), with the same request made for a PEP served on its client's word: same
key counts, same wrapping (the PEP's KEK inside, the client's outside), so the proof is
the only difference:

  GetKey by id         one key of the PEP
  GetUpdateList        Enumerate Keys scoped to the PEP, its 20 keys in one page

The proof adds a signature on the client side (the PEP's), a verification and a replay
cache insert on the server (the Enumerate then runs in a write transaction and is an
audit record).

    python bench/pep_proof.py [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's kms_ws, whatever is installed
CLI = [sys.executable, "-m", "kms_ws.cli"]

from _proc import free_port, run_bounded, serving  # noqa: E402

from kms_ws.client import Kek, KmsClient, PepSigner  # noqa: E402
from kms_ws.security.certificates import self_signed  # noqa: E402
from kms_ws.security.wssecurity import SigningKey  # noqa: E402

ADMIN = ("bench-admin", "bench-admin-password")
KEYS = 20


def paired_ms(a: Callable[[], object], b: Callable[[], object],
              n: int) -> tuple[float, float]:
    """Median ms of a and of b, run alternately so both see the same machine load."""
    for _ in range(max(n // 10, 5)):  # warm up both workers
        a()
        b()
    ta, tb = [], []
    for _ in range(n):
        for fn, out in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(ta) * 1000, statistics.median(tb) * 1000


def measure(url: str, n: int) -> list[tuple[str, float, float]]:
    kek = Kek("ckek", secrets.token_bytes(32))  # both sides' keys travel wrapped
    client = KmsClient(url, *ADMIN, wrapping_keys=[kek])
    client.register_wrapping_values({kek.key_id: kek.secret})
    pep_key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(pep_key, "bench-pep")
    proving = client.register_endpoint(
        "Pep", "bench-pep", certificate=cert.public_bytes(serialization.Encoding.PEM),
        wrapping_values={"pkek": secrets.token_bytes(32)})
    trusting = client.register_endpoint("Pep", "bench-pep-on-its-clients-word",
                                        wrapping_values={"tkek": secrets.token_bytes(32)})
    signer = PepSigner(proving, SigningKey(pep_key, cert))
    word = [client.create_key(pep_id=trusting).key_id for _ in range(KEYS)]
    proved = [client.create_key(pep_id=proving, pep_proof=signer).key_id for _ in range(KEYS)]
    assert len(list(client.get_update_list("Keys", pep_id=proving, pep_proof=signer,
                                           max_elements=KEYS))) == KEYS
    rows = [("GetKey by id", *paired_ms(
                lambda: client.get_key(word[0], pep_id=trusting),
                lambda: client.get_key(proved[0], pep_id=proving, pep_proof=signer), n)),
            (f"GetUpdateList ({KEYS} keys)", *paired_ms(
                lambda: list(client.get_update_list("Keys", pep_id=trusting,
                                                    max_elements=KEYS)),
                lambda: list(client.get_update_list("Keys", pep_id=proving, pep_proof=signer,
                                                    max_elements=KEYS)), n))]
    client.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kms-bench-pep-") as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        (data / "kms-ws.json").write_text(
            json.dumps({"security": {"allow_basic_over_http": True}}))
        run_bounded([*CLI, "init", "--data-dir", str(data)], 120, "kms-ws init", cwd=ROOT)
        run_bounded([*CLI, "client", "add", ADMIN[0], "--admin", "--password-stdin",
                     "--data-dir", str(data)], 120, "kms-ws client add",
                    stdin=ADMIN[1] + "\n", cwd=ROOT)
        port = free_port()
        argv = [*CLI, "serve", "--data-dir", str(data), "--port", str(port), "--workers", "2"]
        url = f"http://127.0.0.1:{port}/wsman"
        with serving("kms-ws serve", argv, work / "serve.log", url + "?wsdl", cwd=ROOT):
            rows = measure(url, args.requests)
    print(f"PEP proof cost: 1 client, sequential, alternating, median of {args.requests} "
          "requests each")
    print(f"{'request':<26}{'client word':>15}{'PEP proof':>16}{'ratio':>8}")
    for name, base, proved in rows:
        print(f"{name:<26}{base:>12.2f} ms{proved:>13.2f} ms{proved / base:>7.2f}x")


if __name__ == "__main__":
    main()
