"""Audit to a real syslog listener (RFC 5424 over UDP) that the test starts, and audit
policies choosing what goes there."""

from __future__ import annotations

import json
import re
import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kms_ws.audit.events import AuditEvent
from kms_ws.audit.syslog import SyslogSink
from kms_ws.client import KmsClient, KmsFault

from ..conftest import make_client
from ..support.server import ADMIN, ServerProcess
from ..support.validating import ValidatingPlugin

pytestmark = pytest.mark.e2e

RFC5424 = re.compile(rb"^<(\d{1,3})>1 (\S+) (\S+) kms-ws (\d+) (\S+) \[kmsws@32473 (.*?)\]"
                     rb"(?: \xef\xbb\xbf(.*))?$", re.S)


@pytest.fixture()
def listener():  # type: ignore[no-untyped-def]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


@pytest.fixture()
def syslog_server(tmp_path, listener):  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    data.mkdir()
    port = listener.getsockname()[1]
    (data / "kms-ws.json").write_text(json.dumps({"audit_syslog": f"udp://127.0.0.1:{port}"}))
    srv = ServerProcess(data)
    srv.bootstrap()
    srv.start()
    yield srv
    assert srv.stop() == 0


def _receive(sock: socket.socket, count: int) -> list[re.Match[bytes]]:
    out = []
    for _ in range(count):
        data, _ = sock.recvfrom(65536)
        m = RFC5424.match(data)
        assert m is not None, data
        out.append(m)
    return out


def test_deliveries_denials_and_changes_reach_syslog(syslog_server, listener) -> None:  # type: ignore[no-untyped-def]
    v = ValidatingPlugin()
    with make_client(syslog_server.url, *ADMIN, v) as admin:
        key = admin.create_key(friendly_name="syslog-key")
        created, = _receive(listener, 1)
        assert created.group(5) == b"CreateKey" and key.key_id.encode() in created.group(6)
        got = admin.get_key(key.key_id)
        delivered, = _receive(listener, 1)
        pri = int(delivered.group(1))
        assert pri // 8 == 13 and pri % 8 == 6  # log audit, informational
        assert b'event="KeyDelivered"' in delivered.group(6)
        assert b'actorName="admin"' in delivered.group(6)
        assert got.value is not None and got.value not in delivered.group(0)
        assert got.value.hex().encode() not in delivered.group(0)
        with pytest.raises(KmsFault):
            admin.get_key(str(uuid.uuid4()))
        denied, = _receive(listener, 1)
        assert int(denied.group(1)) % 8 in (4, 5) and b'result="Failed"' in denied.group(6)
        assert ADMIN[1].encode() not in denied.group(0)


def test_audit_policy_chooses_operations_and_destinations(syslog_server, listener) -> None:  # type: ignore[no-untyped-def]
    v = ValidatingPlugin()
    with make_client(syslog_server.url, *ADMIN, v) as admin:
        admin.get_random_bytes(8)  # not a mandatory event: no policy yet -> to syslog (default)
        first, = _receive(listener, 1)
        assert first.group(5) == b"GetRandomBytes"
        policy = admin.admin_create("AuditPolicy", {
            "Name": "randomness", "OperationType": ["GetRandomBytes"], "EventType": ["Log"],
            "Destination": ["Local", "Syslog"]})
        _receive(listener, 1)  # the AdminCreate itself (no policy in force yet)
        admin.admin_associate("AuditPolicy", policy["PolicyId"], "Realm",
                              "realm://localhost/default")
        _receive(listener, 1)
        cur = admin.admin_get("AuditPolicy", policy["PolicyId"])
        read, = _receive(listener, 1)  # with no policy in force, everything goes
        assert read.group(5) == b"AdminGet"
        admin.admin_edit("AuditPolicy", {**cur, "State": "Enforcing"})
        # From here the enforcing policy decides (GetRandomBytes -> local + syslog), but a
        # change goes to syslog whatever it lists (§5.4: a policy cannot switch it off).
        edit, = _receive(listener, 1)
        assert edit.group(5) == b"AdminEdit"
        admin.get_random_bytes(8)
        chosen, = _receive(listener, 1)
        assert chosen.group(5) == b"GetRandomBytes"
        records = admin.admin_audit(max_records=1000)
        assert records[-1]["Operation"] == "GetRandomBytes"
        assert any(r["Operation"] == "AdminEdit" for r in records)
        listener.settimeout(0.5)
        with pytest.raises(socket.timeout):
            _receive(listener, 1)  # nothing else was sent to syslog


def _client(url: str, admin: KmsClient, v: ValidatingPlugin) -> tuple[str, KmsClient]:
    name, password = f"c-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    return admin.register_endpoint("Client", name, password=password), \
        make_client(url, name, password, v)


def _enforce(admin: KmsClient, pid: str, *targets: tuple[str, str]) -> None:
    for kind, target in targets:
        admin.admin_associate("AuditPolicy", pid, kind, target)
    admin.admin_edit("AuditPolicy", {**admin.admin_get("AuditPolicy", pid),
                                     "State": "Enforcing"})


def _audit_policy(admin: KmsClient, operations: list[str], destinations: list[str]) -> str:
    return str(admin.admin_create("AuditPolicy", {
        "Name": f"a-{uuid.uuid4().hex[:8]}", "OperationType": operations,
        "EventType": ["Log"], "Destination": destinations})["PolicyId"])


def _drain(sock: socket.socket) -> list[bytes]:
    """Every syslog message received so far (the server sends after each commit, before
    it answers: what a request caused is there once the request returned)."""
    out, timeout = [], sock.gettimeout()
    sock.settimeout(0.5)
    try:
        while True:
            out.append(sock.recvfrom(65536)[0])
    except TimeoutError:
        return out
    finally:
        sock.settimeout(timeout)


def _parsed(messages: list[bytes]) -> list[re.Match[bytes]]:
    out = []
    for data in messages:
        m = RFC5424.match(data)
        assert m is not None, data
        out.append(m)
    return out


def test_audit_policies_on_key_groups_and_client_groups(syslog_server, listener) -> None:  # type: ignore[no-untyped-def]
    """§5.4 "auditing requirements on keys and clients": a policy associated with a key
    group applies to operations on its keys, one associated with a client group to the
    operations of its members; where several apply, their destinations add up."""
    v = ValidatingPlugin()
    with make_client(syslog_server.url, *ADMIN, v) as admin:
        watched, other = admin.create_key(), admin.create_key()
        kg = admin.admin_create("KeyGroup", {"Name": "watched", "Type": "Static"})["GroupId"]
        admin.admin_associate("KeyGroup", kg, "Key", watched.key_id)
        reads = _audit_policy(admin, ["AdminGet"], ["Local"])
        _enforce(admin, reads, ("KeyGroup", kg))
        carol_id, carol = _client(syslog_server.url, admin, v)
        _, dave = _client(syslog_server.url, admin, v)
        cg = admin.admin_create("ClientGroup", {"Name": "audited", "Type": "Static"})["GroupId"]
        admin.admin_associate("ClientGroup", cg, "Client", carol_id)
        randomness = _audit_policy(admin, ["GetRandomBytes"], ["Local"])
        _enforce(admin, randomness, ("ClientGroup", cg))
        also = _audit_policy(admin, ["GetRandomBytes"], ["Syslog"])
        _enforce(admin, also, ("Client", carol_id))
        with carol, dave:
            _drain(listener)
            admin.admin_get("Key", watched.key_id)
            admin.admin_get("Key", other.key_id)
            carol.get_random_bytes(8)
            dave.get_random_bytes(8)
            sent = _parsed(_drain(listener))
        audit = admin.admin_audit(max_records=1000)
        gets = [r for r in audit if r["Operation"] == "AdminGet"]
        assert [r.get("KeyId") for r in gets] == [watched.key_id]
        assert [r["ActorId"] for r in audit if r["Operation"] == "GetRandomBytes"] == \
            [carol_id]
        # carol's read went to syslog by her own policy; the others by default, as no
        # policy applied to them: only the key group's read stayed local
        assert [m.group(5) for m in sent] == [b"AdminGet", b"GetRandomBytes",
                                              b"GetRandomBytes"]
        assert other.key_id.encode() in sent[0].group(6)


def test_changes_and_authentication_failures_reach_syslog_whatever_the_policies_list(
        syslog_server, listener) -> None:  # type: ignore[no-untyped-def]
    v = ValidatingPlugin()
    with make_client(syslog_server.url, *ADMIN, v) as admin:
        narrow = _audit_policy(admin, ["GetRandomBytes"], ["Local"])  # lists no change
        _enforce(admin, narrow, ("Realm", "realm://localhost/default"))
        _drain(listener)
        key = admin.create_key()
        admin.admin_edit("Key", {**admin.admin_get("Key", key.key_id), "State": "Disabled"})
        admin.admin_delete("Key", key.key_id)
        admin.get_key(admin.create_key().key_id)  # a delivery: local, syslog if listed
        with make_client(syslog_server.url, ADMIN[0], "not-the-password", v) as wrong, \
                pytest.raises(KmsFault):
            wrong.get_random_bytes(8)
        sent = _parsed(_drain(listener))
        ops = [m.group(5) for m in sent]
        assert ops[:3] == [b"CreateKey", b"AdminEdit", b"AdminDelete"]
        assert ops.count(b"CreateKey") == 2 and b"GetKey" not in ops
        failed = [m for m in sent if m.group(5) == b"GetRandomBytes"]
        assert len(failed) == 1 and b'result="Denied"' in failed[0].group(6)
        records = admin.admin_audit(key_id=key.key_id)
        assert [r["Operation"] for r in records] == ["CreateKey", "AdminEdit", "AdminDelete"]
        # a date passing is a state change too: the deliverer audits it, to syslog as well
        dated = admin.create_key()
        soon = datetime.now(UTC) + timedelta(seconds=1)
        admin.admin_edit("Key", {**admin.admin_get("Key", dated.key_id), "TExpired": soon})
        for _ in range(20):  # each receive waits for the next message (10 s at most)
            m = RFC5424.match(listener.recvfrom(65536)[0])
            if m and m.group(5) == b"KeyDates":
                break
        assert m is not None and m.group(5) == b"KeyDates"
        assert b'event="KeyExpired"' in m.group(6) and dated.key_id.encode() in m.group(6)
        assert [r["Event"] for r in admin.admin_audit(key_id=dated.key_id)
                if r["Operation"] == "KeyDates"] == ["KeyExpired"]


def test_unix_socket_sink(tmp_path) -> None:  # type: ignore[no-untyped-def]

    path = tmp_path / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        sink = SyslogSink(f"unix://{path}", hostname="kms1")
        sink.send(AuditEvent(datetime(2026, 1, 2, 3, 4, 5), "GetKey", "KeyDelivered",
                             "Success", "a", 'we"ird]name\\', key_id="k",
                             message="é delivered"))
        m = RFC5424.match(sock.recv(65536))
        assert m is not None
        assert m.group(2) == b"2026-01-02T03:04:05.000000Z" and m.group(3) == b"kms1"
        assert b'actorName="we\\"ird\\]name\\\\"' in m.group(6)
        assert m.group(7) == "é delivered".encode()
        sink.close()
    finally:
        sock.close()
