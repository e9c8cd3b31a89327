"""How long a refused password takes, by reason (benchmark, not a test): issue 12.5.

An attacker timing the answers must not tell an unknown user name from a wrong password
or from a locked client. One real server (`kms-ws serve`, 2 workers) on loopback, one
client on one kept-alive connection, HTTP Basic, GetRandomBytes of 4 bytes; the four
cases interleaved (each round in a new order), so all see the same machine load:

  unknown user       a name nobody has
  wrong password     a registered client, a wrong password
  locked account     a Locked client, its own right password
  correct password   a registered client, its password (remembered per process after
                     its first check, password_cache_seconds: not re-hashed)

Medians, and each case's ratio to the wrong password. The server runs with backoff off
(every attempt is checked, as the first few of any name and source are) and never
locks on its own (lock_after_failed_authentications 0); the locked client was locked
through the store's own lockout (UnitOfWork.record_auth_failure) before the server
started, with lockout_seconds 0 (it stays locked).

    python bench/auth_timing.py [--requests 200]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's kms_ws, whatever is installed
CLI = [sys.executable, "-m", "kms_ws.cli"]

from _proc import free_port, run_bounded, serving  # noqa: E402

from kms_ws.config import load  # noqa: E402
from kms_ws.service.dispatch import utcnow  # noqa: E402
from kms_ws.store.engine import Database  # noqa: E402

ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-1")
CASES = {
    "unknown user": ("nobody-by-this-name", "some-password-1"),
    "wrong password": (ALICE[0], "not-alices-password"),
    "locked account": BOB,
    "correct password": ALICE,
}
BODY = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    b'xmlns:kms="urn:kms-ws:p1619.3:1"><s:Header>'
    b"<wsa:Action>urn:kms-ws:p1619.3:1/GetRandomBytes</wsa:Action>"
    b"<wsa:MessageID>uuid:6c1d6d2e-5f4e-4d8e-9d1e-2a3b4c5d6e7f</wsa:MessageID>"
    b"</s:Header><s:Body><kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes>"
    b"</kms:GetRandomBytes></s:Body></s:Envelope>")


def prepare(data: Path) -> None:
    (data / "kms-ws.json").write_text(json.dumps({"security": {
        "allow_basic_over_http": True, "backoff_after_failed_authentications": 0,
        "source_backoff_after_failed_authentications": 0,
        "lock_after_failed_authentications": 0, "lockout_seconds": 0}}))
    run_bounded([*CLI, "init", "--data-dir", str(data)], 120, "kms-ws init", cwd=ROOT)
    for name, password in (ALICE, BOB):
        run_bounded([*CLI, "client", "add", name, "--password-stdin", "--data-dir",
                     str(data)], 120, "kms-ws client add", stdin=password + "\n", cwd=ROOT)
    db = Database(load(data).db_url)
    try:
        with db.unit_of_work(write=True) as uow:
            bob = uow.endpoints.find_client(BOB[0])
            assert bob is not None
            assert uow.endpoints.record_auth_failure(bob.endpoint_id, 1, utcnow())
    finally:
        db.dispose()


def one(conn: http.client.HTTPConnection, auth: tuple[str, str], expect: int) -> float:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    started = time.perf_counter()
    conn.request("POST", "/wsman", body=BODY, headers={
        "Content-Type": "application/soap+xml;charset=UTF-8",
        "Authorization": f"Basic {token}"})
    resp = conn.getresponse()
    resp.read()
    took = time.perf_counter() - started
    if resp.status != expect:
        raise SystemExit(f"bench: expected HTTP {expect} for {auth[0]}, got {resp.status}")
    return took


def measure(port: int, n: int) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    expect = {case: 200 if case == "correct password" else 401 for case in CASES}
    times: dict[str, list[float]] = {case: [] for case in CASES}
    order = list(CASES)
    rng = random.Random(12)
    try:
        for _ in range(5):  # warm up
            for case in order:
                one(conn, CASES[case], expect[case])
        for _ in range(n):
            rng.shuffle(order)
            for case in order:
                times[case].append(one(conn, CASES[case], expect[case]))
    finally:
        conn.close()
    return {case: statistics.median(t) * 1000 for case, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200, help="requests per case")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kms-bench-auth-") as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        prepare(data)
        port = free_port()
        argv = [*CLI, "serve", "--data-dir", str(data), "--port", str(port), "--workers", "2"]
        with serving("kms-ws serve", argv, work / "serve.log",
                     f"http://127.0.0.1:{port}/wsman?wsdl", cwd=ROOT):
            medians = measure(port, args.requests)
    base = medians["wrong password"]
    print(f"Password authentication: 1 client, sequential, interleaved, median of "
          f"{args.requests} requests each")
    print(f"{'case':<20}{'median':>12}{'vs wrong password':>20}")
    for case, ms in medians.items():
        print(f"{case:<20}{ms:>9.2f} ms{ms / base:>19.2f}x")


if __name__ == "__main__":
    main()
