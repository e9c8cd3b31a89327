"""§6.12 GetUpdateList over WS-Enumeration: real client shapes, stateless MAC-protected
contexts (tampered, expired, foreign, on another server process), tokens, DSP0226 limits."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from lxml import etree

from kms_ws.xmlns import WSEN

from ..support import wsman as W
from ..support.db import snapshot
from ..support.server import ADMIN, ServerProcess
from ..support.validating import post
from .test_faults import fault_of

pytestmark = pytest.mark.e2e
NS = W.NS


def drain(gen):  # type: ignore[no-untyped-def]
    """(items, return value) of a generator."""
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            return items, stop.value


@pytest.fixture()
def realm_client(client_factory):  # type: ignore[no-untyped-def]
    """A client alone in a fresh realm, with its credentials."""
    realm = f"realm://enum/{uuid.uuid4().hex[:8]}"
    return client_factory(realms=(realm,))


def key_ids(items: etree._Element | None) -> list[str]:
    return [] if items is None else [k.text for k in items.iterfind(".//kms:Key/kms:KeyId", NS)]


def pull_all(url: str, auth, context: str, max_elements: int = 2,  # type: ignore[no-untyped-def]
             style: str = "openwsman") -> tuple[list[str], etree._Element]:
    """Pull the way real clients do: while the response still carries a context."""
    got: list[str] = []
    for _ in range(1000):
        r, env = post(url, W.pull(context, max_elements, style=style), auth=auth)
        assert r.status_code == 200, r.text
        res = env.find("s:Body/wsen:PullResponse", NS)
        got += key_ids(res.find("wsen:Items", NS))
        ctx = res.find("wsen:EnumerationContext", NS)
        if ctx is None:
            assert res.find("wsen:EndOfSequence", NS) is not None
            return got, env
        context = ctx.text
    raise AssertionError("the enumeration never ended")


@pytest.mark.parametrize("style", ["openwsman", "shell", "winrm"])
def test_plain_enumerate_then_pull_to_the_end(server: ServerProcess, realm_client,  # type: ignore[no-untyped-def]
                                              style: str) -> None:
    client, name, pw = realm_client
    made = [client.create_key(friendly_name=f"e{i}").key_id for i in range(5)]
    r, env = post(server.url, W.enumerate_(style=style), auth=(name, pw))
    assert r.status_code == 200
    ctx = env.findtext("s:Body/wsen:EnumerateResponse/wsen:EnumerationContext", namespaces=NS)
    got, last = pull_all(server.url, (name, pw), ctx, style=style)
    assert got == made  # change order, nothing of other realms
    token = last.find("s:Header/kms:UpdateVersioningTokens/kms:Token", NS)
    assert token.get("Type") == "AllKeys" and int(token.text) >= 5


def test_optimized_enumeration_as_shell_clients_do(server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    made = [client.create_key(friendly_name=f"o{i}").key_id for i in range(3)]
    r, env = post(server.url, W.enumerate_(W.optimized(512), style="shell"), auth=(name, pw))
    res = env.find("s:Body/wsen:EnumerateResponse", NS)
    assert key_ids(res.find("wsman:Items", NS)) == made
    # complete in one response: an empty context plus wsman:EndOfSequence
    assert res.findtext("wsen:EnumerationContext", namespaces=NS) == ""
    assert res.find("wsman:EndOfSequence", NS) is not None
    assert env.find("s:Header/kms:UpdateVersioningTokens", NS) is not None


def test_optimized_then_pull(server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    made = [client.create_key(friendly_name=f"p{i}").key_id for i in range(5)]
    r, env = post(server.url, W.enumerate_(W.optimized(2)), auth=(name, pw))
    res = env.find("s:Body/wsen:EnumerateResponse", NS)
    first = key_ids(res.find("wsman:Items", NS))
    assert res.find("wsman:EndOfSequence", NS) is None
    rest, _ = pull_all(server.url, (name, pw), res.findtext("wsen:EnumerationContext",
                                                            namespaces=NS), 2)
    assert first + rest == made


@pytest.mark.parametrize("mode", ["EnumerateEPR", "EnumerateObjectAndEPR"])
def test_enumeration_modes(server: ServerProcess, realm_client, mode: str) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    made = [client.create_key(friendly_name=f"m{i}").key_id for i in range(2)]
    extra = f"<wsman:EnumerationMode>{mode}</wsman:EnumerationMode>"
    r, env = post(server.url, W.enumerate_(W.optimized(10, extra)), auth=(name, pw))
    items = env.find("s:Body/wsen:EnumerateResponse/wsman:Items", NS)
    eprs = items.findall(".//wsa:EndpointReference", NS)
    assert [e.findtext("wsa:ReferenceParameters/wsman:SelectorSet/wsman:Selector",
                       namespaces=NS) for e in eprs] == made
    assert all(e.findtext("wsa:ReferenceParameters/wsman:ResourceURI", namespaces=NS)
               == W.KEY_URI for e in eprs)
    objects = items.findall("wsman:Item/kms:Key", NS)
    assert len(objects) == (2 if mode == "EnumerateObjectAndEPR" else 0)


def test_unknown_enumeration_mode_is_unsupported_feature(server: ServerProcess) -> None:
    """notes/wsman.md: an EnumerationMode we do not know is wsman:UnsupportedFeature (the
    request itself is schema-valid: DSP0226 leaves modes open)."""
    body = "<wsman:EnumerationMode>EnumerateEverything</wsman:EnumerationMode>"
    r, env = post(server.url, W.enumerate_(body), auth=ADMIN)
    assert r.status_code == 400 and fault_of(env)[1] == "wsman:UnsupportedFeature"
    assert env.findtext(".//wsman:FaultDetail", namespaces=NS) == \
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/EnumerationMode"
    r, env = post(server.url, W.enumerate_("<wsman:EnumerationMode/>"), auth=ADMIN,
                  validate_request=False)  # an empty mode is not even a token
    assert r.status_code == 400 and fault_of(env)[1] == "wsman:SchemaValidationError"


def test_total_items_count_estimate(server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    for i in range(4):
        client.create_key(friendly_name=f"t{i}")
    r, env = post(server.url, W.enumerate_(extra="<wsman:RequestTotalItemsCountEstimate/>"),
                  auth=(name, pw))
    assert env.findtext("s:Header/wsman:TotalItemsCountEstimate", namespaces=NS) == "4"


def test_selector_filter(server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    keys = [client.create_key(friendly_name=n).key_id for n in ("alpha", "beta", "alpha")]
    f = (f'<wsman:Filter Dialect="{W.SELECTOR_DIALECT}"><wsman:SelectorSet>'
         '<wsman:Selector Name="FriendlyName">alpha</wsman:Selector></wsman:SelectorSet>'
         '</wsman:Filter>')
    r, env = post(server.url, W.enumerate_(W.optimized(10) + f), auth=(name, pw))
    assert key_ids(env.find("s:Body/wsen:EnumerateResponse/wsman:Items", NS)) == \
        [keys[0], keys[2]]


@pytest.mark.parametrize("flt,sub", [
    ('<wsman:Filter Dialect="http://www.w3.org/TR/1999/REC-xpath-19991116">//Key</wsman:Filter>',
     "FilterDialectRequestedUnavailable"),
    (W.update_filter("Templates"), "CannotProcessFilter"),
    (f'<wsman:Filter Dialect="{W.SELECTOR_DIALECT}"><wsman:SelectorSet><wsman:Selector '
     'Name="Colour">red</wsman:Selector></wsman:SelectorSet></wsman:Filter>',
     "CannotProcessFilter"),
], ids=["xpath", "unknown-type", "unknown-selector"])
def test_filters_we_cannot_process(server: ServerProcess, flt: str, sub: str) -> None:
    r, env = post(server.url, W.enumerate_(flt), auth=ADMIN)
    assert r.status_code == 400
    assert fault_of(env)[:2] == ("s:Sender", "wsen:" + sub)
    assert env.findtext("s:Header/wsa:Action", namespaces=NS) == WSEN + "/fault"


@pytest.mark.parametrize("expires", ["PT0S", "2001-01-01T00:00:00Z", "P400D"])
def test_invalid_expiration_time(server: ServerProcess, expires: str) -> None:
    r, env = post(server.url, W.enumerate_(f"<wsen:Expires>{expires}</wsen:Expires>"),
                  auth=ADMIN)
    assert r.status_code == 400
    assert fault_of(env)[1] == "wsen:InvalidExpirationTime"


def _context(url: str, auth, **kw) -> str:  # type: ignore[no-untyped-def]
    r, env = post(url, W.enumerate_(**kw), auth=auth)
    assert r.status_code == 200
    return env.findtext("s:Body/wsen:EnumerateResponse/wsen:EnumerationContext", namespaces=NS)


def _tamper(context: str, **changes) -> str:  # type: ignore[no-untyped-def]
    payload, tag = context.split(".")
    doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    doc.update(changes)
    new = base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    return f"{new}.{tag}"


def test_tampered_foreign_and_garbage_contexts(server: ServerProcess, realm_client,  # type: ignore[no-untyped-def]
                                               client_factory) -> None:
    client, name, pw = realm_client
    client.create_key(friendly_name="secret-of-realm")
    ctx = _context(server.url, (name, pw))
    _, other, other_pw = client_factory()
    cases = [((name, pw), _tamper(ctx, pos=-1)),                  # rewound cursor
             ((name, pw), _tamper(ctx, filter=[["type", "AllKeys"], ["client", ""],
                                                ["pep", ""]], high=10**9)),
             ((other, other_pw), ctx),                              # someone else's
             ((name, pw), "not-a-context"), ((name, pw), ctx[:-3] + "AAA")]
    for auth, bad in cases:
        r, env = post(server.url, W.pull(bad), auth=auth)
        assert r.status_code == 500, bad
        code, _, _, error = fault_of(env)
        assert (code, error) == ("s:Receiver", "E_INVALID_ENUMERATION_CONTEXT")
        assert fault_of(env)[1] == "wsen:InvalidEnumerationContext"
        assert "secret-of-realm" not in r.text


def test_renew_status_release_and_expiry(server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    client.create_key(friendly_name="r")
    ctx = _context(server.url, (name, pw), extra="")
    r, env = post(server.url, W.context_call("GetStatus", ctx), auth=(name, pw))
    assert r.status_code == 200 and env.find("s:Body/wsen:GetStatusResponse/wsen:Expires",
                                             NS) is not None
    r, env = post(server.url, W.request(f"{WSEN}/Renew",
                                        f"<wsen:Renew><wsen:EnumerationContext>{ctx}"
                                        "</wsen:EnumerationContext><wsen:Expires>PT2H"
                                        "</wsen:Expires></wsen:Renew>"), auth=(name, pw))
    renewed = env.findtext("s:Body/wsen:RenewResponse/wsen:EnumerationContext", namespaces=NS)
    assert r.status_code == 200 and renewed and renewed != ctx
    got, _ = pull_all(server.url, (name, pw), renewed)
    assert len(got) == 1
    r, env = post(server.url, W.context_call("Release", ctx), auth=(name, pw))
    assert r.status_code == 200 and env.find("s:Body/*", NS) is None
    # an expired context: one whose expiry we set in the past (its MAC no longer matches,
    # and a genuine one expires the same way)
    r, env = post(server.url, W.pull(_tamper(ctx, expires=1)), auth=(name, pw))
    assert r.status_code == 500 and fault_of(env)[3] == "E_INVALID_ENUMERATION_CONTEXT"


def test_max_characters_limits_a_page(server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    made = [client.create_key(friendly_name=f"c{i}").key_id for i in range(4)]
    ctx = _context(server.url, (name, pw))
    r, env = post(server.url, W.pull(ctx, 4).replace(
        b"<wsen:MaxElements>4</wsen:MaxElements>",
        b"<wsen:MaxElements>4</wsen:MaxElements><wsen:MaxCharacters>900</wsen:MaxCharacters>"),
        auth=(name, pw))
    res = env.find("s:Body/wsen:PullResponse", NS)
    first = key_ids(res.find("wsen:Items", NS))
    assert 1 <= len(first) < 4
    rest, _ = pull_all(server.url, (name, pw), res.findtext("wsen:EnumerationContext",
                                                            namespaces=NS), 4)
    assert first + rest == made  # nothing lost, nothing repeated
    r, env = post(server.url, W.pull(ctx, 4).replace(
        b"<wsen:MaxElements>4</wsen:MaxElements>",
        b"<wsen:MaxElements>4</wsen:MaxElements><wsen:MaxCharacters>10</wsen:MaxCharacters>"),
        auth=(name, pw))
    assert r.status_code == 400 and fault_of(env)[1] == "wsman:EncodingLimit"


def test_max_time_too_short_is_wsen_timed_out(server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    client.create_key(friendly_name="slow")
    ctx = _context(server.url, (name, pw))
    r, env = post(server.url, W.pull(ctx, extra="<wsen:MaxTime>PT0.000001S</wsen:MaxTime>"),
                  auth=(name, pw))
    assert r.status_code == 500
    assert fault_of(env)[:2] == ("s:Receiver", "wsen:TimedOut")
    assert env.findtext("s:Header/wsa:Action", namespaces=NS) == WSEN + "/fault"


def test_get_update_list_catches_up_from_tokens(server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = realm_client
    first = [client.create_key(friendly_name=f"u{i}").key_id for i in range(3)]
    keys, tokens = drain(client.get_update_list(max_elements=2))
    assert [k.key_id for k in keys] == first and tokens["AllKeys"] > 0
    # offline for a while: others change things; the client catches up from its tokens
    later = [client.create_key(friendly_name=f"v{i}").key_id for i in range(4)]
    keys, tokens2 = drain(client.get_update_list(tokens=tokens, max_elements=3))
    assert [k.key_id for k in keys] == later and tokens2["AllKeys"] > tokens["AllKeys"]
    # the new tokens are accepted and mean "nothing new"
    keys, tokens3 = drain(client.get_update_list(tokens=tokens2))
    assert keys == [] and tokens3 == tokens2
    assert all(k.value is None for k in keys)


def test_get_update_list_pep_scope(server: ServerProcess, realm_client, client_factory) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = realm_client
    pep = client.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:6]}")
    client.create_key(friendly_name="not-for-pep")
    for_pep = client.create_key(friendly_name="for-pep", pep_id=pep).key_id
    keys, tokens = drain(client.get_update_list("Keys", pep_id=pep))
    assert [k.key_id for k in keys] == [for_pep] and "Keys" in tokens
    other, _, _ = client_factory()
    with pytest.raises(Exception) as err:
        drain(other.get_update_list("Keys", pep_id=pep))
    assert getattr(err.value, "http_status", None) == 400


def test_enumeration_started_on_one_process_finishes_on_another(
        server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    made = [client.create_key(friendly_name=f"x{i}").key_id for i in range(5)]
    second = ServerProcess(server.data_dir, workers=1)  # same store and master key
    second.start()
    try:
        r, env = post(server.url, W.enumerate_(W.optimized(2)), auth=(name, pw))
        res = env.find("s:Body/wsen:EnumerateResponse", NS)
        first = key_ids(res.find("wsman:Items", NS))
        rest, _ = pull_all(second.url, (name, pw),
                           res.findtext("wsen:EnumerationContext", namespaces=NS))
        assert first + rest == made
    finally:
        assert second.stop() == 0


def test_enumeration_changes_nothing(server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    client.create_key(friendly_name="n")
    before = snapshot(server.data_dir)
    ctx = _context(server.url, (name, pw))
    pull_all(server.url, (name, pw), ctx)
    assert snapshot(server.data_dir) == before


def test_pull_reports_items_left(server: ServerProcess, realm_client) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = realm_client
    for i in range(5):
        client.create_key(friendly_name=f"left-{i}")
    r, env = post(server.url, W.enumerate_(W.optimized(2)), auth=(name, pw))
    ctx = env.findtext("s:Body/wsen:EnumerateResponse/wsen:EnumerationContext", namespaces=NS)
    r, env = post(server.url, W.pull(ctx, 1, style="shell").replace(
        b"</s:Header>", b"<wsman:RequestTotalItemsCountEstimate/></s:Header>"), auth=(name, pw))
    assert env.findtext("s:Header/wsman:TotalItemsCountEstimate", namespaces=NS) == "3"
