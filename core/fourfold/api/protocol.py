"""The HTTP/1.1 connection handling of ``fourfold serve``: uvicorn's h11 protocol with
deadlines, so a client that stalls cannot hold a connection (and its memory) forever.

uvicorn times out only idle keep-alive connections; one that opens and sends nothing,
half a request line, or a header a few bytes at a time ("slowloris"), or a body that
never ends, is kept open indefinitely. Here:

- a request's headers must be complete ``header_timeout`` seconds after the connection
  opened or the previous response was sent (trickling bytes does not extend it);
- its body must be complete ``body_timeout`` seconds after its headers (while the
  server itself has paused reading, because the application is busy, the clock waits);
- headers are limited to ``max_header_bytes`` (h11 answers 400 beyond that).

A connection past a deadline gets ``408 Request Timeout`` when nothing was answered on
it yet, and is closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ConnectionLimits", "guarded_protocol"]


@dataclass(frozen=True)
class ConnectionLimits:
    """Deadlines and sizes of one client connection.

    :ivar header_timeout: seconds a request's line and headers may take to arrive.
    :ivar body_timeout: seconds its body may take, counted from the end of the headers.
    :ivar keep_alive_timeout: seconds an idle connection is kept between requests.
    :ivar max_header_bytes: size of the request line and headers together.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_header_bytes: int = 16 * 1024


_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
)
_TIMEOUT_BODY = b'{"error": {"message": "the request was not received in time", "type": "request_timeout", "code": "request_timeout", "param": null}}'


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """An h11 protocol class for ``uvicorn.Config(http=...)`` that enforces ``limits``."""

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self._deadline: asyncio.TimerHandle | None = None
            self._phase = ""  # "headers" or "body" while a deadline runs

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm("headers", limits.header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self.conn.their_state is h11.IDLE:
                self._arm("headers", limits.header_timeout)  # the next request on a kept-alive connection
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def _follow(self) -> None:
            """Move the deadline along with the request's progress."""
            state = self.conn.their_state
            if state is h11.SEND_BODY and self._phase != "body":
                self._arm("body", limits.body_timeout)
            elif state not in (h11.IDLE, h11.SEND_BODY) and self._deadline is not None:
                self._disarm()  # the whole request is in: the application's time, not the client's

        def _arm(self, phase: str, seconds: float) -> None:
            self._disarm()
            self._phase = phase
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = None
            self._phase = ""

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self._phase == "body" and self.flow.read_paused:
                self._arm("body", limits.body_timeout)  # we stopped reading, not the client
                return
            ours = self.conn.our_state
            if ours is h11.IDLE or (ours is h11.SEND_RESPONSE and self.cycle is not None and not self.cycle.response_started):
                self.transport.write(_TIMEOUT_RESPONSE % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True
                self.cycle.message_event.set()
            self.transport.close()

    return GuardedH11Protocol
