"""Decoders and encoders of the administrative operations (merged into codec.kms's tables)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from ..security.xml import child_text, text_of
from ..service.admin import messages as am
from ..service.messages import BindingQuery, BindingQueryResult
from ..xmlns import KMS
from . import documents

_K = f"{{{KMS}}}"


def _text(el: etree._Element, name: str) -> str | None:
    found = child_text(el, _K + name)
    return None if found is None else found.strip()


def _object(el: etree._Element) -> tuple[str, dict[str, Any]]:
    obj = next(c for c in el if isinstance(c.tag, str) and c.tag.startswith(_K)
               and c.tag[len(_K):] in documents._schema()[1])
    return etree.QName(obj).localname, documents.decode(obj)


def _create(el: etree._Element, credential: Callable[[etree._Element | None], Any]
            ) -> am.AdminRequest:
    kind, doc = _object(el)
    return am.AdminRequest("Create", kind, document=doc,
                           credential=credential(el.find(_K + "Credential")))


def _edit(el: etree._Element) -> am.AdminRequest:
    kind, doc = _object(el)
    return am.AdminRequest("Edit", kind, document=doc)


def _ref(el: etree._Element, action: str) -> am.AdminRequest:
    version = _text(el, "Version")
    return am.AdminRequest(action, _text(el, "Kind") or "", _text(el, "Id"),
                           version=int(version) if version else None)


def _list(el: etree._Element, parse_time: Callable[[str], Any]) -> am.AdminRequest:
    since = _text(el, "AlteredSince")
    return am.AdminRequest("List", _text(el, "Kind") or "",
                           altered_since=parse_time(since) if since else None,
                           max_items=int(_text(el, "MaxItems") or 100))


def _association(el: etree._Element, action: str) -> am.AdminRequest:
    target = el.find(_K + "Target")
    assert target is not None
    return am.AdminRequest(action, _text(el, "Kind") or "", _text(el, "Id"),
                           target=am.Ref(_text(target, "Kind") or "", _text(target, "Id") or ""),
                           rights=tuple(text_of(r).strip()
                                        for r in el.iterfind(_K + "Right")))


def _audit(el: etree._Element, parse_time: Callable[[str], Any]) -> am.AuditQuery:
    def t(name: str) -> Any:
        v = _text(el, name)
        return parse_time(v) if v else None
    return am.AuditQuery(_text(el, "KeyId"), _text(el, "ClientId"), t("From"), t("To"),
                         int(_text(el, "MaxRecords") or 100))


def bindings_query(el: etree._Element) -> BindingQuery:
    """AdminBindings and GetBindings: a KeyId or a DataSet (MaxRecords: GetBindings)."""
    most = int(_text(el, "MaxRecords") or 1000)
    ds = el.find(_K + "DataSet")
    if ds is not None:
        return BindingQuery(dataset_name=_text(ds, "Name"), dataset_value=_text(ds, "Value"),
                            max_records=most)
    return BindingQuery(key_id=_text(el, "KeyId"), max_records=most)


def decoders(credential: Callable[[etree._Element | None], Any],
             parse_time: Callable[[str], Any]) -> dict[str, Callable[[etree._Element], Any]]:
    return {
        "AdminCreate": lambda el: _create(el, credential),
        "AdminGet": lambda el: _ref(el, "Get"),
        "AdminList": lambda el: _list(el, parse_time),
        "AdminEdit": _edit,
        "AdminDelete": lambda el: _ref(el, "Delete"),
        "AdminAssociate": lambda el: _association(el, "Associate"),
        "AdminDisassociate": lambda el: _association(el, "Disassociate"),
        "AdminAudit": lambda el: _audit(el, parse_time),
        "AdminBindings": bindings_query,
    }


# ---- encoders ----------------------------------------------------------------------------

def _objects(el: etree._Element, r: am.AdminResult) -> None:
    for doc in r.documents:
        documents.encode(el, r.kind, doc)


def _list_result(el: etree._Element, r: am.AdminResult) -> None:
    _objects(el, r)
    if r.more:
        etree.SubElement(el, _K + "More").text = "true"


def _delete_result(el: etree._Element, r: am.AdminResult) -> None:
    if r.removed:
        etree.SubElement(el, _K + "Removed").text = "true"
    else:
        _objects(el, r)


def _add(parent: etree._Element, name: str, value: Any, fmt: Callable[[Any], str]) -> None:
    if value is not None:
        etree.SubElement(parent, _K + name).text = fmt(value) if not isinstance(value, str) \
            else value


def _audit_result(el: etree._Element, r: am.AuditQueryResult,
                  fmt: Callable[[Any], str]) -> None:
    for rec in r.records:
        out = etree.SubElement(el, _K + "Record")
        for name, key in (("Time", "at"), ("Operation", "operation"), ("Event", "event"),
                          ("Result", "result"), ("ActorId", "actor_id"),
                          ("ActorName", "actor_name"), ("KeyId", "key_id"),
                          ("PepId", "pep_id"), ("ReportedTime", "reported_at"),
                          ("Message", "message"), ("Count", "count")):
            _add(out, name, rec.get(key), fmt)


def bindings_result(el: etree._Element, r: BindingQueryResult,
                    fmt: Callable[[Any], str]) -> None:
    for b in r.bindings:
        out = etree.SubElement(el, _K + "Binding")
        _add(out, "KeyId", b["key_id"], fmt)
        ds = etree.SubElement(out, _K + "DataSet")
        _add(ds, "Name", b["name"], fmt)
        _add(ds, "Value", b["value"], fmt)
        _add(out, "ReportedBy", b.get("reported_by"), fmt)
        _add(out, "Time", b["at"], fmt)
    if r.more:
        _add(el, "More", "true", fmt)


def encoders(fmt: Callable[[Any], str]) -> dict[str, Callable[[etree._Element, Any], None]]:
    return {
        "AdminCreate": _objects, "AdminGet": _objects, "AdminList": _list_result,
        "AdminEdit": _objects, "AdminDelete": _delete_result, "AdminAssociate": _objects,
        "AdminDisassociate": _objects,
        "AdminAudit": lambda el, r: _audit_result(el, r, fmt),
        "AdminBindings": lambda el, r: bindings_result(el, r, fmt),
    }
