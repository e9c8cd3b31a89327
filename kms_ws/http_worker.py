"""The gunicorn worker of `kms-ws serve`: gthread's event loop (keep-alive connections,
idle connections held by the poller, graceful stop), with each request served on the
loop's own thread instead of being handed to a pool of one thread.

One request at a time per process either way. Handing each request to the pool thread
and its completion back through a pipe cost a thread switch each way and a Future per
request, for nothing. Serving on the loop's thread also restores what gunicorn's sync
workers did: the heartbeat stops while a request runs, so the arbiter replaces a worker
stuck in one request after `timeout` seconds.

A new connection is served at once only when its first bytes are already there; else it
goes to the poller until they arrive (or its keep-alive time ends), so connections that
send nothing never hold the loop. A client that stops part-way through a request (or
stops reading its answer) holds the loop for at most STALL_SECONDS per read or write:
the socket's receive and send timeouts end the wait and the connection is closed.
gunicorn's own workers wait without limit there, so a few such clients stopped every
worker for good.
"""

from __future__ import annotations

import socket
import struct
from concurrent import futures

from gunicorn.workers import gthread

STALL_SECONDS = 10
_STALL = struct.pack("ll", STALL_SECONDS, 0)  # struct timeval


class OneThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]
    def enqueue_req(self, conn: gthread.TConn) -> None:
        if not conn.initialized:  # a new connection (TLS wraps this same socket)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _STALL)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _STALL)
        done: futures.Future[object] = futures.Future()
        if not conn.initialized and not conn.data_ready and not conn.wait_for_data(0):
            done.set_result(gthread._DEFER)  # back to the poller until it is readable
        else:
            done.set_result(self.handle(conn))  # handle() answers or closes; never raises
        self.finish_request(conn, done)
