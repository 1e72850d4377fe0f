"""The built-in verifiers of cascade, a distribution of their own (`cascade-verifiers`),
registered through the `cascade.verifiers` entry points exactly as a third-party verifier
would be, with the `train-verifier` command through `cascade.commands`. They use only what
`cascade` itself exports."""
