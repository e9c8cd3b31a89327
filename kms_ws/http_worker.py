"""The HTTP front of `kms-ws serve`: a gunicorn worker that buffers whole requests.

gunicorn's arbiter forks N of these processes (each loads the application after the
fork), replaces one that stops answering its heartbeat, and stops them gracefully on
SIGTERM. Each worker runs one thread: an event loop (selectors) that

- accepts connections and holds any number of them, idle or slow, at the cost of a
  socket and a buffer each (up to `worker_connections`; past that the connection that
  has waited longest without sending a whole request is dropped for the new one);
- does the TLS handshake without blocking (the verified client certificate goes to the
  application as `environ["kms_ws.peer_certificate"]`, DER);
- reads each request without blocking, parsed by h11 (request line, headers, a
  Content-Length or chunked body, `Expect: 100-continue`, keep-alive, pipelining), and
  hands it to the application only once it has arrived in full: a connection waits
  KEEPALIVE_SECONDS for a request to start, then the request has REQUEST_SECONDS to
  arrive whole (for a new connection, the TLS handshake included). Past that the
  connection is closed; a request whose headers arrived but whose body did not is
  first answered by the application from what it got (a body that raises OSError when
  read: kms-ws answers the fault "the message did not arrive in full");
- runs the application for one request at a time, on this thread (the application is
  not shared between threads; the heartbeat stops while it runs, so gunicorn replaces a
  worker stuck in a request for `timeout` seconds);
- writes each response with one send where the socket takes it (headers and body in
  one segment); a client that stops reading its answer is dropped after STALL_SECONDS
  without progress, never holding the loop.

So a slow or silent client costs memory, never the worker: a request body is bounded
by the application's `max_body_bytes` (kms-ws: `max_message_bytes`; a larger declared
body is answered at once without being read), the request target by TARGET_BYTES, the
headers by HEADER_BYTES and HEADER_FIELDS, and what all unfinished requests of a worker
hold by BUFFERED_BYTES.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import selectors
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import h11
from gunicorn import sock as gunicorn_sock
from gunicorn.workers import base

from .security.http_auth import PEER_CERTIFICATE

KEEPALIVE_SECONDS = 5  # a connection waits this long for a request to start
REQUEST_SECONDS = 10  # a started request (a new TLS connection: its handshake) to arrive
STALL_SECONDS = 10  # a response write without any progress
LINGER_SECONDS = 2  # reading (and dropping) what a client still sends after a last answer
HEADER_BYTES = 32 * 1024  # request line and headers
TARGET_BYTES = 8190  # the request target (path and query)
HEADER_FIELDS = 100
DEFAULT_BODY_BYTES = 1024 * 1024  # an application that names no max_body_bytes
BUFFERED_BYTES = 64 * 1024 * 1024  # bodies of unfinished requests, per worker
RECV_BYTES = 64 * 1024
ACCEPT_BATCH = 64
SCAN_SECONDS = 0.25  # how often deadlines are checked
HEARTBEAT_SECONDS = 0.5

WAITING, HANDSHAKE, READING, WRITING, LINGERING = range(5)
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_PLAIN_ERROR = "text/plain; charset=utf-8"


class Connection:
    __slots__ = ("sock", "fd", "peer", "local", "tls", "http", "state", "since", "deadline",
                 "request", "body", "body_bytes", "out", "events", "peer_certificate",
                 "close_after", "continued", "oversize")

    def __init__(self, sock: socket.socket, peer: Any, tls: bool, now: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        try:
            self.local = sock.getsockname()
        except OSError:
            self.local = None
        self.tls = tls
        self.http = h11.Connection(h11.SERVER, max_incomplete_event_size=HEADER_BYTES)
        self.state = HANDSHAKE if tls else WAITING
        self.since = now  # when this state began: the oldest waiter is dropped first
        self.deadline = now + (REQUEST_SECONDS if tls else KEEPALIVE_SECONDS)
        self.request: h11.Request | None = None
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.out = memoryview(b"")
        self.events = 0
        self.peer_certificate: bytes | None = None
        self.close_after = False
        self.continued = False
        self.oversize = False


class BufferingWorker(base.Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conns: dict[int, Connection] = {}
        self.ready: deque[Connection] = deque()
        self.overdue: deque[Connection] = deque()
        self.buffered = 0
        self.accepting = False
        self.last_beat = 0.0
        self.selector: selectors.BaseSelector | None = None
        self.tls_context: ssl.SSLContext | None = None
        self.max_body = DEFAULT_BODY_BYTES
        self.max_conns = 1000

    # ---- set-up and the loop ----------------------------------------------------------
    def init_process(self) -> None:
        self.selector = selectors.DefaultSelector()
        if self.cfg.is_ssl:
            self.tls_context = gunicorn_sock.ssl_context(self.cfg)
            self.tls_context.set_alpn_protocols(["http/1.1"])
        self.max_body = int(getattr(self.app, "max_body_bytes", DEFAULT_BODY_BYTES))
        self.max_conns = self.cfg.worker_connections
        super().init_process()  # loads the application, then run()

    def run(self) -> None:
        assert self.selector is not None
        self.selector.register(self.PIPE[0], _READ, None)  # signals wake the loop
        for listener in self.sockets:
            listener.setblocking(False)
        self._accept_from(True)
        next_scan = time.monotonic()
        while self.alive:
            now = self._beat()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
            busy = self.ready or self.overdue
            self._poll(0 if busy else max(0.0, min(next_scan - now, 1.0)))
            if time.monotonic() >= next_scan:
                self._expire(time.monotonic())
                next_scan = time.monotonic() + SCAN_SECONDS
                self._accept_from(len(self.conns) < self.max_conns or self._waiters_exist())
        self._stop()

    def _beat(self) -> float:
        now = time.monotonic()
        if now - self.last_beat >= HEARTBEAT_SECONDS:
            self.notify()
            self.last_beat = now
        return now

    def _poll(self, timeout: float) -> None:
        assert self.selector is not None
        for key, mask in self.selector.select(timeout):
            if key.data is None:
                self._drain_wakeups()
            elif key.data == "listener":
                self._accept(key.fileobj)
            elif self._open_now(key.data):
                self._guarded(self._on_event, key.data, mask)
        while self.ready:
            self._guarded(self._resume, self.ready.popleft())
        if self.overdue:  # one per pass: requests that did arrive go first
            self._guarded(self._serve_overdue, self.overdue.popleft())

    def _guarded(self, action: Callable[..., None], conn: Connection, *args: Any) -> None:
        """One connection's event; a failure of ours closes that connection only."""
        try:
            action(conn, *args)
        except Exception:  # noqa: BLE001 - the other connections are served on
            self.log.exception("error on the connection from %s", conn.peer)
            self._close(conn)

    def _resume(self, conn: Connection) -> None:
        """A connection back to waiting with a pipelined request already received."""
        if self._open_now(conn) and conn.state == WAITING:
            self._advance(conn)
        if self._open_now(conn) and conn.state in (WAITING, READING) and conn.tls and \
                conn.sock.pending():  # type: ignore[attr-defined]
            self._read(conn)  # decrypted already: the socket will not signal it

    def _open_now(self, conn: Connection) -> bool:
        return self.conns.get(conn.fd) is conn

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self.PIPE[0], 4096):
                pass
        except OSError:
            pass

    def _stop(self) -> None:
        """Graceful stop: no new connections; requests under way are answered (with
        Connection: close), idle connections get LINGER_SECONDS for a request already
        sent, all within gunicorn's graceful_timeout."""
        self.alive = False
        self._accept_from(False)
        for listener in self.sockets:  # new clients are refused (when every process has
            listener.close()            # closed it), not left waiting in the backlog
        now = time.monotonic()
        end = now + self.cfg.graceful_timeout
        for conn in list(self.conns.values()):
            if conn.state in (WAITING, HANDSHAKE):
                conn.deadline = min(conn.deadline, now + LINGER_SECONDS)
        while self.conns and time.monotonic() < end:
            self._beat()
            self._poll(0 if self.ready or self.overdue else SCAN_SECONDS)
            self._expire(time.monotonic())
        for conn in list(self.conns.values()):
            self._close(conn)
        assert self.selector is not None
        self.selector.close()

    # ---- accepting --------------------------------------------------------------------
    def _accept_from(self, enabled: bool) -> None:
        if enabled == self.accepting:
            return
        assert self.selector is not None
        for listener in self.sockets:
            if enabled:
                self.selector.register(listener, _READ, "listener")
            else:
                self.selector.unregister(listener)
        self.accepting = enabled

    def _waiters_exist(self) -> bool:
        return any(c.state in (WAITING, HANDSHAKE, READING) for c in self.conns.values())

    def _accept(self, listener: Any) -> None:
        for _ in range(ACCEPT_BATCH):
            if len(self.conns) >= self.max_conns and not self._drop_oldest():
                self._accept_from(False)  # every connection is being answered
                return
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.log.warning("cannot accept connections: %s", exc)
                    self._drop_oldest()
                    self._accept_from(False)  # again at the next deadline scan
                elif exc.errno not in (errno.ECONNABORTED, errno.EPROTO):
                    raise
                return
            self._open(sock, peer)

    def _drop_oldest(self) -> bool:
        """Room for a new connection: close the one that has waited longest without
        sending a whole request (idle, in its TLS handshake, or sending slowly)."""
        waiting = [c for c in self.conns.values() if c.state in (WAITING, HANDSHAKE, READING)]
        if not waiting:
            return False
        self._close(min(waiting, key=lambda c: c.since))
        return True

    def _open(self, sock: socket.socket, peer: Any) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        now = time.monotonic()
        if self.tls_context is not None:
            try:
                sock = self.tls_context.wrap_socket(sock, server_side=True,
                                                    do_handshake_on_connect=False)
            except (OSError, ValueError):
                sock.close()
                return
        conn = Connection(sock, peer, self.tls_context is not None, now)
        self.conns[conn.fd] = conn
        self._watch(conn, _READ)
        if conn.tls:
            self._handshake(conn)

    # ---- connection events --------------------------------------------------------------
    def _watch(self, conn: Connection, events: int) -> None:
        if events == conn.events:
            return
        assert self.selector is not None
        if conn.events == 0:
            self.selector.register(conn.sock, events, conn)
        else:
            self.selector.modify(conn.sock, events, conn)
        conn.events = events

    def _on_event(self, conn: Connection, mask: int) -> None:
        if conn.state == HANDSHAKE:
            self._handshake(conn)
        elif conn.state == WRITING:
            self._write(conn)
        elif conn.state == LINGERING:
            self._linger(conn)
        else:
            self._read(conn)

    def _handshake(self, conn: Connection) -> None:
        try:
            conn.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self._watch(conn, _READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, _WRITE)
            return
        except (ssl.SSLError, OSError) as exc:
            self.log.debug("TLS handshake with %s failed: %s", conn.peer, exc)
            self._close(conn)
            return
        conn.peer_certificate = conn.sock.getpeercert(binary_form=True)  # type: ignore[attr-defined]
        conn.state = WAITING
        conn.since = time.monotonic()
        conn.deadline = conn.since + KEEPALIVE_SECONDS
        self._watch(conn, _READ)
        self._read(conn)  # the request may have come with the handshake's last flight

    def _read(self, conn: Connection) -> None:
        while True:
            try:
                data = conn.sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                return
            except ssl.SSLWantWriteError:
                self._watch(conn, _WRITE)
                return
            except OSError:  # reset, or a TLS error
                self._close(conn)
                return
            if not data:
                self._close(conn)  # the client has gone; an unfinished request with it
                return
            if conn.state == WAITING:
                conn.state = READING
                conn.since = time.monotonic()
                conn.deadline = conn.since + REQUEST_SECONDS
            conn.http.receive_data(data)
            self._advance(conn)
            if not self._open_now(conn) or conn.state != READING or not conn.tls or \
                    not conn.sock.pending():  # type: ignore[attr-defined]
                return

    def _advance(self, conn: Connection) -> None:
        """Take what h11 has parsed; serve the request once it is whole."""
        while conn.state in (WAITING, READING):
            try:
                event = conn.http.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(conn, exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA:
                if conn.http.they_are_waiting_for_100_continue and not conn.continued:
                    conn.continued = True
                    self._send_now(conn, conn.http.send(
                        h11.InformationalResponse(status_code=100, headers=[])))
                return
            if isinstance(event, h11.Request):
                if conn.state == WAITING:  # pipelined: already received
                    conn.state, conn.since = READING, time.monotonic()
                    conn.deadline = conn.since + REQUEST_SECONDS
                refusal = _too_large(event)
                if refusal is not None:
                    self._refuse(conn, *refusal)
                    return
                conn.request, conn.body, conn.body_bytes = event, [], 0
                declared = _content_length(event)
                if declared is not None and declared > self.max_body:
                    conn.oversize = True  # answered at once; the body is never read
                    self._serve(conn, body=b"", complete=True)
                    return
            elif isinstance(event, h11.Data):
                conn.body.append(bytes(event.data))
                conn.body_bytes += len(event.data)
                self.buffered += len(event.data)
                if conn.body_bytes > self.max_body:  # chunked, past the limit
                    self._serve(conn, body=self._take_body(conn), complete=True)
                    return
                if self.buffered > BUFFERED_BYTES:
                    self._shed_buffers()
                    if not self._open_now(conn):
                        return
            elif isinstance(event, h11.EndOfMessage):
                self._serve(conn, body=self._take_body(conn), complete=True)
                return
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return

    def _take_body(self, conn: Connection) -> bytes:
        self.buffered -= conn.body_bytes
        body = b"".join(conn.body)
        conn.body, conn.body_bytes = [], 0
        return body

    def _shed_buffers(self) -> None:
        """Unfinished bodies hold more than BUFFERED_BYTES: drop the oldest of them."""
        for conn in sorted((c for c in self.conns.values() if c.state == READING),
                           key=lambda c: c.since):
            if self.buffered <= BUFFERED_BYTES:
                return
            self._close(conn)

    # ---- serving ----------------------------------------------------------------------
    def _serve(self, conn: Connection, body: bytes, complete: bool) -> None:
        """Run the application on the request (the whole body, or with `complete`
        False what arrived before the deadline), then send its answer."""
        request = conn.request
        assert request is not None
        environ = self._environ(conn, request, body, complete)
        if not complete or conn.oversize or not self.alive:
            conn.close_after = True
        status, headers, chunks = self._call(environ)
        headers.append(("Date", _http_date()))
        if conn.close_after:
            headers = [(k, v) for k, v in headers if k.lower() != "connection"]
            headers.append(("Connection", "close"))
        try:
            out = conn.http.send(h11.Response(status_code=status[0], reason=status[1],
                                              headers=headers))
            if request.method != b"HEAD":
                data = b"".join(chunks)
                if data:
                    out += conn.http.send(h11.Data(data=data))
            out += conn.http.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            self.log.error("the application's answer is not valid HTTP: %s", exc)
            self._refuse(conn, 500, "")
            return
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        conn.request = None
        conn.state = WRITING
        conn.since = time.monotonic()
        conn.deadline = conn.since + STALL_SECONDS
        conn.out = memoryview(out)
        self._write(conn)

    def _call(self, environ: dict[str, Any]) -> tuple[tuple[int, bytes], list[tuple[str, str]],
                                                     list[bytes]]:
        started: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return chunks.append

        try:
            # types-gunicorn has start_response return None; PEP 3333's returns write()
            result: Iterable[bytes] = self.wsgi(environ, start_response)  # type: ignore[arg-type]
            try:
                for chunk in result:
                    chunks.append(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            code, _, reason = str(started[0]).partition(" ")
            return (int(code), reason.encode("latin-1")), list(started[1]), chunks
        except Exception:  # noqa: BLE001 - the application failed; the client gets a 500
            self.log.exception("Error handling request %s",
                               environ.get("PATH_INFO", "")[:200])
            return ((500, b"Internal Server Error"),
                    [("Content-Type", _PLAIN_ERROR), ("Content-Length", "22")],
                    [b"Internal Server Error\n"])

    def _environ(self, conn: Connection, request: h11.Request, body: bytes,
                 complete: bool) -> dict[str, Any]:
        target = request.target
        if not target.startswith(b"/"):  # absolute form
            parts = urlsplit(target.decode("latin-1"))
            target = (parts.path or "/").encode("latin-1") + \
                (b"?" + parts.query.encode("latin-1") if parts.query else b"")
        path, _, query = target.partition(b"?")
        local = conn.local
        host, port = (str(local[0]), str(local[1])) if isinstance(local, tuple) else ("", "")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method.decode("ascii"),
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": host, "SERVER_PORT": port,
            "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
            "REMOTE_ADDR": conn.peer[0] if isinstance(conn.peer, tuple) else "",
            "REMOTE_PORT": str(conn.peer[1]) if isinstance(conn.peer, tuple) else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if conn.tls else "http",
            "wsgi.input": io.BytesIO(body) if complete else _Truncated(body),
            "wsgi.input_terminated": complete,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
            PEER_CERTIFICATE: conn.peer_certificate,
        }
        for raw_name, raw_value in request.headers:
            name = raw_name.decode("latin-1")
            if "_" in name:
                continue  # it would read as another header's variable (X_Forwarded_For)
            value = raw_value.decode("latin-1")
            if name == "content-type":
                environ["CONTENT_TYPE"] = value
                continue
            if name == "content-length":
                environ["CONTENT_LENGTH"] = value
                continue
            key = "HTTP_" + name.upper().replace("-", "_")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        if complete and not conn.oversize:
            environ["CONTENT_LENGTH"] = str(len(body))
        return environ

    # ---- writing and closing ----------------------------------------------------------
    def _send_now(self, conn: Connection, data: bytes) -> None:
        """A small interim answer (100 Continue), sent at once or not at all."""
        with contextlib.suppress(OSError, ssl.SSLError):
            conn.sock.send(data)

    def _write(self, conn: Connection) -> None:
        while conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                self._watch(conn, _WRITE)
                return
            except ssl.SSLWantReadError:
                self._watch(conn, _READ)
                return
            except OSError:
                self._close(conn)
                return
            conn.out = conn.out[sent:]
            conn.deadline = time.monotonic() + STALL_SECONDS
        self._answered(conn)

    def _answered(self, conn: Connection) -> None:
        if conn.close_after or conn.http.our_state is not h11.DONE or \
                conn.http.their_state is not h11.DONE:
            self._start_linger(conn)
            return
        try:
            conn.http.start_next_cycle()
        except h11.LocalProtocolError:
            self._start_linger(conn)
            return
        conn.state = WAITING
        conn.since = time.monotonic()
        conn.deadline = conn.since + (KEEPALIVE_SECONDS if self.alive else LINGER_SECONDS)
        conn.continued = False
        self._watch(conn, _READ)
        pending = conn.tls and conn.sock.pending()  # type: ignore[attr-defined]
        if conn.http.trailing_data[0] or pending:
            self.ready.append(conn)  # a pipelined request, already here

    def _start_linger(self, conn: Connection) -> None:
        """The last answer is sent: stop writing, and read (dropping it) whatever the
        client still sends for a moment, so closing does not reset the connection
        before the client has read the answer."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state = LINGERING
        conn.deadline = time.monotonic() + LINGER_SECONDS
        self._watch(conn, _READ)
        self._linger(conn)

    def _linger(self, conn: Connection) -> None:
        for _ in range(16):
            try:
                if not conn.sock.recv(RECV_BYTES):
                    break
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError):
                return
            except OSError:
                break
        else:
            return
        self._close(conn)

    def _refuse(self, conn: Connection, status: int, reason: str) -> None:
        """A request that is not HTTP (or too big to parse): a plain answer, then close."""
        self.log.debug("invalid request from %s: %s", conn.peer, reason)
        text = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large",
                500: "Internal Server Error"}.get(status, "Bad Request")
        body = f"{text}\n".encode()
        conn.request = None
        conn.close_after = True
        conn.state = WRITING
        conn.deadline = time.monotonic() + STALL_SECONDS
        conn.out = memoryview(f"HTTP/1.1 {status} {text}\r\nContent-Type: {_PLAIN_ERROR}\r\n"
                              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                              .encode() + body)
        self._write(conn)

    def _expire(self, now: float) -> None:
        for conn in [c for c in self.conns.values() if c.deadline <= now]:
            self._guarded(self._past_deadline, conn)

    def _past_deadline(self, conn: Connection) -> None:
        if conn.state == READING and conn.request is not None:
            # the headers came, the body did not (in time): the application will say
            # so, one such answer per pass of the loop (many connections can time out
            # together; those that sent whole requests are not kept waiting for them)
            conn.deadline = float("inf")
            self.overdue.append(conn)
        else:
            self._close(conn)

    def _serve_overdue(self, conn: Connection) -> None:
        if self._open_now(conn) and conn.state == READING and conn.request is not None:
            self._serve(conn, body=self._take_body(conn), complete=False)

    def _close(self, conn: Connection) -> None:
        if self.conns.get(conn.fd) is conn:
            del self.conns[conn.fd]
            if conn.events:
                assert self.selector is not None
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(conn.sock)
        self.buffered -= conn.body_bytes
        conn.body, conn.body_bytes, conn.events = [], 0, 0
        with contextlib.suppress(OSError):
            conn.sock.close()


class _Truncated(io.BytesIO):
    """A request body that stopped arriving: what came, then OSError for the rest."""

    def read(self, size: int | None = -1) -> bytes:
        left = len(self.getbuffer()) - self.tell()
        if size is None or size < 0 or size > left:
            raise OSError("the request body did not arrive in time")
        return super().read(size)


_DATE: list[Any] = [0, ""]


def _http_date() -> str:
    """The Date header (RFC 9110), made once a second."""
    now = int(time.time())
    if _DATE[0] != now:
        _DATE[:] = [now, formatdate(now, usegmt=True)]
    return str(_DATE[1])


def _too_large(request: h11.Request) -> tuple[int, str] | None:
    """(status, reason) for a request line or header section over the limits (h11 holds
    back an incomplete head past HEADER_BYTES; one that arrives whole is checked here)."""
    if len(request.target) > TARGET_BYTES:
        return 414, "request target too long"
    if len(request.headers) > HEADER_FIELDS or \
            sum(len(n) + len(v) + 4 for n, v in request.headers) > HEADER_BYTES:
        return 431, "request headers too large"
    return None


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)
    return None
