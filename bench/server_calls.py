"""Cost of signed server-to-client calls (benchmark, not a test): UpdatePending posted by
the server's ClientServiceCaller to a ClientServiceListener on loopback, in process.

Rows: unsigned calls to a listener that does not verify (the baseline, measured in the
same run), signed calls verified by the listener, and signed calls to a NotifyTo given by
name ('localhost': resolved, checked and pinned before each call). Prints calls/s and
ms per call (median over a bounded number of calls) and the ratio to the baseline.

    python bench/server_calls.py [--seconds 3] [--max-calls 5000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's kms_ws

from kms_ws.app import message_validator  # noqa: E402
from kms_ws.client.listener import ClientServiceListener, UpdateNotice  # noqa: E402
from kms_ws.config import Config  # noqa: E402
from kms_ws.domain.records import Subscription  # noqa: E402
from kms_ws.security import certificates  # noqa: E402
from kms_ws.security.settings import SecuritySettings  # noqa: E402
from kms_ws.wsman.delivery import ClientServiceCaller  # noqa: E402


def ack(notice: UpdateNotice) -> dict[str, int]:
    return dict(notice.tokens)


def measure(caller: ClientServiceCaller, sub: Subscription, seconds: float,
            max_calls: int) -> list[float]:
    times: list[float] = []
    deadline = time.monotonic() + seconds
    token = 1
    while time.monotonic() < deadline and len(times) < max_calls:
        start = time.perf_counter()
        reached = caller.update_pending(sub, token)
        times.append(time.perf_counter() - start)
        if reached != token:
            raise SystemExit(f"the listener did not acknowledge token {token}: {reached}")
        token += 1
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="per row (default 3)")
    p.add_argument("--max-calls", type=int, default=5000, help="per row (default 5000)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        certificates.create_server_key(data)
        key = certificates.load_server_key(data)
        base = Config(data_dir=data, notify_timeout_seconds=5,
                      security=SecuritySettings(notify_to_networks=("127.0.0.0/8",)))
        unsigned = ClientServiceCaller(
            replace(base, security=replace(base.security, sign_responses=False)),
            message_validator())
        signed = ClientServiceCaller(base, message_validator(), key)
        expires = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
        rows = []
        with ClientServiceListener(ack, verify_requests=False) as lax, \
                ClientServiceListener(ack, server_cert=key.cert) as strict:
            def sub(url: str) -> Subscription:
                return Subscription("uuid:bench", "00000000-0000-0000-0000-000000000001",
                                    url, "push", "AllKeys", None, expires, "127.0.0.1")
            for name, caller, url in (
                    ("unsigned, not verified (baseline)", unsigned, lax.url),
                    ("signed, verified by the listener", signed, strict.url),
                    ("signed, verified, NotifyTo by name", signed,
                     strict.url.replace("127.0.0.1", "localhost"))):
                measure(caller, sub(url), 0.3, 50)  # warm-up: connections, caches
                rows.append((name, measure(caller, sub(url), args.seconds, args.max_calls)))
            if strict.refused:
                raise SystemExit(f"the listener refused {strict.refused} genuine calls")
    base_ms = statistics.median(rows[0][1]) * 1000
    print(f"{'UpdatePending (loopback, in process)':38} {'calls':>7} {'calls/s':>9} "
          f"{'p50 ms':>8} {'vs baseline':>12}")
    for name, times in rows:
        p50 = statistics.median(times) * 1000
        print(f"{name:38} {len(times):7d} {len(times) / sum(times):9.0f} {p50:8.2f} "
              f"{p50 / base_ms:11.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
