"""WS-Addressing headers and (later) the WS-Management protocols."""
