"""Valid request envelopes for every operation the server takes — the §6 operations, the
administrative ones and the WS-Management ones — for tests that mutate *valid* messages
(a mutation of garbage only ever tests the parser). Each names objects that exist in the
store under test (`Ids`), so the mutated requests reach the handlers."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from kms_ws.xmlns import KMS, WSE, WSEN, WXF

from . import wsman as W
from .envelopes import envelope

DEFAULT = "realm://localhost/default"
AES_256_GCM = "2.16.840.1.101.3.4.1.46"
WHEN = "2020-01-01T00:00:00Z"


@dataclass(frozen=True)
class Ids:
    key_id: str
    template_id: str
    policy_id: str
    client_id: str


def _datasets(value: str = "A00001") -> str:
    return ("<kms:DataSets><kms:DataSet><kms:Name>volume</kms:Name>"
            f"<kms:Value>{value}</kms:Value><kms:SizeofValue>6</kms:SizeofValue>"
            "</kms:DataSet></kms:DataSets>")


ATTRIBUTES = ("<kms:AttributeAssociations><kms:Attribute><kms:Name>site</kms:Name>"
              "<kms:Value>paris</kms:Value></kms:Attribute></kms:AttributeAssociations>")
REALMS = ("<kms:RealmAssociations><kms:RealmAssociation>"
          f"<kms:Realm>{DEFAULT}</kms:Realm></kms:RealmAssociation></kms:RealmAssociations>")


def _kms(ids: Ids) -> dict[str, tuple[str, str]]:
    """label -> (operation, body)."""
    blob = base64.b64encode(bytes(range(32))).decode()
    k, tpl, pol = ids.key_id, ids.template_id, ids.policy_id
    return {
        "GetRandomBytes": ("GetRandomBytes", "<kms:GetRandomBytes><kms:NumberOfBytes>16"
                           "</kms:NumberOfBytes></kms:GetRandomBytes>"),
        "CreateKey": ("CreateKey", "<kms:CreateKey><kms:FriendlyName>fuzz key</kms:FriendlyName>"
                      f"<kms:CipherType>{AES_256_GCM}</kms:CipherType>"
                      f"<kms:KeyLength>256</kms:KeyLength>{_datasets()}{ATTRIBUTES}"
                      f"<kms:Description>made by a test</kms:Description>{REALMS}"
                      "</kms:CreateKey>"),
        "CreateKey by template": ("CreateKey", f"<kms:CreateKey><kms:TemplateId>{tpl}"
                                  "</kms:TemplateId></kms:CreateKey>"),
        "StoreKey": ("StoreKey", "<kms:StoreKey><kms:KeyBlob><kms:ProtocolVersion>1"
                     "</kms:ProtocolVersion><kms:WrappingType>none</kms:WrappingType>"
                     f"<kms:Length>32</kms:Length><kms:Data>{blob}</kms:Data></kms:KeyBlob>"
                     f"<kms:FriendlyName>stored</kms:FriendlyName>{_datasets('B1')}"
                     f"{ATTRIBUTES}<kms:Description>stored by a test</kms:Description>{REALMS}"
                     "</kms:StoreKey>"),
        "GetKey by id": ("GetKey", f"<kms:GetKey><kms:KeyId>{k}</kms:KeyId>"
                         "<kms:IfAlteredSinceVersion>0</kms:IfAlteredSinceVersion>"
                         "<kms:Usage>Decrypt</kms:Usage><kms:MaxKeys>5</kms:MaxKeys></kms:GetKey>"),
        "GetKey by name": ("GetKey", "<kms:GetKey><kms:FriendlyName>seed key</kms:FriendlyName>"
                           f"{ATTRIBUTES}</kms:GetKey>"),
        "GetKey by match": ("GetKey", "<kms:GetKey><kms:MatchAttributes><kms:Attribute>"
                            "<kms:Name>site</kms:Name><kms:Value>paris</kms:Value>"
                            "</kms:Attribute></kms:MatchAttributes><kms:MaxKeys>3</kms:MaxKeys>"
                            "</kms:GetKey>"),
        "GetKey by data": ("GetKey", f"<kms:GetKey>{_datasets()}<kms:Usage>Decrypt</kms:Usage>"
                           "</kms:GetKey>"),
        "GetKey all bound": ("GetKey", f"<kms:GetKey>{_datasets()}"
                             "<kms:AllBoundKeys>true</kms:AllBoundKeys><kms:Usage>Decrypt"
                             "</kms:Usage><kms:MaxKeys>4</kms:MaxKeys></kms:GetKey>"),
        "GetBindings": ("GetBindings", "<kms:GetBindings><kms:DataSet><kms:Name>volume"
                        "</kms:Name><kms:Value>A00001</kms:Value></kms:DataSet>"
                        "<kms:MaxRecords>5</kms:MaxRecords></kms:GetBindings>"),
        "AdminCreate selection": ("AdminCreate", "<kms:AdminCreate><kms:KeyAssignmentPolicy>"
                                  "<kms:Name>tapes</kms:Name><kms:Condition><kms:Name>volume"
                                  "</kms:Name><kms:Range><kms:From>A00000</kms:From><kms:To>"
                                  "A09999</kms:To></kms:Range></kms:Condition><kms:Condition>"
                                  "<kms:Name>host</kms:Name><kms:Cidr>10.1.0.0/16</kms:Cidr>"
                                  "</kms:Condition><kms:Generation>Shared</kms:Generation>"
                                  "</kms:KeyAssignmentPolicy></kms:AdminCreate>"),
        "GetKey altered since": ("GetKey", f"<kms:GetKey><kms:AlteredSince>{WHEN}"
                                 "</kms:AlteredSince><kms:MaxKeys>2</kms:MaxKeys></kms:GetKey>"),
        "PushAuditMessage": ("PushAuditMessage", "<kms:PushAuditMessage><kms:AuditMessage>"
                             f"<kms:KeyId>{k}</kms:KeyId><kms:Event>KeyUsed</kms:Event>"
                             f"<kms:Time>{WHEN}</kms:Time><kms:Message>used once</kms:Message>"
                             "</kms:AuditMessage></kms:PushAuditMessage>"),
        "Authenticate": ("Authenticate", "<kms:Authenticate><kms:RequestType>Validate"
                         "</kms:RequestType></kms:Authenticate>"),
        "NegotiateCapabilities": ("NegotiateCapabilities", "<kms:NegotiateCapabilities>"
                                  "<kms:Capabilities><kms:Capability><kms:Name>hasHSM</kms:Name>"
                                  "</kms:Capability></kms:Capabilities></kms:NegotiateCapabilities>"),
        "RegisterEndpoint": ("RegisterEndpoint", "<kms:RegisterEndpoint><kms:Kind>Client</kms:Kind>"
                             "<kms:Name>fuzz-client</kms:Name><kms:Description>x</kms:Description>"
                             "<kms:Credential><kms:CredentialType>UsernamePassword"
                             "</kms:CredentialType><kms:UsernamePassword><kms:Username>fuzz-client"
                             "</kms:Username><kms:Password>a-long-password</kms:Password>"
                             "</kms:UsernamePassword></kms:Credential><kms:RealmAssociations>"
                             f"<kms:RealmAssociation><kms:Realm>{DEFAULT}</kms:Realm>"
                             "<kms:Right>Reference</kms:Right></kms:RealmAssociation>"
                             "</kms:RealmAssociations></kms:RegisterEndpoint>"),
        "RegisterWrappingValues": ("RegisterWrappingValues", "<kms:RegisterWrappingValues>"
                                   "<kms:WrappingValues><kms:WrappingValue><kms:WrappingKeyId>kek-1"
                                   f"</kms:WrappingKeyId><kms:SymmetricKey>{blob}</kms:SymmetricKey>"
                                   "</kms:WrappingValue></kms:WrappingValues>"
                                   "<kms:Retire>kek-0</kms:Retire></kms:RegisterWrappingValues>"),
        "AdminGet": ("AdminGet", f"<kms:AdminGet><kms:Kind>Key</kms:Kind><kms:Id>{k}</kms:Id>"
                     "</kms:AdminGet>"),
        "AdminList": ("AdminList", f"<kms:AdminList><kms:Kind>RetentionPolicy</kms:Kind>"
                      f"<kms:AlteredSince>{WHEN}</kms:AlteredSince><kms:MaxItems>7</kms:MaxItems>"
                      "</kms:AdminList>"),
        "AdminCreate": ("AdminCreate", "<kms:AdminCreate><kms:RetentionPolicy><kms:Name>ninety"
                        "</kms:Name><kms:TExpiration>P90D</kms:TExpiration>"
                        "</kms:RetentionPolicy></kms:AdminCreate>"),
        "AdminEdit": ("AdminEdit", f"<kms:AdminEdit><kms:Key><kms:KeyId>{k}</kms:KeyId>"
                      "<kms:FriendlyName>seed key</kms:FriendlyName>"
                      f"<kms:TCached>60</kms:TCached><kms:CipherType>{AES_256_GCM}"
                      "</kms:CipherType><kms:Version>1</kms:Version></kms:Key></kms:AdminEdit>"),
        "AdminDelete": ("AdminDelete", "<kms:AdminDelete><kms:Kind>RetentionPolicy</kms:Kind>"
                        f"<kms:Id>{pol}</kms:Id><kms:Version>3</kms:Version></kms:AdminDelete>"),
        "AdminAssociate": ("AdminAssociate", f"<kms:AdminAssociate><kms:Kind>Client</kms:Kind>"
                           f"<kms:Id>{ids.client_id}</kms:Id><kms:Target><kms:Kind>Realm"
                           f"</kms:Kind><kms:Id>{DEFAULT}</kms:Id></kms:Target>"
                           "<kms:Right>Create</kms:Right></kms:AdminAssociate>"),
        "AdminAudit": ("AdminAudit", f"<kms:AdminAudit><kms:KeyId>{k}</kms:KeyId>"
                       f"<kms:From>{WHEN}</kms:From><kms:To>2100-01-01T00:00:00Z</kms:To>"
                       "<kms:MaxRecords>9</kms:MaxRecords></kms:AdminAudit>"),
        "AdminBindings": ("AdminBindings", "<kms:AdminBindings><kms:DataSet><kms:Name>volume"
                          "</kms:Name><kms:Value>A00001</kms:Value><kms:SizeofValue>6"
                          "</kms:SizeofValue></kms:DataSet></kms:AdminBindings>"),
    }


def messages(ids: Ids) -> dict[str, bytes]:
    """label -> a valid envelope (without credentials: the caller adds HTTP Basic)."""
    out = {label: envelope(body, op=op) for label, (op, body) in _kms(ids).items()}
    key = {"KeyId": ids.key_id}
    out.update({
        "Identify": W.identify(),
        "Transfer.Get": W.request(f"{WXF}/Get", selectors=key, extra=(
            '<wsman:OptionSet><wsman:Option Name="IncludeKeyValue">true</wsman:Option>'
            '<wsman:Option Name="Usage">Decrypt</wsman:Option></wsman:OptionSet>')),
        "Transfer.Create": W.request(f"{WXF}/Create", "<kms:CreateKey><kms:FriendlyName>wxf"
                                     f"</kms:FriendlyName>{REALMS}</kms:CreateKey>"),
        "Transfer.Delete": W.request(f"{WXF}/Delete", resource=f"{KMS}/RetentionPolicy",
                                     selectors={"PolicyId": ids.policy_id}, extra=(
                                         '<wsman:OptionSet><wsman:Option Name="Version">9'
                                         "</wsman:Option></wsman:OptionSet>")),
        "Enumerate": W.enumerate_(W.optimized(5, W.update_filter("AllKeys", 0))),
        "Pull": W.pull("uuid:00000000-0000-4000-8000-000000000000", 3),
        "Subscribe": W.request(f"{WSE}/Subscribe", (
            "<wse:Subscribe><wse:Delivery Mode=\"http://schemas.dmtf.org/wbem/wsman/1/wsman/"
            "PushWithAck\"><wse:NotifyTo><wsa:Address>http://127.0.0.1:9/notify</wsa:Address>"
            "</wse:NotifyTo></wse:Delivery><wse:Expires>PT60S</wse:Expires>"
            f"{W.update_filter('AllKeys')}</wse:Subscribe>")),
        "Release": W.context_call("Release", "uuid:00000000-0000-4000-8000-000000000001"),
        "GetStatus": W.request(f"{WSEN}/GetStatus", "<wsen:GetStatus><wsen:EnumerationContext>"
                               "uuid:00000000-0000-4000-8000-000000000002"
                               "</wsen:EnumerationContext></wsen:GetStatus>"),
    })
    return out


# Requests whose answer does not depend on what earlier ones changed: a mutation that
# keeps their meaning must get the same answer.
PURE = ("GetRandomBytes", "GetKey by id", "GetKey by name", "GetKey by match",
        "GetKey altered since", "Authenticate", "NegotiateCapabilities", "AdminGet",
        "AdminList", "AdminAudit", "AdminBindings", "Identify", "Transfer.Get", "Pull",
        "Release", "GetStatus", "AdminDelete", "Transfer.Delete")
