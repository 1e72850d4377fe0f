"""Test doubles that ship with cascade, so users can test their own cascades offline.

- `ScriptedProvider`: an in-process provider answering from a script.
- `cascade.testing.fake.FakeProviderServer`: a loopback HTTP server speaking the OpenAI
  and Anthropic wire formats (JSON and SSE) with injectable faults, for the real SDKs.
"""

from cascade.testing.scripted import ScriptedProvider

__all__ = ["ScriptedProvider"]
