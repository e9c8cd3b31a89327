"""Signature wrapping: every class of rearranged, duplicated or re-referenced signed message
gets a fault and changes nothing; comments inside signed text cannot change what runs."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from lxml import etree
from signxml import SignatureReference, XMLSigner, methods
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm

from kms_ws.client import KmsClient
from kms_ws.xmlns import DS, KMS, SOAP, WSA, WSSE, WSU

from ..support import db
from ..support.envelopes import create_key, envelope, get_key
from ..support.server import ADMIN, ServerProcess
from ..support.signing import Signer, register_signer, signed
from ..support.validating import post

S, K, D = f"{{{SOAP}}}", f"{{{KMS}}}", f"{{{DS}}}"
EXC = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
Attack = Callable[[etree._Element, Signer], etree._Element]


@pytest.fixture(scope="module")
def setup(server: ServerProcess) -> tuple[Signer, str]:
    with KmsClient(server.url, *ADMIN) as admin:
        signer = register_signer(admin)
    with KmsClient(server.url, signing_key=signer.key) as c:
        key_id = c.create_key(friendly_name="wrapping-target").key_id
    return signer, key_id


def _parts(env: etree._Element) -> tuple[etree._Element, etree._Element, etree._Element]:
    header = env.find(S + "Header")
    return header, header.find(f"{{{WSSE}}}Security"), env.find(S + "Body")


def _new_body(env: etree._Element, keep_id: bool = False) -> etree._Element:
    """Replace the Body with an unsigned CreateKey; returns the old (signed) Body."""
    old = env.find(S + "Body")
    new = etree.fromstring(envelope(create_key("evil"), op="CreateKey")).find(S + "Body")
    if keep_id:
        new.set(f"{{{WSU}}}Id", old.get(f"{{{WSU}}}Id"))
    env.replace(old, new)
    return old


def body_into_header_wrapper(env: etree._Element, _: Signer) -> etree._Element:
    old = _new_body(env)
    wrapper = etree.SubElement(env.find(S + "Header"), "{urn:attacker}Wrapper")
    wrapper.append(old)
    return env


def body_wrapped_same_id(env: etree._Element, _: Signer) -> etree._Element:
    old = _new_body(env, keep_id=True)
    etree.SubElement(env.find(S + "Header"), "{urn:attacker}Wrapper").append(old)
    return env


def body_wrapped_in_security(env: etree._Element, _: Signer) -> etree._Element:
    old = _new_body(env)
    _, sec, _ = _parts(env)
    etree.SubElement(sec, "{urn:attacker}Wrapper").append(old)
    return env


def duplicate_timestamp_id(env: etree._Element, _: Signer) -> etree._Element:
    header, sec, _ = _parts(env)
    ts = sec.find(f"{{{WSU}}}Timestamp")
    etree.SubElement(header, "{urn:attacker}Wrapper").append(copy.deepcopy(ts))
    return env


def id_on_another_attribute(env: etree._Element, _: Signer) -> etree._Element:
    header, _, body = _parts(env)
    etree.SubElement(header, "{urn:attacker}Decoy").set("Id", body.get(f"{{{WSU}}}Id"))
    return env


def signature_moved_to_header(env: etree._Element, _: Signer) -> etree._Element:
    header, sec, _ = _parts(env)
    header.append(sec.find(D + "Signature"))
    return env


def signature_moved_to_body(env: etree._Element, _: Signer) -> etree._Element:
    _, sec, body = _parts(env)
    body.append(sec.find(D + "Signature"))
    return env


def timestamp_moved_out(env: etree._Element, _: Signer) -> etree._Element:
    header, sec, _ = _parts(env)
    etree.SubElement(header, "{urn:attacker}Wrapper").append(sec.find(f"{{{WSU}}}Timestamp"))
    return env


def second_security_header(env: etree._Element, _: Signer) -> etree._Element:
    header, sec, _ = _parts(env)
    header.insert(0, copy.deepcopy(sec))
    for el in header[0].iter():
        for a in list(el.attrib):
            if a.endswith("Id"):
                el.set(a, el.get(a) + "-2")
    return env


def second_signature(env: etree._Element, signer: Signer) -> etree._Element:
    header, sec, _ = _parts(env)
    extra = copy.deepcopy(sec.find(D + "Signature"))
    etree.SubElement(header, "{urn:attacker}Wrapper").append(extra)
    return env


def prefix_renamed(env: etree._Element, _: Signer) -> etree._Element:
    data = etree.tostring(env).replace(b"kms:", b"k2:").replace(b"xmlns:kms=", b"xmlns:k2=")
    return etree.fromstring(data)


def namespace_redeclared(env: etree._Element, _: Signer) -> etree._Element:
    data = etree.tostring(env).replace(b"<kms:KeyId>", b'<kms:KeyId xmlns:kms="urn:attacker">')
    return etree.fromstring(data)


def id_in_lookalike_namespace(env: etree._Element, _: Signer) -> etree._Element:
    _, _, body = _parts(env)
    value = body.attrib.pop(f"{{{WSU}}}Id")
    body.set("{urn:not-wsu}Id", value)
    return env


def whitespace_in_signed_text(env: etree._Element, _: Signer) -> etree._Element:
    kid = env.find(f".//{K}KeyId")
    kid.text = " " + kid.text
    return env


def enveloped_transform_added(env: etree._Element, _: Signer) -> etree._Element:
    t = env.find(f".//{D}Reference/{D}Transforms")
    etree.SubElement(t, D + "Transform",
                     Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature")
    return env


def _resign(env: etree._Element, signer: Signer, targets: list[etree._Element]) -> etree._Element:
    """A valid signature by the registered signer over the chosen elements."""
    _, sec, _ = _parts(env)
    old = sec.find(D + "Signature")
    refs = []
    for i, el in enumerate(targets):
        el.set(f"{{{WSU}}}Id", el.get(f"{{{WSU}}}Id") or f"X-{i}")
        refs.append(SignatureReference("#" + el.get(f"{{{WSU}}}Id"), c14n_method=EXC))
    sig = XMLSigner(method=methods.detached, signature_algorithm=signer.key.algorithm,
                    digest_algorithm=DigestAlgorithm.SHA256, c14n_algorithm=EXC).sign(
        env, key=signer.key.key, reference_uri=refs, key_info=old.find(D + "KeyInfo"))
    sec.replace(old, sig)
    return env


def reference_to_other_element(env: etree._Element, signer: Signer) -> etree._Element:
    header, _, body = _parts(env)
    return _resign(env, signer, [body, header.find(f"{{{WSA}}}MessageID")])


def _blocks(header: etree._Element) -> list[etree._Element]:
    return [h for h in header if isinstance(h.tag, str) and h.tag != f"{{{WSSE}}}Security"]


def extra_reference(env: etree._Element, signer: Signer) -> etree._Element:
    """Everything the profile asks for, and the token besides (not a place we sign)."""
    header, sec, body = _parts(env)
    return _resign(env, signer, [body, sec.find(f"{{{WSU}}}Timestamp"), *_blocks(header),
                                 sec.find(f"{{{WSSE}}}BinarySecurityToken")])


def reference_inside_a_header_block(env: etree._Element, signer: Signer) -> etree._Element:
    """A header block is signed whole, at its place: not an element inside one."""
    header, sec, body = _parts(env)
    inner = header.find(f"{{{WSA}}}ReplyTo/{{{WSA}}}Address")
    return _resign(env, signer, [body, sec.find(f"{{{WSU}}}Timestamp"), inner,
                                 *[b for b in _blocks(header) if b.tag != f"{{{WSA}}}ReplyTo"]])


def header_block_left_unsigned(env: etree._Element, signer: Signer) -> etree._Element:
    """A valid signature by the signer that leaves out a header the server acts on."""
    header, sec, body = _parts(env)
    return _resign(env, signer, [body, sec.find(f"{{{WSU}}}Timestamp"),
                                 *[b for b in _blocks(header)
                                   if b.tag != f"{{{WSA}}}MessageID"]])


def signed_action_wrapped(env: etree._Element, _: Signer) -> etree._Element:
    """The signed wsa:Action moved into a wrapper header, a new one in its place."""
    header, _, _ = _parts(env)
    action = header.find(f"{{{WSA}}}Action")
    header.replace(action, etree.Element(f"{{{WSA}}}Action"))
    header.find(f"{{{WSA}}}Action").text = "urn:kms-ws:p1619.3:1/CreateKey"
    etree.SubElement(header, "{urn:attacker}Wrapper").append(action)
    return env


def missing_reference(env: etree._Element, signer: Signer) -> etree._Element:
    _, _, body = _parts(env)
    return _resign(env, signer, [body])


def body_referenced_twice(env: etree._Element, signer: Signer) -> etree._Element:
    _, _, body = _parts(env)
    return _resign(env, signer, [body, body])


ATTACKS = [body_into_header_wrapper, body_wrapped_same_id, body_wrapped_in_security,
           duplicate_timestamp_id, id_on_another_attribute, signature_moved_to_header,
           signature_moved_to_body, timestamp_moved_out, second_security_header,
           second_signature, prefix_renamed, namespace_redeclared, id_in_lookalike_namespace,
           whitespace_in_signed_text, enveloped_transform_added, reference_to_other_element,
           extra_reference, missing_reference, body_referenced_twice,
           reference_inside_a_header_block, header_block_left_unsigned, signed_action_wrapped]


REFUSED_BECAUSE = {
    "body_into_header_wrapper": "the Body must be present and carry a wsu:Id",
    "body_wrapped_same_id": "duplicate id",
    "body_wrapped_in_security": "the Body must be present and carry a wsu:Id",
    "duplicate_timestamp_id": "duplicate id",
    "id_on_another_attribute": "duplicate id",
    "signature_moved_to_header": "must be a child of wsse:Security",
    "signature_moved_to_body": "must be a child of wsse:Security",
    "timestamp_moved_out": "exactly one wsu:Timestamp",
    "second_security_header": "exactly one wsse:Security",
    "second_signature": "exactly one ds:Signature",
    "prefix_renamed": "does not verify",
    "namespace_redeclared": "does not verify",
    "id_in_lookalike_namespace": "the Body must be present and carry a wsu:Id",
    "whitespace_in_signed_text": "does not verify",
    "enveloped_transform_added": "exactly one exclusive c14n transform",
    "reference_to_other_element": "must reference the Body and the Timestamp",
    "extra_reference": "may reference only the Body, the Timestamp and header blocks",
    "missing_reference": "must reference the Body and the Timestamp",
    "body_referenced_twice": "referenced twice",
    "reference_inside_a_header_block": "may reference only the Body, the Timestamp and "
                                       "header blocks",
    "header_block_left_unsigned": "does not cover the header wsa:MessageID",
    "signed_action_wrapped": "may reference only the Body, the Timestamp and header blocks",
}


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.__name__)
def test_wrapping_attack_is_refused(server: ServerProcess, setup: tuple[Signer, str],
                                    attack: Attack) -> None:
    signer, key_id = setup
    # The signed message the attacker captured: a harmless GetKey of the signer's key.
    env = etree.fromstring(signed(get_key(key_id), "GetKey", signer.key))
    hostile = etree.tostring(attack(env, signer))
    before = db.snapshot(server.data_dir)
    r, resp = post(server.url, hostile, validate_request=False)
    assert 400 <= r.status_code < 500, r.text
    sub = resp.findtext(f".//{S}Subcode/{S}Value")
    assert sub in ("wsse:InvalidSecurity", "wsse:FailedCheck", "wsse:UnsupportedAlgorithm"), sub
    assert REFUSED_BECAUSE[attack.__name__] in resp.findtext(f".//{S}Text")
    assert resp.find(f".//{K}Key") is None  # no key material in any answer
    assert db.snapshot(server.data_dir) == before


def test_comment_inside_signed_text_cannot_change_the_request(
        server: ServerProcess, setup: tuple[Signer, str]) -> None:
    """Exclusive c14n drops comments, so `<KeyId>ab<!---->cd</KeyId>` verifies; the server
    must act on the verified text (the whole id), never on the text before the comment."""
    signer, key_id = setup
    data = signed(get_key(key_id), "GetKey", signer.key)
    cut = len(key_id) // 2
    hostile = data.replace(key_id.encode(), (key_id[:cut] + "<!-- x -->" + key_id[cut:]).encode())
    assert hostile != data
    r, resp = post(server.url, hostile, validate_request=False)
    assert r.status_code == 200 and resp.findtext(f".//{K}KeyId") == key_id


def test_signed_request_with_fresh_signature_still_works(server: ServerProcess,
                                                         setup: tuple[Signer, str]) -> None:
    """The control: the unmodified message is accepted (so the attacks fail for their
    tampering, not for some other reason)."""
    signer, key_id = setup
    env = etree.fromstring(signed(get_key(key_id), "GetKey", signer.key))
    r, resp = post(server.url, etree.tostring(env))
    assert r.status_code == 200 and resp.findtext(f".//{K}KeyId") == key_id
