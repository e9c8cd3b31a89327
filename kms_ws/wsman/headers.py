"""WS-Management request headers (DSP0226 §6): ResourceURI, SelectorSet, OperationTimeout,
MaxEnvelopeSize, Locale, OptionSet, RequestTotalItemsCountEstimate, and the WS-Eventing
subscription Identifier (a reference parameter). Parsing only; decisions are elsewhere."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from ..domain.errors import (
    EncodingLimit,
    InvalidSelectors,
    SchemaValidationError,
    SelectorProblem,
)
from ..security.xml import text_of
from ..xmlns import WSE, WSMAN, XML

_W = f"{{{WSMAN}}}"
MIN_ENVELOPE = 8192  # DSP0226 R6.2-4: a smaller MaxEnvelopeSize is an EncodingLimit
_DURATION = re.compile(r"^-?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?"
                       r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?$")

HANDLED = frozenset(_W + n for n in (
    "ResourceURI", "SelectorSet", "OperationTimeout", "MaxEnvelopeSize", "Locale",
    "DataLocale", "OptionSet", "RequestTotalItemsCountEstimate")) | {f"{{{WSE}}}Identifier"}


@dataclass(frozen=True)
class WsManHeaders:
    resource_uri: str | None = None
    selectors: dict[str, str] | None = None  # None: no SelectorSet header at all
    operation_timeout: float | None = None  # seconds
    max_envelope_size: int | None = None
    locale: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    total_estimate: bool = False
    identifier: str | None = None


def parse_duration(text: str) -> float:
    """xs:duration -> seconds. Lenient on the forms clients send (PT60.0S, PT1M, P1D)."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.groups()) or text.strip().startswith("-"):
        raise SchemaValidationError(f"not a positive xs:duration: {text.strip()[:40]!r}")
    y, mo, d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return ((y * 365 + mo * 30 + d) * 24 + h) * 3600 + mi * 60 + s


def read(header: etree._Element | None) -> WsManHeaders:
    if header is None:
        return WsManHeaders()
    text = {n: text_of(el).strip() for n in ("ResourceURI", "OperationTimeout",
                                                 "MaxEnvelopeSize")
            if (el := header.find(_W + n)) is not None}
    max_env = None
    if "MaxEnvelopeSize" in text:
        try:
            max_env = int(text["MaxEnvelopeSize"])
        except ValueError:
            raise SchemaValidationError("wsman:MaxEnvelopeSize is not an integer") from None
        if max_env < MIN_ENVELOPE:
            raise EncodingLimit(f"MaxEnvelopeSize {max_env} is below the minimum of "
                                f"{MIN_ENVELOPE} octets")
    locale = header.find(_W + "Locale")
    ident = header.find(f"{{{WSE}}}Identifier")
    return WsManHeaders(
        resource_uri=text.get("ResourceURI"), selectors=_selectors(header),
        operation_timeout=parse_duration(text["OperationTimeout"])
        if "OperationTimeout" in text else None,
        max_envelope_size=max_env,
        locale=locale.get(f"{{{XML}}}lang") if locale is not None else None,
        options={o.get("Name", ""): text_of(o).strip()
                 for o in header.iterfind(f"{_W}OptionSet/{_W}Option")},
        total_estimate=header.find(_W + "RequestTotalItemsCountEstimate") is not None,
        identifier=text_of(ident).strip() if ident is not None else None)


def _selectors(header: etree._Element) -> dict[str, str] | None:
    sset = header.find(_W + "SelectorSet")
    if sset is None:
        return None
    out: dict[str, str] = {}
    for sel in sset.iterfind(_W + "Selector"):
        name = sel.get("Name", "")
        if name in out:
            raise InvalidSelectors(f"selector {name} is given twice", SelectorProblem.DUPLICATE)
        out[name] = text_of(sel).strip()
    return out
