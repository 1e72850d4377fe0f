"""The built-in verifiers of cascade, registered through the `cascade.verifiers` entry points
exactly as a third-party verifier would be. Each depends on `cascade.types` only."""
