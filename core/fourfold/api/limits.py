"""Request body size limit, enforced before any JSON is parsed.

A declared ``Content-Length`` over the limit is refused at once; a body sent without
one (chunked) is counted as it arrives and refused when it passes the limit. A route
that takes larger bodies (document uploads) is exempted by path and limits its own.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fourfold.api.errors import BodyTooLarge, error_body

__all__ = ["BodySizeLimit"]


class BodySizeLimit:
    """ASGI middleware answering 413 for bodies larger than ``max_bytes``, except PUTs
    to paths ``exempt`` matches (their route enforces its own limit)."""

    def __init__(self, app: Any, max_bytes: int, exempt: re.Pattern[str] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (
            self.exempt is not None and scope.get("method") == "PUT" and self.exempt.match(scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            await self._drain(receive)
            return
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps(error_body(413, f"request body is larger than the limit of {self.max_bytes} bytes", "request_too_large")).encode()
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
        })
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _drain(receive: Any) -> None:
        # Nothing to read for a refused body; the connection closes after the reply.
        return None
