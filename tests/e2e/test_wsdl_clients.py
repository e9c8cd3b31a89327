"""A plain zeep client built only from the served WSDL, and the WSDL contract itself."""

from __future__ import annotations

import pytest
import requests
import zeep
from zeep.transports import Transport

from kms_ws.resources import schema_dir, wsdl_dir
from kms_ws.soap.wsdl import PLACEHOLDER_URL, build_wsdl

from ..support.server import ADMIN, ServerProcess

pytestmark = pytest.mark.e2e


def test_served_wsdl_is_the_committed_one(server: ServerProcess) -> None:
    served = requests.get(server.url + "?wsdl", timeout=10).content
    committed = (wsdl_dir() / "kms.wsdl").read_bytes()
    # identical but for the endpoint address, which names the server actually asked
    assert served == committed.replace(PLACEHOLDER_URL.encode(), server.url.encode())
    assert committed == build_wsdl(schema_dir()), \
        "wsdl/kms.wsdl drifted: run kms-ws wsdl -o wsdl/kms.wsdl"


def test_plain_zeep_from_served_wsdl(server: ServerProcess, validator) -> None:  # type: ignore[no-untyped-def]
    session = requests.Session()
    session.auth = ADMIN
    z = zeep.Client(server.url + "?wsdl", transport=Transport(session=session),
                    plugins=[validator])
    svc = z.service  # the address comes from the served WSDL
    created = svc.CreateKey(FriendlyName="from-zeep", KeyLength=128)
    assert len(created.KeyBlob.Data) == 16 and created.KeyBlob.WrappingType == "none"
    got = svc.GetKey(KeyId=created.KeyId)
    assert got.Key[0].KeyBlob.Data == created.KeyBlob.Data
    stored = svc.StoreKey(KeyBlob={"ProtocolVersion": 1, "WrappingType": "none", "Length": 32,
                                   "Data": b"\x07" * 32}, FriendlyName="zeep-stored")
    assert svc.GetKey(KeyId=stored.KeyId).Key[0].KeyBlob.Data == b"\x07" * 32
    assert len(svc.GetRandomBytes(NumberOfBytes=10)) == 10
    assert svc.GetServerCapabilities()
    with pytest.raises(zeep.exceptions.Fault) as err:
        svc.GetKey(KeyId="00000000-0000-4000-8000-000000000000")
    assert err.value.subcodes[0].localname == "NotFound"
    assert validator.sent >= 5 and validator.received == validator.sent
