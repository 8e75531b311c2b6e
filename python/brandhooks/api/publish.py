"""The publish hot path: PublishFastPath answers POST /brands/{brand}/events before routing, and
GroupCommit commits the publishes that arrive together in one transaction. The route in
routers/events.py documents the same operation and answers it the same way."""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

from .._core import BrandhooksError, Hub
from ..metrics import ROUTE_TEMPLATE
from .access import bearer_from
from .envelope import ApiError, core_error_response, error_response, internal_error
from .inputs import MAX_BODY_BYTES

log = logging.getLogger("brandhooks.api")

#: Largest body of a batch publish (a JSON array of up to MAX_BATCH_EVENTS events).
MAX_BATCH_BODY_BYTES = 16 << 20
MAX_BATCH_EVENTS = 1000

_EVENTS_PATH = re.compile(r"/brands/([^/]+)/events")
_JSON_HEADERS = [(b"content-type", b"application/json")]


def check_size(body: bytes) -> None:
    """POST /brands/{brand}/events: a body over MAX_BODY_BYTES is refused unless it is a batch."""
    if len(body) > MAX_BODY_BYTES and body.lstrip()[:1] != b"[":
        raise ApiError(413, "PayloadTooLarge", f"request body exceeds {MAX_BODY_BYTES} bytes")


# token, brand, body, Idempotency-Key, traceparent, tracestate, the answer
Waiting = Tuple[str, str, bytes, Optional[str], Optional[str], Optional[str], "asyncio.Future[bytes]"]


def joined(previous: Optional[str], line: bytes) -> str:
    """A header's value with one more line of it: lines join with a comma, as HTTP reads them
    (so a traceparent sent twice is invalid, and tracestate lines add up)."""
    value = line.decode("latin-1")
    return value if previous is None else f"{previous},{value}"


class GroupCommit:
    """Publishes that arrive together commit together. Each request waits on a future; one
    Hub.publish_json_each call takes all that are waiting, authorises and checks each on its own
    (a bad one gets its own error) and commits the valid ones in one transaction, which costs
    far less than a transaction each. The call runs on a thread of its own (the GIL released),
    so the event loop meanwhile reads the next requests (the next group) and serves reads; one
    commit runs at a time, as the store has one writer. One client alone waits for nothing."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.waiting: List[Waiting] = []
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="brandhooks-publish")
        self.busy = False  # a commit is under way, or scheduled

    def publish(self, token: str, brand: str, body: bytes, key: Optional[str] = None,
                traceparent: Optional[str] = None, tracestate: Optional[str] = None) -> "asyncio.Future[bytes]":
        loop = asyncio.get_running_loop()
        answer: "asyncio.Future[bytes]" = loop.create_future()
        self.waiting.append((token, brand, body, key, traceparent, tracestate, answer))
        if not self.busy:
            self.busy = True
            loop.call_soon(self._commit, loop)  # after the other requests that are ready now
        return answer

    def _commit(self, loop: asyncio.AbstractEventLoop) -> None:
        # At most MAX_BATCH_BODY_BYTES of bodies per transaction (at least one request).
        size, count = 0, 0
        for _, _, body, _, _, _, _ in self.waiting:
            size += len(body)
            if count and size > MAX_BATCH_BODY_BYTES:
                break
            count += 1
        group, self.waiting = self.waiting[:count], self.waiting[count:]
        requests: List[Tuple[Optional[str], str, bytes, Optional[str], Optional[str], Optional[str]]] = [
            request[:6] for request in group]
        done = loop.run_in_executor(self.thread, self.hub.publish_json_each, requests)
        done.add_done_callback(lambda _: self._answer(loop, group, done))

    def _answer(self, loop: asyncio.AbstractEventLoop, group: List[Waiting],
                done: "asyncio.Future[List[Any]]") -> None:
        error = done.exception()  # every request of the group gets it
        answers: List[Any] = [error] * len(group) if error else done.result()
        for (*_, future), answer in zip(group, answers):
            if future.done():
                continue  # cancelled: the client went away
            if isinstance(answer, bytes):
                future.set_result(answer)
            else:
                future.set_exception(answer)
        if self.waiting:
            loop.call_soon(self._commit, loop)
        else:
            self.busy = False


class PublishFastPath:
    """ASGI middleware that answers POST /brands/{brand}/events itself: the raw body goes to the
    core once (the core parses, validates, commits and writes the answer), with no routing,
    dependency injection, thread hand-off per request or JSON round trip in Python, and
    concurrent requests share a commit (GroupCommit). Every other request goes to the app. The
    route in routers/events.py documents the same operation and answers it the same way."""

    def __init__(self, app: Any, hub: Hub) -> None:
        self.app, self.hub, self.group = app, hub, GroupCommit(hub)

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        match = _EVENTS_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope[ROUTE_TEMPLATE] = "/brands/{brand}/events"  # answered here, routed nowhere (metrics.py)
        authorization, length, key = "", b"", None
        traceparent: Optional[str] = None
        tracestate: Optional[str] = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                length = value
            elif name == b"idempotency-key":
                key = value.decode("latin-1")  # the core checks it (visible ASCII)
            elif name == b"traceparent":  # W3C Trace Context: the core checks it, ignores a bad one
                traceparent = joined(traceparent, value)
            elif name == b"tracestate":
                tracestate = joined(tracestate, value)
        try:
            body = await self.read_body(length, receive)
            if body is None:
                return  # the client went away
            check_size(body)
            answer = await self.group.publish(bearer_from(authorization), match[1], body, key, traceparent, tracestate)
        except BrandhooksError as exc:
            await core_error_response(exc)(scope, receive, send)
            return
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.message)(scope, receive, send)
            return
        except Exception as exc:  # noqa: BLE001 (a 500 in the envelope, details in the log)
            log.exception("unexpected error", exc_info=exc)
            await internal_error()(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 202,
                    "headers": [*_JSON_HEADERS, (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    @staticmethod
    async def read_body(length: bytes, receive: Any) -> Optional[bytes]:
        """The body, at most MAX_BATCH_BODY_BYTES; None when the client disconnected."""
        too_large = ApiError(413, "PayloadTooLarge", f"request body exceeds {MAX_BODY_BYTES} bytes "
                                                     f"({MAX_BATCH_BODY_BYTES} for a batch)")
        if length.isdigit() and int(length) > MAX_BATCH_BODY_BYTES:
            raise too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BATCH_BODY_BYTES:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
