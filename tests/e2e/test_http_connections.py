"""Connections to `kms-ws serve`: one connection (TCP, or TLS with its handshake) carries
a client's requests one after another, and connections that send nothing, or stop
part-way, do not keep the workers from serving others."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
from pathlib import Path

import pytest
from lxml import etree

from kms_ws.client import KmsClient
from kms_ws.xmlns import KMS

from ..support.envelopes import create_key, envelope, get_key
from ..support.pki import server_cert
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.validating import CT, ValidatingPlugin

pytestmark = pytest.mark.e2e
K = "{%s}" % KMS
BASIC = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()


def _call(conn: http.client.HTTPConnection, body: str, op: str) -> etree._Element:
    """One SOAP request on `conn`; the connection must stay open after the answer."""
    message = envelope(body, op=op)
    validate_envelope(message)
    conn.request("POST", "/wsman", message, {"Content-Type": CT, "Authorization": BASIC})
    response = conn.getresponse()
    payload = response.read()
    assert response.status == 200, payload[:300]
    assert (response.getheader("Connection") or "").lower() != "close"
    return validate_envelope(payload)


def _sockets_used(conn: http.client.HTTPConnection) -> set[int]:
    """CreateKey, then GetKey of it three times on `conn`: the sockets that carried them
    (http.client opens a new one only when the server closed the last; each is held, so
    no two share an id)."""
    created = _call(conn, create_key("kept-alive"), "CreateKey")
    held = [conn.sock]
    key_id = created.findtext(f".//{K}KeyId")
    for _ in range(3):
        got = _call(conn, get_key(key_id or ""), "GetKey")
        assert got.findtext(f".//{K}KeyId") == key_id
        held.append(conn.sock)
    return {id(sock) for sock in held}


def test_a_connection_carries_many_requests(server: ServerProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        assert len(_sockets_used(conn)) == 1
    finally:
        conn.close()


def test_one_tls_handshake_serves_many_requests(tmp_path: Path) -> None:
    cert, key = server_cert(tmp_path)
    with running_server(tmp_path / "data", workers=1, tls=(cert, key)) as srv:
        context = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=context,
                                           timeout=30)
        try:
            assert len(_sockets_used(conn)) == 1
        finally:
            conn.close()


def test_silent_connections_do_not_hold_the_workers(tmp_path: Path,
                                                    validator: ValidatingPlugin) -> None:
    """More connections than workers that send nothing (a stalled device, a port scan)
    while a client is served."""
    with running_server(tmp_path / "data", workers=2) as srv:
        silent = [socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                  for _ in range(4)]
        try:
            with KmsClient(srv.url, *ADMIN, plugins=[validator], timeout=10) as c:
                created = c.create_key(friendly_name="served")
                assert c.get_key(created.key_id).value == created.value
        finally:
            for sock in silent:
                sock.close()


def test_a_client_that_stops_mid_request_is_cut_off(tmp_path: Path,
                                                   validator: ValidatingPlugin) -> None:
    """One worker; one client stops inside its request headers, another inside its body.
    Each holds the worker for one read timeout at most (gunicorn's own workers waited
    for ever): then the first connection is closed, the second gets a fault, and the
    next client is served."""
    from kms_ws.http_worker import STALL_SECONDS

    with running_server(tmp_path / "data", workers=1) as srv:
        in_head = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        in_body = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        try:
            in_head.sendall(b"POST /wsman HTTP/1.1\r\nHost: kms\r\n")
            in_body.sendall(f"POST /wsman HTTP/1.1\r\nHost: kms\r\nContent-Type: {CT}\r\n"
                            "Content-Length: 900\r\n\r\n<s:Envelope".encode())
            with KmsClient(srv.url, *ADMIN, plugins=[validator],
                           timeout=4 * STALL_SECONDS) as c:
                created = c.create_key(friendly_name="served after the stalls")
                assert c.get_key(created.key_id).value == created.value
            assert in_head.recv(100) == b""  # closed, nothing answered
            answer = b""
            while b"</s:Envelope>" not in answer:
                chunk = in_body.recv(65536)
                assert chunk, answer
                answer += chunk
            head, _, payload = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 ")
            fault = validate_envelope(payload)
            assert fault.findtext(".//{http://www.w3.org/2003/05/soap-envelope}Reason/"
                                  "{http://www.w3.org/2003/05/soap-envelope}Text") \
                == "the message did not arrive in full"
        finally:
            in_head.close()
            in_body.close()


@pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="Linux's TCP_CORK")
def test_a_response_is_held_until_its_body_is_written() -> None:
    """one_segment corks the connection when the application answers and uncorks it
    when the server closes the body it has written (which closes the application's)."""
    from kms_ws.server import one_segment

    closed: list[bool] = []

    class Body(list):  # type: ignore[type-arg]
        def close(self) -> None:
            closed.append(True)

    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname()) as client:
        conn, _ = listener.accept()
        with conn:
            def corked() -> int:
                return conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK)
            body = one_segment(lambda environ, start: Body([b"answer"]))(
                {"gunicorn.socket": conn}, None)
            assert corked() == 1
            for chunk in body:
                conn.sendall(chunk)
            body.close()
            assert corked() == 0 and closed == [True]
            assert client.recv(64) == b"answer"
    assert one_segment(lambda environ, start: [b"x"])({}, None) == [b"x"]  # not TCP
