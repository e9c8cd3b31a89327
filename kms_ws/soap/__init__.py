"""SOAP 1.2 transport: envelopes, the codec between XML and service messages, faults,
the WSGI application. Only translates; decisions live in service/ and domain/."""
