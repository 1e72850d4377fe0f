"""The fake provider's HTTP server: h11 parses requests and frames responses over a real
asyncio socket; this routes each to a scripted `Reply`, has `render` plan the answer, and
makes the plan's pauses and cuts itself (faults are what a good HTTP library won't do)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple

import h11

from cascade.testing.fake.content import reason_phrase
from cascade.testing.fake.render import Plan, error_plan, render
from cascade.testing.fake.replies import Call, RecordedRequest, Reply, ReplySource

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
_ROUTES = {OPENAI_PATH: "openai", ANTHROPIC_PATH: "anthropic"}

_POLL_S = 0.02  # how often a sleeping reply checks whether the client went away
_MAX_HEADER_BYTES = 1 << 20  # a longer request head is answered 431
_READ_BYTES = 1 << 16


class _Request(NamedTuple):
    method: str
    target: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes


def _response(plan: Plan, status: int) -> h11.Response:
    if plan.streaming:
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("transfer-encoding", "chunked"),
            ("cache-control", "no-cache"),
        ]
    else:
        headers = [("content-type", "application/json"), ("content-length", str(len(plan.body)))]
    # h11 turns this into "close" when the request asked for it (or was HTTP/1.0)
    headers += [*plan.headers, ("connection", "keep-alive")]
    return h11.Response(status_code=status, reason=reason_phrase(status), headers=headers)


class _Client:
    """One TCP connection: h11's view of it, and the streams the bytes go through."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADER_BYTES)
        self.reader = reader
        self.writer = writer
        # drain() then means "handed to the kernel", so a reply counts as completed
        # only once it really left, and a vanished client shows up at the next write.
        writer.transport.set_write_buffer_limits(high=0)

    def _frame(self, *events: h11.Event) -> bytes:
        """The bytes h11 puts on the wire for ``events``."""
        return b"".join(self.h11.send(event) or b"" for event in events)

    async def read_request(self) -> _Request | None:
        """The next whole request; None when the client is done with the connection, or
        sent what is not HTTP (answered with h11's suggested 400 or 431 first)."""
        head: h11.Request | None = None
        body: list[bytes] = []
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                if not self.reader.at_eof():  # not a client that hung up mid-request
                    await self._refuse(e.error_status_hint)
                return None
            if event is h11.NEED_DATA:
                if self.h11.they_are_waiting_for_100_continue:
                    continue_ = h11.InformationalResponse(status_code=100, reason="Continue", headers=[])
                    self.writer.write(self._frame(continue_))
                self.h11.receive_data(await self.reader.read(_READ_BYTES))  # b"": the client closed
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None  # h11 yields the Request before its end
                headers: dict[str, str] = {}
                for name, value in head.headers:
                    k, v = name.decode("latin-1"), value.decode("latin-1")
                    headers[k] = f"{headers[k]}, {v}" if k in headers else v
                method, target = head.method.decode("latin-1"), head.target.decode("latin-1")
                return _Request(method, target, headers, b"".join(body))
            else:  # ConnectionClosed
                return None

    async def _refuse(self, status: int) -> None:
        headers = [("content-length", "0"), ("connection", "close")]
        response = h11.Response(status_code=status, reason=reason_phrase(status), headers=headers)
        self.writer.write(self._frame(response, h11.EndOfMessage()))
        await self.writer.drain()

    def gone(self) -> bool:
        return (
            self.reader.at_eof() or self.reader.exception() is not None or self.writer.transport.is_closing()
        )

    async def pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; False as soon as the client goes away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if self.gone():
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(remaining, _POLL_S))

    async def send(self, plan: Plan, method: str, chunk_delay_s: float) -> bool:
        """Send ``plan`` (pausing ``chunk_delay_s`` between stream events); False if
        the client went away first."""
        if plan.pre_delay > 0 and not await self.pause(plan.pre_delay):
            return False
        if plan.status is None:
            return True
        head = self._frame(_response(plan, plan.status))
        if not plan.streaming:
            # a HEAD request's answer has headers only (h11 enforces it)
            body = [] if method == "HEAD" else [h11.Data(data=plan.body)]
            head += self._frame(*body, h11.EndOfMessage())
        events = [ev if isinstance(ev, float) else self._frame(h11.Data(data=ev)) for ev in plan.events]
        tail = self._frame(h11.EndOfMessage()) if plan.streaming and not plan.cut else b""
        # one write per pause: with no chunk delay, everything between pauses goes out at once
        delay = chunk_delay_s if plan.streaming else 0.0
        buf, first = [head], True
        try:
            for ev in events:
                if isinstance(ev, float) or (delay > 0 and not first):
                    self.writer.write(b"".join(buf))
                    buf = []
                    await self.writer.drain()
                    if not await self.pause(ev if isinstance(ev, float) else delay):
                        return False
                if isinstance(ev, bytes):
                    buf.append(ev)
                    first = False
            buf.append(tail)
            self.writer.write(b"".join(buf))
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def finish(self, rec: RecordedRequest, plan: Plan, chunk_delay_s: float) -> bool:
        """Send ``plan`` and record how it went; returns whether the connection can
        serve another request."""
        ok = await self.send(plan, rec.method, chunk_delay_s)
        rec.finished_at = time.monotonic()
        if not ok:
            rec.client_closed = True
            self.writer.transport.abort()
            return False
        if plan.cut:
            self.writer.transport.abort()
            return False
        rec.completed = True
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        self.writer.close()
        return False


class FakeProviderServer:
    """Fake OpenAI + Anthropic HTTP endpoint on loopback (see `cascade.testing.fake`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, chunk_delay_s: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.chunk_delay_s = float(chunk_delay_s)
        self.default: ReplySource | None = Reply.text("OK")
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[ReplySource]] = {}
        self._log: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.errors: list[str] = []  # tracebacks of unexpected server-side exceptions
        self.connections = 0  # TCP connections accepted so far (keep-alive reuse shows as few)

    # -- public API ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def script(self, model: str, replies: ReplySource | Iterable[ReplySource]) -> None:
        """Append replies to ``model``'s FIFO queue."""
        items = [replies] if isinstance(replies, Reply) or callable(replies) else list(replies)
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(items)

    def pending(self, model: str) -> int:
        """Number of scripted replies still queued for ``model``."""
        with self._lock:
            q = self._scripts.get(model)
            return len(q) if q else 0

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._log if r.model == model]

    def reset(self) -> None:
        """Clear all scripts and the request log (``default`` is kept)."""
        with self._lock:
            self._scripts.clear()
            self._log.clear()

    def start(self) -> FakeProviderServer:
        if self._thread is not None:
            raise RuntimeError("FakeProviderServer already started")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name=f"FakeProviderServer:{self.port}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join(5)
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            fut.result(timeout=5)
        except Exception:
            pass
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        self._thread = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- loop thread ---------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle_conn, self.host, self.port, backlog=4096)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as e:
            self._startup_error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.wait(pending, timeout=2))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        conns = [t for t in self._conns if not t.done()]
        for t in conns:
            t.cancel()
        if conns:
            await asyncio.wait(conns, timeout=2)
        await asyncio.sleep(0)  # let the transports' close callbacks run

    async def _handle_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self.connections += 1
        try:
            client = _Client(reader, writer)
            while (req := await client.read_request()) is not None:
                rec, plan = self._route(req)
                if not await client.finish(rec, plan, self.chunk_delay_s):
                    break
        except (ConnectionError, asyncio.CancelledError, OSError):
            pass
        except Exception:  # pragma: no cover - a bug in this package
            tb = traceback.format_exc()
            self.errors.append(tb)
            print(tb, file=sys.stderr)
        finally:
            self._conns.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    def _next_reply(self, model: str, rec: RecordedRequest) -> Reply:
        with self._lock:
            q = self._scripts.get(model)
            src = q.popleft() if q else self.default
        if src is None:
            return Reply.status(
                500, message=f"fake server: no reply scripted for model {model!r} and no default"
            )
        if isinstance(src, Reply):
            return src
        try:
            out = src(rec)
        except Exception as e:
            return Reply.status(500, message=f"fake server: reply callable raised {e!r}")
        if not isinstance(out, Reply):
            return Reply.status(
                500, message=f"fake server: reply callable returned {type(out).__name__}, not Reply"
            )
        return out

    def _route(self, req: _Request) -> tuple[RecordedRequest, Plan]:
        """Log ``req`` and plan its answer: the next scripted reply, or a 404 or 400."""
        method, target, headers, raw = req
        path = target.split("?", 1)[0]
        wire = _ROUTES.get(path)
        rid = next(self._ids)
        if method != "POST" or wire is None:
            is_an = "anthropic-version" in headers or "x-api-key" in headers or "messages" in path
            guess = "anthropic" if is_an else "openai"
            return self._refused(req, guess, rid, 404, "not_found", f"Unknown route: {method} {path}")
        try:
            body = json.loads(raw) if raw else None
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
        except ValueError as e:
            return self._refused(req, wire, rid, 400, "bad_request", f"Invalid JSON body: {e}")
        model = body.get("model")
        model = model if isinstance(model, str) else ""
        stream = body.get("stream") is True
        rec = RecordedRequest(wire, target, model, body, headers, stream, method=method)
        self._record(rec)
        reply = self._next_reply(model, rec)
        rec.reply_kind = reply.kind
        call = Call(wire, model, body, stream, rid)
        try:
            return rec, render(call, reply)
        except Exception as e:
            return rec, error_plan(call, 500, message=f"fake server: cannot render {reply.kind}: {e!r}")

    def _refused(
        self, req: _Request, wire: str, rid: int, code: int, kind: str, message: str
    ) -> tuple[RecordedRequest, Plan]:
        rec = RecordedRequest(
            wire, req.target, "", {}, req.headers, False, reply_kind=kind, method=req.method
        )
        self._record(rec)
        return rec, error_plan(Call(wire, "", {}, False, rid), code, message=message)

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._log.append(rec)
