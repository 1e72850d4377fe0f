"""Verifier chains: running them, their optional hooks, the `all`/`any` groups and the registry."""
