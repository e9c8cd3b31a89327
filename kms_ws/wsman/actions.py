"""The WS-Management dispatch table: wsa:Action -> translation function. (The §6 kms
operations have their own table, keyed by their kms action.)"""

from __future__ import annotations

from lxml import etree

from ..xmlns import WSMID
from . import enumeration, eventing, identify, transfer
from .call import WsHandler

ACTIONS: dict[str, WsHandler] = {
    identify.ACTION: identify.identify,
    transfer.ACTIONS["Get"]: transfer.get,
    transfer.ACTIONS["Put"]: transfer.put,
    transfer.ACTIONS["Create"]: transfer.create,
    transfer.ACTIONS["Delete"]: transfer.delete,
    enumeration.ACTIONS["Enumerate"]: enumeration.enumerate_,
    enumeration.ACTIONS["Pull"]: enumeration.pull,
    enumeration.ACTIONS["Renew"]: enumeration.renew,
    enumeration.ACTIONS["GetStatus"]: enumeration.get_status,
    enumeration.ACTIONS["Release"]: enumeration.release,
    eventing.ACTIONS["Subscribe"]: eventing.subscribe,
    eventing.ACTIONS["Renew"]: eventing.renew,
    eventing.ACTIONS["Unsubscribe"]: eventing.unsubscribe,
}


def implied_action(payload: etree._Element | None) -> str | None:
    """Identify is sent without WS-Addressing headers: the Body names it."""
    if payload is not None and payload.tag == f"{{{WSMID}}}Identify":
        return identify.ACTION
    return None
