"""§6.11 Subscribe / Renew / Unsubscribe and the UpdatePending a key change raises;
§6.12 GetUpdateList (WS-Enumeration Enumerate / Pull): pages in change order, tokens,
removals — on the in-memory store."""

from __future__ import annotations

from datetime import timedelta

from kms_ws.domain.errors import (
    CannotProcessFilter,
    DeliveryModeRequestedUnavailable,
    EventingInvalidExpirationTime,
    InvalidSubscription,
    PermissionDenied,
    ResyncRequired,
)
from kms_ws.domain.model import AdminObject, EndpointKind, Key, KeyState, Removal
from kms_ws.domain.realms import ALL_RIGHTS, Right, realm_object_id
from kms_ws.service import key_dates
from kms_ws.service import messages as m
from kms_ws.service.admin.messages import AdminRequest, Ref
from kms_ws.service.ws_messages import (
    DeliveryMode,
    EnumerateRequest,
    PullRequest,
    ResourceName,
    SubscribeRequest,
    SubscriptionRequest,
    UpdateFilter,
    UpdatePage,
)

from .conftest import DEFAULT, OTHER, Harness

KEYS = ResourceName("Key", "Key")
NOTIFY = "http://192.0.2.10:8080/notify"  # the subscriber's own address


def subscribe(h: Harness, as_: str = "alice", type_: str = "AllKeys",
              mode: DeliveryMode | str = DeliveryMode.PUSH, **kw: object) -> str:
    res = h.run("Eventing.Subscribe", SubscribeRequest(NOTIFY, mode, UpdateFilter(type_),
                                                       **kw), as_)  # type: ignore[arg-type]
    return str(res.subscription_id)


def pending(h: Harness) -> dict[str, int]:
    return {sid: p.token for sid, p in h.store.tables.pending.items()}


def test_a_key_change_raises_update_pending_for_readers_only(h: Harness) -> None:
    alice_sub = subscribe(h)
    bob_sub = subscribe(h, "bob")
    key = h.run("CreateKey", m.CreateKeyRequest()).key
    seq = h.store.tables.keys[key.key_id].change_seq
    assert pending(h) == {alice_sub: seq}  # bob has no right where the key is
    assert bob_sub in h.store.tables.subscriptions


def test_reference_right_alone_subscribes_to_nothing(h: Harness) -> None:
    h.add("ref", grants={DEFAULT: frozenset({Right.REFERENCE})})
    h.check_refused(PermissionDenied, "Eventing.Subscribe",
              SubscribeRequest(NOTIFY, DeliveryMode.PUSH, UpdateFilter("AllKeys")), "ref")


def test_subscribe_refuses_an_unknown_mode_and_type(h: Harness) -> None:
    h.check_refused(DeliveryModeRequestedUnavailable, "Eventing.Subscribe",
              SubscribeRequest(NOTIFY, "Pull", UpdateFilter("AllKeys")))
    h.check_refused(CannotProcessFilter, "Eventing.Subscribe",
              SubscribeRequest(NOTIFY, DeliveryMode.PUSH, UpdateFilter("NoSuchType")))


def test_renew_and_unsubscribe_only_ones_own(h: Harness) -> None:
    sid = subscribe(h, expires_seconds=60)
    renewed = h.run("Eventing.Renew", SubscriptionRequest(sid, expires_seconds=600))
    assert renewed.expires == h.now + timedelta(seconds=600)
    assert h.store.tables.subscriptions[sid].expires == renewed.expires
    exc = h.check_refused(InvalidSubscription, "Eventing.Renew",
                    SubscriptionRequest(sid, expires_seconds=60), "bob")
    assert sid in exc.reason
    h.check_refused(EventingInvalidExpirationTime, "Eventing.Renew",
              SubscriptionRequest(sid, expires_seconds=31 * 86400))
    h.run("Eventing.Unsubscribe", SubscriptionRequest(sid))
    assert sid not in h.store.tables.subscriptions


def enumerate_keys(h: Harness, token: int = 0, max_elements: int = 2,
                   as_: str = "alice") -> UpdatePage:
    page: UpdatePage = h.run("Enumeration.Enumerate", EnumerateRequest(
        KEYS, UpdateFilter("AllKeys", token=token), optimize=True,
        max_elements=max_elements), as_)
    return page


def test_update_list_pages_in_change_order_with_tokens(h: Harness) -> None:
    made = [h.run("CreateKey", m.CreateKeyRequest(friendly_name=f"k{i}")).key.key_id
            for i in range(3)]
    h.run("CreateKey", m.CreateKeyRequest(realms=()), "bob")  # not alice's to see
    first = enumerate_keys(h)
    assert [k.key_id for _, k in first.items if isinstance(k, Key)] == made[:2]
    assert first.more
    context = first.context_after(2)
    assert context is not None
    rest = h.run("Enumeration.Pull", PullRequest(context, max_elements=10))
    assert [k.key_id for _, k in rest.items] == made[2:] and not rest.more
    assert all(k.value is None for _, k in first.items + rest.items)  # metadata only
    # a token: only what changed after it
    token = first.items[-1][0]
    assert [k.key_id for _, k in enumerate_keys(h, token, 10).items] == made[2:]


def test_an_edited_key_moves_to_the_end_of_the_list(h: Harness) -> None:
    a = h.run("CreateKey", m.CreateKeyRequest()).key.key_id
    b = h.run("CreateKey", m.CreateKeyRequest()).key.key_id
    high = enumerate_keys(h, 0, 10).high
    h.set_state(a, h.store.tables.keys[a].key.state)  # a change: a new place
    later = enumerate_keys(h, high, 10)
    assert [k.key_id for _, k in later.items] == [a]
    assert [k.key_id for _, k in enumerate_keys(h, 0, 10).items] == [b, a]


def test_removals_are_listed_after_the_token() -> None:
    h = Harness()
    h.add("root", admin=True)
    with h.store.unit_of_work(write=True) as uow:
        uow.objects.insert_object(AdminObject("Realm", realm_object_id(DEFAULT), DEFAULT,
                                              None, 1, h.now, h.now, {}, (DEFAULT,)))
    created = h.run("AdminCreate", AdminRequest("Create", "RetentionPolicy", document={
        "Name": "short", "TExpiration": "P1D"}), "root").documents[0]
    listing = h.run("Enumeration.Enumerate", EnumerateRequest(
        KEYS, UpdateFilter("RetentionPolicy"), optimize=True, max_elements=10), "root")
    assert [seq for seq, _ in listing.items] and not listing.more
    token = listing.high
    h.run("AdminDelete", AdminRequest("Delete", "RetentionPolicy",
                                      object_id=created["PolicyId"]), "root")
    after = h.run("Enumeration.Enumerate", EnumerateRequest(
        KEYS, UpdateFilter("RetentionPolicy", token=token), optimize=True,
        max_elements=10), "root")
    gone = [item for _, item in after.items]
    assert len(gone) == 1 and isinstance(gone[0], Removal)
    assert gone[0].object_id == created["PolicyId"] and after.high > token


def test_a_key_leaving_a_realm_or_a_read_right_lost_is_a_removal_for_who_lost_it(
        ) -> None:
    h = Harness()
    h.add("root", admin=True, grants={DEFAULT: ALL_RIGHTS, OTHER: ALL_RIGHTS})
    h.add_realm(DEFAULT)
    h.add_realm(OTHER)
    h.add("here", grants={DEFAULT: frozenset({Right.READ})})
    both = h.add("both", grants={DEFAULT: frozenset({Right.READ}),
                                 OTHER: frozenset({Right.READ})})
    h.add("there", grants={OTHER: frozenset({Right.READ})})
    key = h.run("CreateKey", m.CreateKeyRequest(realms=(
        m.RealmAssociation(DEFAULT), m.RealmAssociation(OTHER))), "root").key.key_id
    tokens = {who: enumerate_keys(h, 0, 10, who).high for who in ("here", "both", "there")}

    def removed(who: str) -> list[tuple[str, str]]:
        page = enumerate_keys(h, tokens[who], 10, who)
        return [(r.kind, r.object_id) for _, r in page.items if isinstance(r, Removal)]
    h.run("AdminDisassociate", AdminRequest("Disassociate", "Key", object_id=key,
                                            target=Ref("Realm", DEFAULT)), "root")
    assert removed("here") == [("Key", key)]
    assert removed("both") == [] and removed("there") == []  # still see it; never did
    assert not any(isinstance(r, Removal) for _, r in enumerate_keys(h, 0, 10, "here").items)
    # "both" loses Read where the key now is: a removal for it alone
    tokens = {who: enumerate_keys(h, 0, 10, who).high for who in ("here", "both", "there")}
    h.run("AdminDisassociate", AdminRequest("Disassociate", "Client", object_id=both,
                                            target=Ref("Realm", OTHER)), "root")
    assert removed("both") == [("Key", key)]
    assert removed("there") == [] and removed("here") == []


def test_a_token_older_than_the_removals_kept_is_refused() -> None:
    h = Harness()
    h.add("root", admin=True)
    h.add_realm(DEFAULT)
    created = [h.run("AdminCreate", AdminRequest("Create", "RetentionPolicy", document={
        "Name": f"p{i}", "TExpiration": "P1D"}), "root").documents[0] for i in range(2)]

    def listing(token: int) -> UpdatePage:
        page: UpdatePage = h.run("Enumeration.Enumerate", EnumerateRequest(
            KEYS, UpdateFilter("RetentionPolicy", token=token), optimize=True,
            max_elements=10), "root")
        return page
    old = listing(0).high
    h.run("AdminDelete", AdminRequest("Delete", "RetentionPolicy",
                                      object_id=created[0]["PolicyId"]), "root")
    newer = listing(old).high
    with h.store.unit_of_work(write=True) as uow:
        assert uow.changes.prune_removals(h.now + timedelta(seconds=1), 10) == 1
    exc = h.check_refused(ResyncRequired, "Enumeration.Enumerate", EnumerateRequest(
        KEYS, UpdateFilter("RetentionPolicy", token=old), optimize=True, max_elements=10),
        "root")
    assert exc.error_code == "E_RESYNC_REQUIRED" and "token 0" in exc.reason
    assert listing(newer).items == []  # a token past what was forgotten still works
    assert [d.document["PolicyId"] for _, d in listing(0).items] == [created[1]["PolicyId"]]


def test_a_client_enumerates_only_its_own_scope(h: Harness) -> None:
    bob = h.endpoint_id("bob")
    h.check_refused(PermissionDenied, "Enumeration.Enumerate", EnumerateRequest(
        KEYS, UpdateFilter("Keys", client_id=bob)))


def test_other_realm_keys_stay_out_of_the_list(h: Harness) -> None:
    h.run("CreateKey", m.CreateKeyRequest(realms=(m.RealmAssociation(OTHER),)), "bob")
    assert enumerate_keys(h, 0, 10).items == []


# ---- issue 15.4-15.6: dates, realm associations, USE_BY ---------------------------------

def test_a_date_passing_is_listed_and_notified_once(h: Harness) -> None:
    """The deliverer's pass (service.key_dates) on the service's clock: the transition
    takes a new place on the change sequence, raises UpdatePending, and is listed in its
    new state from the older token; VERSION stays; a second pass announces nothing."""
    sub = subscribe(h)
    key = h.run("CreateKey", m.CreateKeyRequest()).key
    h.set_expiry(key.key_id, h.now + timedelta(minutes=10))
    token = h.store.tables.keys[key.key_id].change_seq
    assert key_dates.announce_due(h.store, h.now) == 0  # not yet
    h.clock.now += timedelta(minutes=20)  # the subscriptions live an hour
    assert key_dates.announce_due(h.store, h.now) == 1
    assert key_dates.announce_due(h.store, h.now) == 0
    seq = h.store.tables.keys[key.key_id].change_seq
    assert seq > token and pending(h) == {sub: seq}
    [(listed_at, listed)] = enumerate_keys(h, token).items
    assert listed_at == seq and listed.state is KeyState.EXPIRED and listed.version == 1


def test_a_realm_association_is_listed_without_a_new_version(h: Harness) -> None:
    h.add_realm(DEFAULT)
    key = h.run("CreateKey", m.CreateKeyRequest(realms=(m.RealmAssociation(OTHER),)),
                "bob").key
    bob_sub = subscribe(h, "bob")
    alice_sub = subscribe(h)
    token = h.store.tables.keys[key.key_id].change_seq
    h.add("root", admin=True, grants={DEFAULT: frozenset(Right), OTHER: frozenset(Right)})
    h.run("AdminAssociate", AdminRequest("Associate", "Key", key.key_id,
                                         target=Ref("Realm", DEFAULT)), "root")
    stored = h.store.tables.keys[key.key_id]
    assert stored.key.version == key.version and stored.key.edit_datetime == key.edit_datetime
    assert DEFAULT in stored.key.realms and stored.change_seq > token
    assert pending(h)[alice_sub] == stored.change_seq  # alice reads DEFAULT: she is told
    assert bob_sub in pending(h)
    assert [k.key_id for _, k in enumerate_keys(h, token).items] == [key.key_id]


def test_a_client_that_received_a_key_is_told_whatever_its_right(h: Harness) -> None:
    h.add("user", grants={DEFAULT: frozenset({Right.REFERENCE}),
                          OTHER: frozenset({Right.READ})})
    key = h.run("CreateKey", m.CreateKeyRequest()).key
    sub = subscribe(h, "user")
    h.set_expiry(key.key_id, h.now + timedelta(minutes=10))  # before any delivery: not told
    assert sub not in pending(h)
    # Reference alone: the key is delivered only wrapped for a PEP the client serves,
    # under a KEK the client cannot know (an administrator registered it)
    pep_id = h.run("RegisterEndpoint", m.RegisterEndpointRequest(
        EndpointKind.PEP, "user-pep"), "user").endpoint_id
    h.add("root", grants={DEFAULT: ALL_RIGHTS}, admin=True)
    h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        pep_id, (m.WrappingValue("pep-kek", symmetric_key=bytes(32)),)), "root")
    h.run("GetKey", m.GetKeyRequest(key_id=key.key_id, pep_id=pep_id), "user")  # USE_BY
    h.clock.now += timedelta(minutes=20)  # the subscriptions live an hour
    assert key_dates.announce_due(h.store, h.now) == 1
    assert pending(h)[sub] == h.store.tables.keys[key.key_id].change_seq
