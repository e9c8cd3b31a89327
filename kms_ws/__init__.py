"""kms-ws: an IEEE P1619.3 key management server over SOAP 1.2 / WS-Management."""

__version__ = "0.1.0"
