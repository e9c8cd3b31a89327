"""The KMS documents as XML, shared by the SOAP pipeline (kms_ws.soap) and the WS-Management
operations (kms_ws.wsman): the message codec (kms), the administrative codec (admin), the
key writer (key_xml) and the administered documents and their schemas (documents). It
imports neither soap nor wsman."""
