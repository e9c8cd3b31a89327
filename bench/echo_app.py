"""A trivial spyne SOAP 1.2 echo service: the ceiling of kms-ws's stack.

Served exactly like kms-ws (gunicorn with kms-ws's own buffering worker,
`kms_ws.http_worker.BufferingWorker`: connections kept alive, each response sent in one
write) as `echo_app:application`.
`Echo(Payload, ResponseSize)` returns Payload padded to ResponseSize characters,
so the benchmark can match both the request and the response size of GetKey.
"""

from __future__ import annotations

from spyne import Application, Integer, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap12
from spyne.server.wsgi import WsgiApplication

NAMESPACE = "urn:kms-ws:bench:echo"
MAX_RESPONSE_SIZE = 64 * 1024
FILLER = "x"


class EchoService(ServiceBase):  # type: ignore[misc]  # spyne is untyped
    """One operation, no state, no I/O."""

    @rpc(Unicode, Integer, _returns=Unicode)  # type: ignore[untyped-decorator]
    def Echo(ctx, Payload: str | None, ResponseSize: int | None) -> str:  # noqa: N802,N803
        text = Payload or ""
        size = min(max(ResponseSize or 0, 0), MAX_RESPONSE_SIZE)
        return text + FILLER * max(size - len(text), 0)


def build_application() -> object:
    soap_app = Application([EchoService], tns=NAMESPACE, name="EchoService",
                           in_protocol=Soap12(validator="lxml"), out_protocol=Soap12())
    return WsgiApplication(soap_app)


application = build_application()
