"""T_CACHED resolution on GetUpdateList pages, in process (benchmark, not a test).

Two stores of N bulk-loaded keys (bench/bulk_load.py; benchmark data only), served by
KmsService in this process (real SQLite, no HTTP): one with no caching policy in force
(the baseline), one where caching policies reach the keys every way they can — their own
(1 key in 100), a static key group (1 key in 10), a dynamic key group, and a capability
of the caller. Each case pulls optimized Enumerate pages of 100 keys at several places in
the change sequence, interleaved over rounds (the machine is shared). Prints pages/s, ms
per page, SQL statements per page (counted on the engine: constant, never per key) and
the ratio to the baseline.

    python bench/caching_pages.py [--keys 20000] [--page 100] [--seconds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

# this checkout's kms_ws, whatever is installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bulk_load import load
from sqlalchemy import event, select

from kms_ws.app import init_data_dir
from kms_ws.config import Config
from kms_ws.crypto.passwords import hash_password
from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind
from kms_ws.service import messages as m
from kms_ws.service.admin.messages import AdminRequest, Ref
from kms_ws.service.dispatch import KmsService
from kms_ws.service.ws_messages import EnumerateRequest, UpdateFilter
from kms_ws.store import tables as t
from kms_ws.wsman.resource_uris import KEY_URI, named

REALM = "realm://localhost/default"
PAGE = 100


class Store:
    def __init__(self, path: Path, keys: int, policies: bool) -> None:
        self.db, ring = init_data_dir(Config(data_dir=path))
        # in process, the password crosses no network: the local-use setting
        self.svc = KmsService(self.db, ring, replace(Config().security,
                                                     allow_basic_over_http=True))
        self.cred = self._admin()
        load(path, keys, REALM)
        self.keys = keys
        self.statements = 0
        event.listen(self.db.engine, "before_cursor_execute", self._count)
        if policies:
            self._policies()

    def _count(self, *_: object) -> None:
        self.statements += 1

    def _admin(self) -> m.Credential:
        with self.db.unit_of_work(write=True) as uow:
            uow.endpoints.insert_endpoint(Endpoint(
                str(uuid.uuid4()), EndpointKind.CLIENT, "bench", ClientState.ACTIVE,
                CredentialType.USERNAME_PASSWORD, 1, realms=(REALM,), is_admin=True,
                capabilities=("hasHSM",), password_hash=hash_password("bench-password")),
                self.svc.clock())
        return m.Credential(CredentialType.USERNAME_PASSWORD, username="bench",
                            password="bench-password")

    def _run(self, action: str, kind: str, **kw: object) -> dict:  # type: ignore[type-arg]
        res = self.svc.run(f"Admin{action}", self.cred, AdminRequest(action, kind, **kw), "b")
        return res.documents[0] if res.documents else {}

    def _policy(self, target: Ref, *rules: dict) -> str:  # type: ignore[type-arg]
        p = self._run("Create", "CachingPolicy", document={
            "Name": f"p-{uuid.uuid4().hex[:8]}", "Rule": list(rules)})
        self._run("Associate", "CachingPolicy", object_id=p["PolicyId"], target=target)
        doc = self._run("Get", "CachingPolicy", object_id=p["PolicyId"])
        self._run("Edit", "CachingPolicy", document={**doc, "State": "Enforcing"})
        return str(p["PolicyId"])

    def _policies(self) -> None:
        """Policies through the handlers; then, as setup only (the bulk keys carry dummy
        blobs that a versioning re-seal would refuse), their associations with the bulk
        keys straight into the store."""
        with self.db.transaction() as conn:
            ids = conn.execute(select(t.keys.c.id).order_by(t.keys.c.change_seq)).scalars().all()
        real = self.svc.run("CreateKey", self.cred, m.CreateKeyRequest(length_bits=256), "k")
        group = self._run("Create", "KeyGroup", document={"Name": "static", "Type": "Static"})
        self._policy(Ref("KeyGroup", group["GroupId"]), {"CachingType": "Memory",
                                                         "TCacheInterval": 42})
        dynamic = self._run("Create", "KeyGroup", document={
            "Name": "dynamic", "Type": "Dynamic",
            "Rule": [{"Pattern": "tape-.*", "Attribute": "volume"}]})
        self._policy(Ref("KeyGroup", dynamic["GroupId"]), {"CachingType": "Memory",
                                                           "TCacheInterval": 77})
        own = self._policy(Ref("Key", real.key.key_id),
                           {"CachingType": "Memory", "TCacheInterval": 600},
                           {"CachingType": "Persistent", "TCacheInterval": 86400,
                            "Capability": "hasHSM"})
        rows = [{"kind": "KeyGroup", "id": group["GroupId"], "target_kind": "Key",
                 "target_id": k} for k in ids[::10]]
        rows += [{"kind": "CachingPolicy", "id": own, "target_kind": "Key", "target_id": k}
                 for k in ids[5::100]]
        with self.db.transaction(write=True) as conn:
            conn.execute(t.associations.insert(), rows)

    def page(self, token: int) -> int:
        got = self.svc.run("Enumeration.Enumerate", self.cred, EnumerateRequest(
            named(KEY_URI), UpdateFilter(token=token), optimize=True, max_elements=PAGE), "e")
        return sum(1 for _, k in got.items if k.t_cached != 3600)


def rate(store: Store, seconds: float) -> tuple[float, float]:
    """Pages/s over pages at spread positions, and SQL statements per page."""
    positions = [2 + (store.keys - PAGE) * i // 9 for i in range(10)]
    store.page(positions[0])
    n, statements, start = 0, store.statements, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        store.page(positions[n % len(positions)])
        n += 1
    return n / elapsed, (store.statements - statements) / n


def main() -> int:
    global PAGE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--page", type=int, default=100, help="keys per page (at most 1000)")
    ap.add_argument("--seconds", type=float, default=3.0, help="per case (over 3 rounds)")
    args = ap.parse_args()
    PAGE = args.page
    with tempfile.TemporaryDirectory(prefix="kms-bench-caching-") as tmp:
        cases = [("no caching policy (baseline)", Store(Path(tmp) / "a", args.keys, False)),
                 ("key, static + dynamic group", Store(Path(tmp) / "b", args.keys, True))]
        resolved = cases[1][1].page(2)
        best: list[tuple[float, float]] = [(0.0, 0.0)] * len(cases)
        for _ in range(3):
            for i, (_, store) in enumerate(cases):
                r = rate(store, args.seconds / 3)
                best[i] = max(best[i], r, key=lambda x: x[0])
    base = best[0][0]
    print(f"GetUpdateList pages of {PAGE} keys in process, {args.keys:,} keys "
          f"({resolved} of the first page's keys got a policy's T_CACHED)")
    print(f"  {'case':32}{'pages/s':>9}{'ms/page':>9}{'SQL/page':>10}{'vs baseline':>13}")
    for (name, _), (r, sql) in zip(cases, best, strict=True):
        print(f"  {name:32}{r:9.1f}{1000 / r:9.2f}{sql:10.1f}{r / base:12.2f}x")
    return 0



if __name__ == "__main__":
    sys.exit(main())
