"""Random numbers, key generation, sealing at rest, passwords, master-key providers."""
