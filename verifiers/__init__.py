"""The built-in verifiers of cascade, registered through the `cascade.verifiers` entry points
exactly as a third-party verifier would be. Most depend on `cascade.core.values` only; the judge
also uses cascade's model calls (`cascade.runtime.call`, `cascade.config.build`)."""
