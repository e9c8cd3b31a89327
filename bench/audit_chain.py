"""What chaining an audit record costs, and how fast `kms-ws audit verify` reads a chain
(benchmark, not a test).

In process, on a real SQLite store in a temporary data directory (WAL; the record
transactions not synced on their own, as a GetKey delivery's are). Each round times, on
the same store and alternating (so both see the same machine load):

  unchained   a write transaction inserting one audit row as the store did before the
              chain (the prepared INSERT, no place, no MAC)
  chained     a write transaction appending one record to the chain (UnitOfWork
              .append_audit: read the head, one MAC and the head's tag, INSERT, move the head)

and reports CPU microseconds per transaction (the least of the rounds: load from other
programs only adds) and the ratio; then `verify_store` over the whole chain it made
(records verified per CPU second).

    python bench/audit_chain.py [--records 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's kms_ws, whatever is installed

from kms_ws.app import init_data_dir  # noqa: E402
from kms_ws.audit.chain import AuditChain, verify_store  # noqa: E402
from kms_ws.config import Config  # noqa: E402
from kms_ws.store.engine import Database  # noqa: E402


def record() -> dict[str, object]:
    """A delivery's audit record, as GetKey writes it."""
    return {"at": datetime.now(UTC).replace(tzinfo=None),
            "actor_id": "0b5e8a52-3c41-4a8e-9d0f-8f2b6f1d2a11", "actor_name": "tape-lib-1",
            "operation": "GetKey", "event": "KeyDelivered", "result": "Success",
            "key_id": "7d3f1c2e-9a4b-4c5d-8e6f-1a2b3c4d5e6f", "pep_id": None,
            "reported_at": None, "message": "wrapping aes-key-wrap-pad for kek-1"}


def unchained(db: Database) -> None:
    with db.unit_of_work(write=True, durable=False) as uow:
        uow.audit._write("insert_audit", {**record(), "chain_seq": None, "mac": None})


def chained(db: Database) -> None:
    with db.unit_of_work(write=True, durable=False) as uow:
        uow.audit.append_audit([record()])


def cpu_per_call(fn: Callable[[Database], None], db: Database, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn(db)
    return (time.process_time() - start) / n * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=2000, help="transactions per round and kind")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="kms-bench-chain-") as tmp:
        db, keyring = init_data_dir(Config(data_dir=Path(tmp) / "data"))
        db.audit = AuditChain(keyring)
        try:
            for fn in (unchained, chained):  # warm-up: statements prepared, key opened
                cpu_per_call(fn, db, 200)
            times: dict[str, list[float]] = {"unchained": [], "chained": []}
            for _ in range(args.rounds):
                for fn in (unchained, chained):
                    times[fn.__name__].append(cpu_per_call(fn, db, args.records))
            with db.transaction() as conn:  # the unchained rows would be found: drop them
                conn.exec_driver_sql("DELETE FROM audit WHERE chain_seq IS NULL")
            start = time.process_time()
            verdict = verify_store(db, keyring)
            verify_cpu = time.process_time() - start
        finally:
            db.dispose()
    best = {k: min(v) for k, v in times.items()}
    print(f"audit record transaction, CPU µs (least of {args.rounds} rounds of "
          f"{args.records}):")
    for name, value in best.items():
        print(f"  {name:10} {value:8.1f}")
    print(f"  chained/unchained {best['chained'] / best['unchained']:.2f} "
          f"(+{best['chained'] - best['unchained']:.1f} µs per audited transaction)")
    print(f"verify: {verdict.records} records in {verify_cpu:.2f} CPU s "
          f"({verdict.records / verify_cpu:,.0f} records per CPU second); {verdict.line()[:40]}")
    return 0 if verdict.intact else 1


if __name__ == "__main__":
    sys.exit(main())
