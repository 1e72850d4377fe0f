"""A fake LLM provider HTTP server for tests and benchmarks.

The server speaks HTTP/1.1 (keep-alive, Content-Length and chunked request bodies,
chunked streaming responses; h11 does the framing) for the real ``openai`` and
``anthropic`` SDKs to talk to it over a real loopback socket:

* ``POST /v1/chat/completions`` -- OpenAI chat.completions wire format
* ``POST /v1/messages``         -- Anthropic messages wire format

Replies are scripted per model (the ``model`` field of the request body) as a
FIFO queue of :class:`Reply` objects; when a model's queue is empty
``server.default`` answers (a :class:`Reply` or a callable
``(RecordedRequest) -> Reply``).  Every request is logged as a
:class:`RecordedRequest`, which the server updates in place as the reply goes
out (``completed`` / ``client_closed``).

Example::

    with FakeProviderServer() as server:
        server.script("gpt-4o-mini", [Reply.status(500), Reply.text("hello")])
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0)
        ...

The asyncio loop runs in a daemon thread, so the server can be used from
synchronous tests and from other event loops alike.  Besides the standard library
it needs only h11, which httpx (and so either SDK) brings along.

Modules, each importing only those above it: ``replies`` (what a reply is),
``content`` (what its body says), ``openai_wire`` and ``anthropic_wire`` (the two wire
formats), ``render`` (which response answers a request), ``http`` (the server).
"""

from cascade.testing.fake.http import ANTHROPIC_PATH, OPENAI_PATH, FakeProviderServer
from cascade.testing.fake.replies import DEFAULT_DROP_TEXT, RecordedRequest, Reply, ReplySource

__all__ = [
    "ANTHROPIC_PATH",
    "DEFAULT_DROP_TEXT",
    "OPENAI_PATH",
    "FakeProviderServer",
    "RecordedRequest",
    "Reply",
    "ReplySource",
]
