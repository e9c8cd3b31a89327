"""Pages of GetUpdateList are signed as they are sent: their items are written as text in
exclusive-c14n form and spliced into the signed Body (kms_ws.codec.key_xml). Keys whose
text needs escaping (& < > CR), quotes, tabs, newlines and non-ASCII characters come back
exactly as stored, and the signature verifies with KmsClient, with Debian's xmlsec1 and
with signxml, in every enumeration mode; a changed item is refused."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from kms_ws.client import KmsClient, UntrustedResponse
from kms_ws.security.certificates import SERVER_CERT_FILE
from kms_ws.xmlns import SOAP, WSSE

from ..support import wsman as W
from ..support.server import ServerProcess
from ..support.signing import ID_ATTRS, xmlsec1
from ..support.tamper import TamperingRelay
from ..support.validating import ValidatingPlugin, post

NS = W.NS
NAME = 'a&b<c>d"e\'f\tg ]]> é ✓ 😀'  # kms:Name: no line breaks, no outer spaces
DESCRIPTION = "one\r\ntwo\rthree\n & <x> \"q\" 'a'\t😀 "
ATTRIBUTES = {"k&<>\"'": "v\r\n<&>\"' ✓"}


@pytest.fixture()
def awkward(client_factory):  # type: ignore[no-untyped-def]
    """A client alone in a fresh realm with three keys whose text needs escaping."""
    client, name, pw = client_factory(realms=(f"realm://pages/{uuid.uuid4().hex[:8]}",))
    ids = [client.create_key(friendly_name=f"{NAME} {i}", description=DESCRIPTION,
                             attributes=ATTRIBUTES).key_id for i in range(3)]
    return client, (name, pw), ids


def test_client_verifies_pages_and_gets_the_text_back(server: ServerProcess,  # type: ignore[no-untyped-def]
                                                      awkward) -> None:
    _, (name, pw), ids = awkward
    v = ValidatingPlugin()
    with KmsClient(server.url, name, pw, plugins=[v],
                   server_cert=str(server.data_dir / SERVER_CERT_FILE)) as c:
        it = c.get_update_list(max_elements=2)  # an optimized Enumerate, then a Pull
        keys = list(it)
    assert [k.key_id for k in keys] == ids
    assert [k.friendly_name for k in keys] == [f"{NAME} {i}" for i in range(3)]
    assert all(k.description == DESCRIPTION and k.attributes == ATTRIBUTES for k in keys)
    assert v.received >= 2


@pytest.mark.needs("xmlsec1")
@pytest.mark.parametrize("mode", ["", "EnumerateEPR", "EnumerateObjectAndEPR"])
def test_every_mode_verifies_independently(server: ServerProcess, awkward, mode: str,  # type: ignore[no-untyped-def]
                                           tmp_path: Path) -> None:
    _, auth, ids = awkward
    extra = f"<wsman:EnumerationMode>{mode}</wsman:EnumerationMode>" if mode else ""
    r, env = post(server.url, W.enumerate_(W.optimized(2, extra)), auth=auth)
    assert r.status_code == 200, r.text
    responses = [r.content]
    ctx = env.findtext("s:Body/wsen:EnumerateResponse/wsen:EnumerationContext", namespaces=NS)
    r, env = post(server.url, W.pull(ctx, 5), auth=auth)
    assert r.status_code == 200, r.text
    responses.append(r.content)
    seen = []
    for n, data in enumerate(responses):
        _verify_both(server, data, tmp_path / f"page{n}.xml")
        root = etree.fromstring(data)
        seen += [s.text for s in root.iterfind(".//wsman:Selector", NS)]
        for key in root.iterfind(".//kms:Key", NS):
            seen.append(key.findtext("kms:KeyId", namespaces=NS))
            assert key.findtext("kms:FriendlyName", namespaces=NS).startswith(NAME)
            assert key.findtext("kms:Description", namespaces=NS) == DESCRIPTION
            assert key.findtext("kms:AttributeAssociations/kms:Attribute/kms:Value",
                                namespaces=NS) == ATTRIBUTES["k&<>\"'"]
    per_item = {"": 1, "EnumerateEPR": 1, "EnumerateObjectAndEPR": 2}[mode]
    assert sorted(seen) == sorted(ids * per_item)


def test_a_changed_item_is_refused(server: ServerProcess, awkward) -> None:  # type: ignore[no-untyped-def]
    _, (name, pw), _ = awkward

    def rename(data: bytes) -> bytes:
        return data.replace("😀 1<".encode(), "😀 9<".encode(), 1)

    with (TamperingRelay(server.url, rename) as relay,
          KmsClient(relay.url, name, pw,
                    server_cert=str(server.data_dir / SERVER_CERT_FILE)) as c):
        assert len(list(c.get_update_list(max_elements=3))) == 3  # untouched: it verifies
        relay.active = True
        with pytest.raises(UntrustedResponse) as exc:
            list(c.get_update_list(max_elements=3))
    assert "does not verify" in exc.value.reason


def _verify_both(server: ServerProcess, data: bytes, path: Path) -> None:
    """signxml and xmlsec1 verify the response's signature."""
    cert = x509.load_pem_x509_certificate((server.data_dir / SERVER_CERT_FILE).read_bytes())
    root = etree.fromstring(data)
    # the Body, the Timestamp and every header block but the Security header
    blocks = [h for h in root.find(f"{{{SOAP}}}Header") if isinstance(h.tag, str)]
    config = SignatureConfiguration(location=f"./{{{SOAP}}}Header/{{{WSSE}}}Security/",
                                    expect_references=len(blocks) + 1,
                                    ignore_ambiguous_key_info=True)
    results = XMLVerifier().verify(root, x509_cert=cert, expect_config=config)
    body = etree.tostring(root.find(f"{{{SOAP}}}Body"), method="c14n", exclusive=True)
    assert body in [r.signed_data for r in results]  # the Body as sent is what was signed
    path.write_bytes(data)
    ok = xmlsec1("--verify", *ID_ATTRS, "--pubkey-cert-pem",
                 str(server.data_dir / SERVER_CERT_FILE), path.name, cwd=path.parent)
    assert ok.returncode == 0, ok.stderr
